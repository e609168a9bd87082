"""Speech out, streamed: the S2T model writes the answer token by token; each segment the trigger cuts is turned into
units by the T2C/echo decoder and vocoded in a worker thread while the next segment is generated.

    answer = stream_answer(s2t, speaker, example, vocoder)
    answer.text, answer.audio, answer.first_audio_s, answer.segments

`speaker` says what the unit decoder reads: `TextSpeaker(t2c)` the text embeddings of the tokens written (stage II,
"S2T + T2C"), `EchoSpeaker(echo)` the LLM hidden states of those tokens (stage III, EchoX).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from koe.echox.streaming import SegmentCutter, trigger_scores


@dataclasses.dataclass
class SpokenAnswer:
    text_ids: list[int]
    text: str
    unit_tokens: list[int]  # unit-language ids the decoder emitted
    units: list[int]  # dedup units after undo, what the vocoder read
    audio: np.ndarray
    segments: list[tuple[int, int]]  # [start, end) token spans
    first_audio_s: float
    total_s: float

    @property
    def audio_s(self) -> float:
        return len(self.audio) / 16_000


class TextSpeaker:
    def __init__(self, t2c):
        self.decoder = t2c

    def prefix(self, ids: list[int], hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder.text_prefix(ids)


class EchoSpeaker:
    def __init__(self, echo):
        self.echo, self.decoder = echo, echo.decoder

    def prefix(self, ids: list[int], hidden: torch.Tensor) -> torch.Tensor:
        return self.echo.prefix(hidden)


def period_id(tokenizer) -> int:
    return tokenizer("x .", add_special_tokens=False).input_ids[-1]


@torch.no_grad()
def stream_answer(s2t, speaker, example, vocoder, max_new_tokens: int = 40, max_units: int = 200,
                  cutter: SegmentCutter | None = None) -> SpokenAnswer:
    """Greedy text with the streaming trigger (FIELD.md's rule unless `cutter` is given); segments are spoken in a
    background thread as soon as they are cut."""
    from koe.vocoder import units_to_audio

    start = time.perf_counter()
    b = s2t.batch([dataclasses.replace(example, target=None)])
    out = s2t.llm(inputs_embeds=b.inputs_embeds, attention_mask=b.attention_mask, use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1]
    period = s2t.llm.get_output_embeddings().weight[period_id(s2t.tokenizer)]
    eos = s2t.tokenizer.eos_token_id
    ids: list[int] = []
    hidden: list[torch.Tensor] = []
    cutter = cutter or SegmentCutter()
    spans, jobs = [], []
    first_audio = [None]
    ul = speaker.decoder.unit_language

    def speak(a: int, z: int):
        tokens = speaker.decoder.generate(speaker.prefix(ids[a:z], torch.stack(hidden[a:z])), max_units)
        units = ul.undo(tokens)
        audio = units_to_audio(vocoder, units) if units else np.zeros(0, np.float32)
        if first_audio[0] is None and len(audio):
            first_audio[0] = time.perf_counter() - start
        return tokens, units, audio

    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(max_new_tokens):
            nxt = int(logits.argmax())
            if nxt == eos:
                break
            ids.append(nxt)
            out = s2t.llm(input_ids=torch.tensor([[nxt]], device=logits.device), past_key_values=past, use_cache=True,
                          output_hidden_states=True)
            past, logits = out.past_key_values, out.logits[0, -1]
            hidden.append(out.hidden_states[-1][0, -1])
            cut = cutter.push(float(trigger_scores(hidden[-1][None], period)[0]))
            if cut is not None:
                a = spans[-1][1] if spans else 0
                spans.append((a, cut + 1))
                jobs.append(pool.submit(speak, a, cut + 1))
        a = spans[-1][1] if spans else 0
        if a < len(ids):
            spans.append((a, len(ids)))
            jobs.append(pool.submit(speak, a, len(ids)))
        parts = [j.result() for j in jobs] if jobs else []
    return _join(s2t, ids, spans, parts, first_audio[0], time.perf_counter() - start)


def _join(s2t, ids, spans, parts: list, first_audio_s, total_s) -> SpokenAnswer:
    tokens = [t for p in parts for t in p[0]]
    units = [u for p in parts for u in p[1]]
    audio = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
    return SpokenAnswer(ids, s2t.decode(ids), tokens, units, audio, spans,
                        first_audio_s if first_audio_s is not None else total_s, total_s)


__all__ = ["EchoSpeaker", "SpokenAnswer", "TextSpeaker", "stream_answer"]
