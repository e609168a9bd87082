"""The Responder adapter on koe.generate, the turn queue, the input checks and `koe serve`'s start-up errors."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from koe.cli import run_command
from koe.generate.config import GenerateConfig
from koe.serve.app import TurnQueue
from koe.serve.config import ServeConfig, is_loopback
from koe.serve.inputs import check_text, decode_audio
from koe.serve.responder import AudioChunk, GenerateResponder, LatencyMark, TextDelta, TurnDone, UserInput
from koe.stage import KoeInputError


def responder(assets, vocoder: bool = True, **serve) -> GenerateResponder:
    cfg = ServeConfig(max_new_tokens=16, chunk_units=4, **serve)
    gen = GenerateConfig(model=assets["model"], vocoder=assets["vocoder"] if vocoder else None,
                         unit_tokenizer=assets["unit_tokenizer"], max_new_tokens=16, temperature=1.0, device="cpu")
    return GenerateResponder.load(gen, cfg)


@pytest.fixture(scope="module")
def speaking(assets) -> GenerateResponder:
    return responder(assets)


def test_think_then_speak_streams_text_before_audio_and_records_the_turn(speaking):
    torch.manual_seed(0)
    events = list(speaking.turn([], UserInput(text="what does the dog see ?"), "think_then_speak", None))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("TextDelta") < kinds.index("AudioChunk") and kinds[-1] == "TurnDone"
    marks = [e.name for e in events if isinstance(e, LatencyMark)]
    assert marks == ["input_encoded", "first_text", "first_audio"]
    turn = events[-1].turn
    assert turn.answer_text == "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    assert len(chunks) >= 2 and all(c.sample_rate_hz == 16000 and c.samples.dtype == np.float32 for c in chunks)
    assert turn.audio_s == pytest.approx(sum(len(c.samples) for c in chunks) / 16000)
    vocab = speaking.lm.vocab
    assert turn.ids[0] == vocab.text_marker_id and vocab.speech_marker_id in turn.ids  # docs/sequences.md spans
    after = turn.ids[turn.ids.index(vocab.speech_marker_id) + 1:]
    assert after and all(vocab.is_unit(i) for i in after)


def test_spoken_input_opens_a_text_span_and_history_is_the_context(speaking, assets):
    wav, sr = sf.read(assets["question"], dtype="float32")
    audio = decode_audio(assets["question"].read_bytes(), "question.wav", max_audio_s=5)
    assert sr == 22050 and abs(len(audio) / 16000 - len(wav) / sr) < 0.01
    first = list(speaking.turn([], UserInput(audio=audio), "text", None))[-1].turn
    vocab = speaking.lm.vocab
    assert first.ids[0] == vocab.speech_marker_id and vocab.text_marker_id in first.ids
    assert first.user == "(speech, 1.5 s)"
    assert speaking._context([first], [1, 2]) == first.ids
    small = responder(assets, max_history_tokens=len(first.ids) + 1)
    assert small._context([first, first], [1]) == first.ids  # the oldest turn no longer fits
    with pytest.raises(KoeInputError, match="too long: the input is"):
        small._context([], list(range(len(first.ids) + 2)))


def test_strategies_follow_what_the_model_and_vocoder_can_do(speaking, assets):
    assert list(speaking.strategies) == ["think_then_speak", "text", "speech"]
    assert speaking.voices == [] and speaking.accepts_audio and speaking.accepts_text
    mute = responder(assets, vocoder=False)
    assert list(mute.strategies) == ["text"]
    with pytest.raises(KoeInputError, match="unknown strategy 'speech': this model offers text"):
        next(mute.turn([], UserInput(text="hi"), "speech", None))
    with pytest.raises(KoeInputError, match="unknown voice 'alice'"):
        next(speaking.turn([], UserInput(text="hi"), "speech", "alice"))


def test_cancel_stops_the_answer_without_a_turn(speaking):
    cancel = threading.Event()
    threads_before = threading.active_count()
    events = []
    for event in speaking.turn([], UserInput(text="the red fox"), "speech", None, cancel):
        events.append(event)
        cancel.set()
    assert not any(isinstance(e, TurnDone) for e in events)
    assert threading.active_count() == threads_before  # the generate worker thread was joined, not left running


def test_turn_queue_admits_queue_size_waiters_then_says_busy():
    async def scenario() -> list:
        queue, log, release = TurnQueue(queue_size=2), [], asyncio.Event()

        async def notify(n):
            log.append(f"queued {n}")

        async def turn(name: str):
            ahead = queue.try_enter()
            if ahead is None:
                log.append(f"{name} busy")
                return
            async with queue.slot(ahead, notify):
                log.append(f"{name} runs")
                await release.wait()

        turns = [asyncio.ensure_future(turn(name)) for name in "abcd"]
        await asyncio.sleep(0.01)  # a holds the model, b and c wait, d was turned away
        release.set()
        await asyncio.gather(*turns)
        assert queue.waiting == 0 and not queue.lock.locked()
        return log

    async def leaving() -> int:
        queue, hold = TurnQueue(queue_size=1), asyncio.Event()

        async def turn():
            async with queue.slot(queue.try_enter(), lambda n: asyncio.sleep(0)):
                await hold.wait()

        a, b = asyncio.ensure_future(turn()), asyncio.ensure_future(turn())
        await asyncio.sleep(0.01)
        b.cancel()  # the page of the waiting turn went away
        await asyncio.sleep(0.01)
        waiting = queue.waiting
        hold.set()
        await a
        return waiting

    assert asyncio.run(leaving()) == 0
    log = asyncio.run(scenario())
    assert "d busy" in log and log.count("queued 1") == 1 and log.count("queued 2") == 1
    assert [e for e in log if e.endswith("runs")] == ["a runs", "b runs", "c runs"]


def test_input_checks_name_the_problem(assets):
    assert check_text("  what   does\nthe dog see ? ", 100) == "what does the dog see ?"
    with pytest.raises(KoeInputError, match="empty"):
        check_text(" \n ", 100)
    with pytest.raises(KoeInputError, match="too long: the text has 11 characters; at most 10"):
        check_text("x" * 11, 10)
    with pytest.raises(KoeInputError, match=r"empty: a\.wav: the file has no bytes"):
        decode_audio(b"", "a.wav", 5)
    with pytest.raises(KoeInputError, match=r"unsupported format: bad\.wav: soundfile does not recognise"):
        decode_audio(assets["bad"].read_bytes(), "bad.wav", 5)
    with pytest.raises(KoeInputError, match=r"too long: long\.wav: 8\.0 s of audio; at most 5 s"):
        decode_audio(assets["long"].read_bytes(), "/some/dir/long.wav", 5)
    with pytest.raises(KoeInputError, match=r"too long: big\.wav: .* MB is more than 0\.01 s"):
        decode_audio(assets["long"].read_bytes(), "big.wav", 0.01)
    truncated = assets["question"].read_bytes()[:-2000]
    with pytest.raises(KoeInputError, match=r"truncated: cut\.wav"):
        decode_audio(truncated, "cut.wav", 5)


def test_serve_without_a_model_says_which_command_makes_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_command("serve", []) == 2
    err = capsys.readouterr().err
    assert "runs/tiny/interleaved/final/ is absent" in err and "`make tiny` (= `koe run tiny`)" in err
    assert run_command("serve", [str(tmp_path)]) == 2
    assert f"not a model dir: {tmp_path}: no config.json" in capsys.readouterr().err
    assert run_command("serve", ["port=70000", "queue_size=0"]) == 2
    err = capsys.readouterr().err
    assert "port=70000" in err and "queue_size must be positive" in err


def test_only_loopback_is_the_default():
    assert ServeConfig().host == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


def test_no_model_means_the_tiny_recipes_model_when_it_exists(tmp_path, monkeypatch, assets):
    import shutil

    from koe.serve.run import resolve_paths

    monkeypatch.chdir(tmp_path)
    shutil.copytree(assets["model"], "runs/tiny/interleaved/final")
    assert resolve_paths(ServeConfig()) == (Path("runs/tiny/interleaved/final"), None, None)
    shutil.copytree(assets["vocoder"], "runs/tiny/vocoder")
    shutil.copytree(assets["unit_tokenizer"], "runs/tiny/tokenizer")
    assert resolve_paths(ServeConfig()) == (Path("runs/tiny/interleaved/final"), Path("runs/tiny/vocoder"),
                                            Path("runs/tiny/tokenizer"))
    shutil.copytree(assets["unit_tokenizer"], "runs/tiny/interleaved/final/unit_tokenizer")
    model, _, tokenizer = resolve_paths(ServeConfig(model=Path("runs/tiny/interleaved/final")))
    assert tokenizer == model / "unit_tokenizer"  # a unit tokenizer copied into the model dir is found
    with pytest.raises(KoeInputError, match="not a vocoder dir"):
        resolve_paths(ServeConfig(model=model, vocoder=Path("runs/tiny/tokenizer")))


def test_vocoder_speakers_become_the_voice_list(speaking):
    speaking.vocoder.speakers = ["amy", "bob"]  # what a multi-speaker vocoder exposes
    try:
        assert GenerateResponder(speaking.lm, speaking.vocoder, speaking.sampling, ServeConfig()).voices == ["amy",
                                                                                                            "bob"]
    finally:
        del speaking.vocoder.speakers
