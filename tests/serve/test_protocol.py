"""The WebSocket protocol of `koe serve` from a plain client: bad messages get errors, a turn streams in order."""

from __future__ import annotations

import base64
import io
import json

import soundfile as sf
from websockets.sync.client import connect


def ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "ws"


def receive_turn(ws) -> list:
    """Messages of one turn up to its `done` or `error` (binary frames as bytes)."""
    out = []
    while True:
        message = ws.recv(timeout=120)
        out.append(message if isinstance(message, bytes) else json.loads(message))
        if isinstance(out[-1], dict) and out[-1]["type"] in ("done", "error"):
            return out


def test_bad_messages_get_errors_and_the_connection_goes_on(server):
    with connect(ws_url(server)) as ws:
        cases = [
            ({"type": "turn", "text": "   "}, "empty: type a question"),
            ({"type": "turn", "audio_b64": "not base64 !", "filename": "a.wav"}, "unreadable: the audio did not"),
            ({"type": "turn", "text": "hi", "strategy": "sing"}, "unknown strategy 'sing'"),
            ({"type": "dance"}, "unknown message type 'dance'"),
        ]
        for message, expected in cases:
            ws.send(json.dumps(message))
            reply = receive_turn(ws)[-1]
            assert reply["type"] == "error" and reply["kind"] == "input" and reply["message"].startswith(expected)
        ws.send(b"\x00\x01")
        assert json.loads(ws.recv(timeout=30))["message"] == "the page sent a message the server cannot read"
        ws.send(json.dumps({"type": "turn", "text": "the red fox", "strategy": "speech"}))
        assert receive_turn(ws)[-1]["type"] == "done"


def test_a_turn_streams_text_then_wav_chunks_then_done(server, assets):
    with connect(ws_url(server)) as ws:
        audio = base64.b64encode(assets["question"].read_bytes()).decode()
        ws.send(json.dumps({"type": "turn", "audio_b64": audio, "filename": "q.wav", "strategy": "think_then_speak"}))
        messages = receive_turn(ws)
        kinds = ["audio" if isinstance(m, bytes) else m["type"] for m in messages]
        assert kinds[0] == "started" and kinds[-1] == "done"
        assert kinds.index("text") < kinds.index("audio")
        wavs = [sf.read(io.BytesIO(m)) for m in messages if isinstance(m, bytes)]
        assert all(sr == 16000 and len(x) > 0 for x, sr in wavs)
        done = messages[-1]
        assert done["turn"]["audio_s"] == round(sum(len(x) for x, _ in wavs) / 16000, 3)
        latency = done["latency"]
        assert 0 < latency["first_text_s"] < latency["first_audio_s"] <= latency["total_s"]
        ws.send(json.dumps({"type": "reset"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "reset_done"}
