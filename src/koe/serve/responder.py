"""The one place where `koe serve` talks to a model: a `Responder` turns (history, input) into streamed events.

    responder = GenerateResponder.load(GenerateConfig(model=..., vocoder=..., unit_tokenizer=...), ServeConfig())
    for event in responder.turn(history, UserInput(text="what does the dog see ?"), "think_then_speak", None):
        ...   # TextDelta, AudioChunk, LatencyMark, then one TurnDone carrying the turn for the history

The web server only sees this protocol, so pointing the demo at another loaded-model class (koe.model's
SpeechTextLM) or at the dialogue answer strategies means changing `GenerateResponder` here and nothing else.
Today it runs on koe.generate's `Generator` (model, vocabulary, modality masks, unit tokenizer, vocoder) and its
three answer shapes: text then speech (`think_then_speak`), text only, speech only.
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
import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from koe.generate.config import GenerateConfig
from koe.generate.decoding import AllowedTokens
from koe.generate.run import Generator
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
    """koe.generate's loaded model behind the Responder protocol, with token-by-token streaming."""

    def __init__(self, generator: Generator, cfg: ServeConfig):
        self.gen = generator
        self.cfg = cfg
        self.accepts_text = "text" in generator.masks
        self.accepts_audio = generator.unit_tokenizer is not None
        can_speak = generator.vocoder is not None
        self.strategies = {name: _STRATEGY_HELP[name] for name, spans in _STRATEGY_SPANS.items()
                           if all(m in generator.masks for m in spans) and (can_speak or "speech" not in spans)}
        # a vocoder with speakers lists them here; the baseline UnitVocoder has none
        self.voices = [str(s) for s in (getattr(generator.vocoder, "speakers", None) or [])]
        self.sample_rate_hz = generator.vocoder.mel.sample_rate_hz if can_speak else 16_000
        positions = getattr(generator.model.config, "max_position_embeddings", None) or 1 << 30
        self.max_context = min(cfg.max_history_tokens, positions - cfg.max_new_tokens * 2)
        if self.max_context <= 0:
            raise KoeInputError(f"max_position_embeddings={positions} leaves no room for a prompt with "
                                f"max_new_tokens={cfg.max_new_tokens}")

    @classmethod
    def load(cls, gen_cfg: GenerateConfig, cfg: ServeConfig) -> GenerateResponder:
        return cls(Generator(gen_cfg), cfg)

    def warm_up(self) -> None:
        """One throw-away token and vocoder call: the first call of each pays for lazy imports and kernel set-up
        (without it a fresh server's first turn took 16.5 s on a loaded 2-core machine, later turns 0.1-0.6 s)."""
        modality = "text" if self.accepts_text else "speech"
        marker = self.gen.vocab.text_marker_id if self.accepts_text else self.gen.vocab.speech_marker_id
        tokens = self._stream_tokens([marker], modality, None)
        try:
            next(tokens, None)
        finally:
            tokens.close()
        if self.gen.vocoder is not None:
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
                marker = self.gen.vocab.text_marker_id if span == "text" else self.gen.vocab.speech_marker_id
                ids.append(marker)
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
        v = self.gen.vocab
        if user.audio is not None:
            if not self.accepts_audio:
                raise KoeInputError("spoken input needs a unit tokenizer: start `koe serve` with unit_tokenizer=")
            units, _ = self.gen.unit_tokenizer.encode_audio(user.audio)
            if len(units) == 0:
                raise KoeInputError("empty: the recording gave no speech units")
            seconds = len(user.audio) / 16_000
            return [v.speech_marker_id, *(v.unit_token_id(int(u)) for u in units)], f"(speech, {seconds:.1f} s)", \
                "speech"
        if not self.accepts_text:
            raise KoeInputError("typed input: this model has a units-only vocabulary; upload or record speech")
        ids = self.gen.text_ids(user.text or "")
        if not ids:
            raise KoeInputError("empty: the text has no tokens")
        return [v.text_marker_id, *ids], user.text or "", "text"

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
            text = self.gen.tokenizer.decode(new, skip_special_tokens=True)
            if len(text) > len(shown) and not text.endswith("\ufffd"):
                yield text[len(shown):]
                shown = text

    def _stream_speech(self, prompt: list[int], new: list[int], voice: str | None, cancel) -> Iterator[AudioChunk]:
        pending: list[int] = []
        for token in self._stream_tokens(prompt, "speech", cancel):
            new.append(token)
            pending.append(token - self.gen.vocab.unit_offset)
            if len(pending) >= self.cfg.chunk_units:
                yield from self._vocode(pending, voice)
                pending = []
        yield from self._vocode(pending, voice)

    def _vocode(self, units: list[int], voice: str | None) -> Iterator[AudioChunk]:
        """Each chunk is vocoded on its own (Griffin-Lim has no state to carry), so chunks meet at audible seams."""
        from koe.vocoder import units_to_audio

        vocoder = self.gen.vocoder
        units = [u for u in units if u < vocoder.num_units]  # unit-BPE ids have no vocoder entry
        if not units:
            return
        kwargs = {"speaker": voice} if voice else {}
        samples = units_to_audio(vocoder, units, durations=_durations(vocoder, units), **kwargs)
        yield AudioChunk(np.asarray(samples, dtype=np.float32), self.sample_rate_hz)

    def _stream_tokens(self, prompt: list[int], modality: str, cancel) -> Iterator[int]:
        """model.generate in a worker thread, tokens handed over one by one; stops at eos or when cancelled."""
        gen, streamer, stop = self.gen, _TokenQueue(), threading.Event()
        device = next(gen.model.parameters()).device
        input_ids = torch.tensor([prompt], device=device)
        s = gen.sampling
        greedy = s.temperature == 0
        kwargs = dict(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=self.cfg.max_new_tokens,
            do_sample=not greedy, temperature=None if greedy else s.temperature,
            top_k=None if greedy or s.top_k == 0 else s.top_k, top_p=None if greedy else s.top_p,
            logits_processor=LogitsProcessorList([AllowedTokens(gen.masks[modality])]),
            stopping_criteria=StoppingCriteriaList([_Stop(stop, cancel)]),
            eos_token_id=gen.vocab.eos_id, pad_token_id=gen.vocab.pad_id, streamer=streamer)
        worker = threading.Thread(target=streamer.run, args=(gen.model.generate, kwargs), daemon=True)
        worker.start()
        try:
            for token in streamer:
                if token == gen.vocab.eos_id:
                    break
                yield token
        finally:
            stop.set()  # also reached when the consumer goes away mid-span
            worker.join()
        if streamer.error is not None:
            raise streamer.error


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


class _TokenQueue(BaseStreamer):
    """A transformers streamer that hands new token ids to another thread (the first `put` is the prompt)."""

    _END = object()

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        self.seen_prompt = False
        self.error: BaseException | None = None

    def run(self, generate, kwargs) -> None:
        try:
            with torch.no_grad():
                generate(**kwargs)
        except BaseException as e:  # handed to the consuming thread, which raises it
            self.error = e
        finally:
            self.queue.put(self._END)

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(int(token))

    def end(self) -> None:
        pass

    def __iter__(self) -> Iterator[int]:
        while (item := self.queue.get()) is not self._END:
            yield item


class _Stop(StoppingCriteria):
    def __init__(self, *events: threading.Event | None):
        self.events = [e for e in events if e is not None]

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
