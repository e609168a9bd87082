"""Word-level interleaving: map word times onto de-duplicated units, choose speech words, emit spans.

    words = align_units(durations, spans, frame_rate_hz=50, unaligned="attach")   # WordUnits
    speech = choose_speech_words(words.num_words, "poisson", 0.3, 10.0, rng, speakable=words.speakable)
    segments = interleaved_segments(words, unit_tokens, speech, encode_text)      # alternating Segments

Rule (docs/sequences.md#word-times-to-units): unit i spans frames [F_i, F_i + d_i) with F_i the cumulative sum of the
earlier durations; its time is its centre, and it belongs to the word whose [start_s, end_s) contains that time.
A word owning no unit by that rule cannot be spoken, so it is always text. Units outside every word are attached to a
neighbouring spoken word (leading -> the first, others -> the one before) or dropped. SlamKit's poisson selection is
followed: speech spans of Poisson(lambda) words at random non-touching positions until the target fraction is met.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from koe.data.shards import SPEECH, TEXT

SENTENCE_END = (".", "?", "!")


@dataclasses.dataclass
class WordUnits:
    """Which units each word owns: units `unit_start[w]:unit_end[w]` of the kept units, in time order."""

    words: list[str]
    unit_start: np.ndarray  # int64 [W]
    unit_end: np.ndarray  # int64 [W]
    kept: np.ndarray  # int64 indices of the utterance's units that belong to some word (all of them with "attach")
    units_leading: int = 0
    units_inner: int = 0
    units_trailing: int = 0
    units_dropped: int = 0

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def speakable(self) -> np.ndarray:
        """Words owning at least one unit; the others can only be text."""
        return self.unit_end > self.unit_start


@dataclasses.dataclass
class Segment:
    """A run of words of one modality; `tokens` holds its ids without the marker."""

    modality: int  # TEXT or SPEECH
    word_start: int
    word_end: int
    tokens: np.ndarray


def align_units(
    durations: np.ndarray,
    spans: Sequence[tuple[str, float, float]],
    frame_rate_hz: float,
    unaligned: Literal["attach", "drop"] = "attach",
) -> WordUnits:
    """Assign every de-duplicated unit to a word by its centre time (see the module docstring for the rule)."""
    durations = np.asarray(durations, dtype=np.int64)
    words = [w for w, _, _ in spans]
    starts = np.array([s for _, s, _ in spans], dtype=np.float64)
    ends = np.array([e for _, _, e in spans], dtype=np.float64)
    if np.any(np.diff(starts) < 0):
        order = np.argsort(starts, kind="stable")
        words, starts, ends = [words[i] for i in order], starts[order], ends[order]
    centre = (np.cumsum(durations) - durations / 2.0) / frame_rate_hz
    owner = np.searchsorted(starts, centre, side="right") - 1  # last word starting at or before the centre
    inside = (owner >= 0) & (centre < ends[np.maximum(owner, 0)])
    leading = owner < 0
    trailing = ~inside & (owner == len(words) - 1)
    inner = ~inside & ~leading & ~trailing
    result = WordUnits(words=words, unit_start=np.zeros(0, np.int64), unit_end=np.zeros(0, np.int64),
                       kept=np.zeros(0, np.int64), units_leading=int(leading.sum()), units_inner=int(inner.sum()),
                       units_trailing=int(trailing.sum()))
    if unaligned == "attach" and inside.any():
        # gap units join the nearest speakable word before them (leading ones the first), so a pause stays with
        # the word it follows and never makes an otherwise silent word look spoken
        speakable = np.zeros(len(words), dtype=bool)
        speakable[owner[inside]] = True
        last_speakable = np.maximum.accumulate(np.where(speakable, np.arange(len(words)), -1))
        owner = np.where(inside, owner, last_speakable[np.maximum(owner, 0)])
        owner = np.where(owner < 0, int(np.argmax(speakable)), owner)
        kept = np.arange(len(durations))
    else:
        kept = np.flatnonzero(inside)
        owner = owner[kept]
        result.units_dropped = len(durations) - len(kept)
    result.kept = kept
    result.unit_start = np.searchsorted(owner, np.arange(len(words)), side="left")
    result.unit_end = np.searchsorted(owner, np.arange(len(words)), side="right")
    return result


def choose_speech_words(
    num_words: int,
    method: Literal["poisson", "coin", "sentence"],
    speech_fraction: float,
    poisson_lambda: float,
    rng: np.random.Generator,
    speakable: np.ndarray | None = None,
    words: Sequence[str] | None = None,
) -> np.ndarray:
    """A bool mask of the words to speak. Unspeakable words are forced to text after the draw."""
    if method == "coin":
        speech = rng.random(num_words) < speech_fraction
    elif method == "sentence":
        speech = np.zeros(num_words, dtype=bool)
        for start, end in sentence_ranges(words if words is not None else [""] * num_words):
            speech[start:end] = rng.random() < speech_fraction
    elif method == "poisson":
        speech = _poisson_spans(num_words, speech_fraction, poisson_lambda, rng)
    else:
        raise ValueError(f"unknown interleave method {method!r}")
    if speakable is not None:
        speech &= speakable
    return speech


def _poisson_spans(n: int, fraction: float, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Speech spans of max(1, Poisson(lam)) words placed at random, never touching, until the target is met.

    The target `n * fraction` is rounded up or down at random (with the matching probability), so the expected
    speech fraction is exact even for utterances of a few words, where a fixed ceil() would overshoot.
    """
    speech = np.zeros(n, dtype=bool)
    exact = n * fraction
    remaining = int(np.floor(exact)) + int(rng.random() < exact - np.floor(exact))
    while remaining > 0:
        touching = np.concatenate([[False], speech[:-1]]) | np.concatenate([speech[1:], [False]])
        eligible = np.flatnonzero(~speech & ~touching)
        if len(eligible) == 0:
            break
        start = int(rng.choice(eligible))
        room = int(np.argmax(np.concatenate([speech[start:], [True]])))  # free words from start on
        if start + room < n:
            room -= 1  # keep one text word before the next speech span, so spans do not merge
        length = min(max(1, int(rng.poisson(lam))), remaining, room)
        speech[start:start + length] = True
        remaining -= length
    return speech


def sentence_ranges(words: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) word ranges of sentences: a sentence ends after a word ending in . ? or !, or at the end."""
    ranges, start = [], 0
    for i, w in enumerate(words):
        if w.endswith(SENTENCE_END):
            ranges.append((start, i + 1))
            start = i + 1
    if start < len(words):
        ranges.append((start, len(words)))
    return ranges


def interleaved_segments(
    aligned: WordUnits,
    unit_tokens: np.ndarray,
    speech: np.ndarray,
    encode_text: Callable[[list[str]], list[list[int]]],
    text_prefix: str = " ",
) -> list[Segment]:
    """Group words into alternating runs; text runs are tokenized, speech runs take their words' unit tokens.

    `unit_tokens` are the utterance's model token ids, one per unit of `aligned` (koe.data.speech_tokens makes
    them), so interleaving never re-derives the units -> ids mapping."""
    runs, start = [], 0
    for i in range(1, aligned.num_words + 1):
        if i == aligned.num_words or speech[i] != speech[start]:
            runs.append((SPEECH if speech[start] else TEXT, start, i))
            start = i
    texts = [text_prefix + " ".join(aligned.words[s:e]) for m, s, e in runs if m == TEXT]
    encoded = iter(encode_text(texts) if texts else [])
    kept_units = np.asarray(unit_tokens, dtype=np.int64)[aligned.kept]
    segments = []
    for modality, s, e in runs:
        if modality == TEXT:
            tokens = np.asarray(next(encoded), dtype=np.int64)
        else:
            tokens = kept_units[aligned.unit_start[s]:aligned.unit_end[e - 1]]
        segments.append(Segment(modality, s, e, tokens))
    return segments
