"""The server's sessions with a scripted Responder: a page that leaves while queued or mid-answer frees the model."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import numpy as np
import uvicorn
from websockets.sync.client import connect

from koe.serve.app import build_app
from koe.serve.config import ServeConfig
from koe.serve.responder import AudioChunk, TextDelta, Turn, TurnDone, UserInput
from koe.serve.run import bind


class HeldResponder:
    """Answers "hold" turns only when released or cancelled, and records which turns ran and how they ended."""

    accepts_text, accepts_audio = True, False

    def __init__(self):
        self.strategies = {"text": "text only"}
        self.voices: list[str] = []
        self.release = threading.Event()
        self.log: list[str] = []

    def turn(self, history: list[Turn], user: UserInput, strategy: str, voice, cancel=None):
        self.log.append(f"start {user.text}")
        yield TextDelta("a")
        yield AudioChunk(np.zeros(160, np.float32), 16000)
        while user.text == "hold" and not self.release.is_set():
            if cancel is not None and cancel.is_set():
                self.log.append(f"cancelled {user.text}")
                return
            time.sleep(0.01)
        self.log.append(f"done {user.text}")
        yield TurnDone(Turn(user.text, "a", 0.01, [1]))


def serve(responder):
    app = build_app(responder, ServeConfig(queue_size=1), model_name="scripted")
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, app, f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"


def until(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def test_pages_that_leave_free_the_model_and_the_queue():
    responder = HeldResponder()
    server, thread, app, url = serve(responder)
    try:
        with contextlib.ExitStack() as stack:
            leave_and_come_back(stack, url, app.state.queue)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert responder.log == ["start hold", "cancelled hold", "start after", "done after"]


def leave_and_come_back(stack: contextlib.ExitStack, url: str, queue) -> None:
    a = stack.enter_context(connect(url))
    a.send(json.dumps({"type": "turn", "text": "hold"}))
    assert json.loads(a.recv(timeout=10))["type"] == "started"
    b = stack.enter_context(connect(url))
    b.send(json.dumps({"type": "turn", "text": "queued"}))
    assert json.loads(b.recv(timeout=10)) == {"type": "queued", "ahead": 1}
    c = stack.enter_context(connect(url))
    c.send(json.dumps({"type": "turn", "text": "third"}))
    reply = json.loads(c.recv(timeout=10))
    assert reply["kind"] == "busy" and reply["message"].startswith("The model is busy")
    b.close()  # leaves while waiting: its turn must never run
    until(lambda: queue.waiting == 0)
    a.close()  # leaves mid-answer: its turn is cancelled
    until(lambda: not queue.lock.locked())
    c.send(json.dumps({"type": "turn", "text": "after"}))
    kinds = []
    while not kinds or kinds[-1] not in ("done", "error"):
        message = c.recv(timeout=10)
        kinds.append("audio" if isinstance(message, bytes) else json.loads(message)["type"])
    assert kinds == ["started", "text", "audio", "done"]
