"""The one place where `koe serve` talks to a model: a `Responder` turns (history, input) into streamed events.

    responder = GenerateResponder.load(GenerateConfig(model=..., vocoder=..., unit_tokenizer=...), ServeConfig())
    for event in responder.turn(history, UserInput(text="what does the dog see ?"), "think_then_speak", None):
        ...   # TextDelta, AudioChunk, LatencyMark, then one TurnDone carrying the turn for the history

The web server only sees this protocol, so pointing the demo at the dialogue answer strategies means changing
`GenerateResponder` here and nothing else. It runs on koe's one loaded-model class (koe.model.SpeechTextLM: the
vocabulary, modality masks and unit tokenizer) plus a vocoder, with three answer shapes: text then speech
(`think_then_speak`), text only, speech only.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from koe.generate.config import GenerateConfig
from koe.generate.run import load_vocoder
from koe.model.speech_text_lm import Sampling, SpeechTextLM
from koe.serve.config import ServeConfig
from koe.stage import KoeInputError


@dataclasses.dataclass(frozen=True)
class UserInput:
    """What the user said this turn: typed text, or 16 kHz mono float32 audio (exactly one of them)."""

    text: str | None = None
    audio: np.ndarray | None = None


@dataclasses.dataclass
class Turn:
    """One finished exchange: what the page shows, and the token ids the model sees as context next time."""

    user: str
    answer_text: str
    audio_s: float
    ids: list[int]


@dataclasses.dataclass(frozen=True)
class TextDelta:
    text: str


@dataclasses.dataclass(frozen=True)
class AudioChunk:
    """float32 mono samples in [-1, 1] at sample_rate_hz, to be played right after the previous chunk."""

    samples: np.ndarray
    sample_rate_hz: int


@dataclasses.dataclass(frozen=True)
class LatencyMark:
    """A model-side milestone, seconds after `turn` was called (e.g. `input_encoded`, `first_text`)."""

    name: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class TurnDone:
    turn: Turn


Event = TextDelta | AudioChunk | LatencyMark | TurnDone


class Responder(Protocol):
    """What the server needs from a model. `turn` may raise KoeInputError for input the model cannot take."""

    strategies: dict[str, str]  # name -> one-line description, in the order the page lists them
    voices: list[str]  # speaker names of the vocoder; empty when it has none
    accepts_audio: bool
    accepts_text: bool

    def turn(self, history: list[Turn], user: UserInput, strategy: str, voice: str | None,
             cancel: threading.Event | None = None) -> Iterator[Event]: ...


MIN_MEL_FRAMES = 4
# answer spans per strategy; a modality marker opens a span whenever the modality changes (docs/sequences.md)
_STRATEGY_SPANS = {
    "think_then_speak": ("text", "speech"),
    "text": ("text",),
    "speech": ("speech",),
}
_STRATEGY_HELP = {
    "think_then_speak": "answer in text, then speak that answer (koe generate task=think_then_speak)",
    "text": "answer in text only",
    "speech": "answer in speech only (task=text_to_speech, or continue for spoken input)",
}


class GenerateResponder:
    """koe's loaded model (koe.model.SpeechTextLM) and vocoder behind the Responder protocol, streamed token by
    token."""

    def __init__(self, lm: SpeechTextLM, vocoder, sampling: Sampling, cfg: ServeConfig):
        self.lm, self.vocoder, self.sampling, self.cfg = lm, vocoder, sampling, cfg
        self.accepts_text = lm.has_text
        self.accepts_audio = lm.unit_tokenizer is not None
        can_speak = vocoder is not None
        self.strategies = {name: _STRATEGY_HELP[name] for name, spans in _STRATEGY_SPANS.items()
                           if all(m in lm.span_masks for m in spans) and (can_speak or "speech" not in spans)}
        # a vocoder with speakers lists them here; the baseline UnitVocoder has none
        self.voices = [str(s) for s in (getattr(vocoder, "speakers", None) or [])]
        self.sample_rate_hz = vocoder.mel.sample_rate_hz if can_speak else 16_000
        self.max_context = min(cfg.max_history_tokens, lm.max_length - cfg.max_new_tokens * 2)
        if self.max_context <= 0:
            raise KoeInputError(f"the model's max_length={lm.max_length} leaves no room for a prompt with "
                                f"max_new_tokens={cfg.max_new_tokens}")

    @classmethod
    def load(cls, gen_cfg: GenerateConfig, cfg: ServeConfig) -> GenerateResponder:
        lm = SpeechTextLM.load(gen_cfg.model, gen_cfg.device, gen_cfg.dtype, unit_tokenizer=gen_cfg.unit_tokenizer)
        sampling = Sampling(gen_cfg.temperature, gen_cfg.top_k, gen_cfg.top_p)
        return cls(lm, load_vocoder(gen_cfg, lm), sampling, cfg)

    def warm_up(self) -> None:
        """One throw-away token and vocoder call: the first call of each pays for lazy imports and kernel set-up
        (without it a fresh server's first turn took 16.5 s on a loaded 2-core machine, later turns 0.1-0.6 s)."""
        modality = "text" if self.accepts_text else "speech"
        tokens = self._stream_tokens([self.lm.marker(modality)], modality, None)
        try:
            next(tokens, None)
        finally:
            tokens.close()
        if self.vocoder is not None:
            list(self._vocode([0], None))

    def turn(self, history: list[Turn], user: UserInput, strategy: str, voice: str | None,
             cancel: threading.Event | None = None) -> Iterator[Event]:
        if strategy not in self.strategies:
            raise KoeInputError(f"unknown strategy {strategy!r}: this model offers {', '.join(self.strategies)}")
        if voice and voice not in self.voices:
            raise KoeInputError(f"unknown voice {voice!r}: the vocoder has {self.voices or 'no speakers'}")
        start = time.perf_counter()
        user_ids, user_label, modality = self._user_span(user)
        yield LatencyMark("input_encoded", time.perf_counter() - start)
        context = self._context(history, user_ids)
        ids, text, n_samples = list(user_ids), "", 0
        for span in _STRATEGY_SPANS[strategy]:
            if span != modality:
                ids.append(self.lm.marker(span))
            modality = span
            new: list[int] = []
            if span == "text":
                for delta in self._stream_text(context + ids, new, cancel):
                    if not text:
                        yield LatencyMark("first_text", time.perf_counter() - start)
                    text += delta
                    yield TextDelta(delta)
            else:
                for chunk in self._stream_speech(context + ids, new, voice, cancel):
                    if n_samples == 0:
                        yield LatencyMark("first_audio", time.perf_counter() - start)
                    n_samples += len(chunk.samples)
                    yield chunk
            ids.extend(new)
            if cancel is not None and cancel.is_set():
                return
        yield TurnDone(Turn(user_label, text.strip(), n_samples / self.sample_rate_hz, ids))

    def _user_span(self, user: UserInput) -> tuple[list[int], str, str]:
        if user.audio is not None:
            if not self.accepts_audio:
                raise KoeInputError("spoken input needs a unit tokenizer: start `koe serve` with unit_tokenizer=")
            ids = self.lm.audio_ids(user.audio)
            if not ids:
                raise KoeInputError("empty: the recording gave no speech units")
            seconds = len(user.audio) / 16_000
            return [self.lm.marker("speech"), *ids], f"(speech, {seconds:.1f} s)", "speech"
        if not self.accepts_text:
            raise KoeInputError("typed input: this model has a units-only vocabulary; upload or record speech")
        ids = self.lm.text_ids(user.text or "")
        if not ids:
            raise KoeInputError("empty: the text has no tokens")
        return [self.lm.marker("text"), *ids], user.text or "", "text"

    def _context(self, history: list[Turn], user_ids: list[int]) -> list[int]:
        """The newest whole turns that fit in max_context together with this turn's input."""
        if len(user_ids) > self.max_context:
            raise KoeInputError(f"too long: the input is {len(user_ids)} tokens; at most {self.max_context} fit")
        kept: list[list[int]] = []
        used = len(user_ids)
        for turn in reversed(history):
            if used + len(turn.ids) > self.max_context:
                break
            kept.append(turn.ids)
            used += len(turn.ids)
        return [i for ids in reversed(kept) for i in ids]

    def _stream_text(self, prompt: list[int], new: list[int], cancel) -> Iterator[str]:
        """Decoded text deltas; decodes the whole span each time so multi-token characters come out whole."""
        shown = ""
        for token in self._stream_tokens(prompt, "text", cancel):
            new.append(token)
            text = self.lm.decode_text(new)
            if len(text) > len(shown) and not text.endswith("\ufffd"):
                yield text[len(shown):]
                shown = text

    def _stream_speech(self, prompt: list[int], new: list[int], voice: str | None, cancel) -> Iterator[AudioChunk]:
        pending: list[int] = []
        for token in self._stream_tokens(prompt, "speech", cancel):
            new.append(token)
            pending.append(token)
            if len(pending) >= self.cfg.chunk_units:
                yield from self._vocode(self.lm.units(pending).tolist(), voice)
                pending = []
        yield from self._vocode(self.lm.units(pending).tolist() if pending else [], voice)

    def _vocode(self, units: list[int], voice: str | None) -> Iterator[AudioChunk]:
        """Each chunk is vocoded on its own (Griffin-Lim has no state to carry), so chunks meet at audible seams."""
        from koe.vocoder import units_to_audio

        if not units:
            return
        kwargs = {"speaker": voice} if voice else {}
        samples = units_to_audio(self.vocoder, units, durations=_durations(self.vocoder, units), **kwargs)
        yield AudioChunk(np.asarray(samples, dtype=np.float32), self.sample_rate_hz)

    def _stream_tokens(self, prompt: list[int], modality: str, cancel) -> Iterator[int]:
        """SpeechTextLM.generate in a worker thread, each new token handed over through a queue as it is chosen;
        stops at eos, when the consumer goes away, or when cancelled."""
        tokens: queue.Queue = queue.Queue()
        stop, end, failure = threading.Event(), object(), []

        def push(token: int) -> bool:
            tokens.put(token)
            return stop.is_set() or (cancel is not None and cancel.is_set())

        def run() -> None:
            try:
                self.lm.generate(prompt, modality, self.cfg.max_new_tokens, self.sampling, stop_when=push)
            except BaseException as e:  # handed to the consuming thread, which raises it
                failure.append(e)
            finally:
                tokens.put(end)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (token := tokens.get()) is not end:
                yield token
        finally:
            stop.set()  # also reached when the consumer goes away mid-span
            worker.join()
        if failure:
            raise failure[0]


def _durations(vocoder, units: list[int]) -> np.ndarray:
    """units_to_audio's default durations (mean training duration per unit), the last one stretched when the chunk
    is shorter than MIN_MEL_FRAMES: the STFT inversion fails on fewer than 3 mel frames (a one-unit chunk)."""
    means = np.asarray(getattr(vocoder, "mean_duration_frames", None) or [1.0] * vocoder.num_units)
    durations = np.maximum(1, np.rint(means[units])).astype(np.int64)
    per_unit_frame = vocoder.mel.frame_rate_hz / vocoder.unit_frame_rate_hz
    missing = math.ceil(MIN_MEL_FRAMES / per_unit_frame) - int(durations.sum())
    if missing > 0:
        durations[-1] += missing
    return durations
