"""Segments to documents: modality markers, eos, and splitting at span boundaries for `max_seq_len`.

    pieces, cut = split_segments(segments, max_len=2048)
    docs = [render(piece, vocab) for piece in pieces]     # (tokens uint32, modality uint8)

A document is its segments, each preceded by its modality's marker when it starts the document or switches modality,
then eos. The same code renders every kind (a text-only or speech-only document is one segment), so the marker
rule cannot drift between kinds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from koe.data.interleave import Segment
from koe.data.shards import MARKER, SPEECH
from koe.data.vocab import SpeechVocab


@dataclasses.dataclass
class Doc:
    tokens: np.ndarray  # uint32
    modality: np.ndarray  # uint8

    def __len__(self) -> int:
        return len(self.tokens)


def render(segments: list[Segment], vocab: SpeechVocab) -> Doc:
    """Markers at the start and at every modality switch, eos at the end."""
    tokens: list[np.ndarray] = []
    modality: list[np.ndarray] = []
    previous = None
    for seg in segments:
        if seg.modality != previous:
            marker = vocab.speech_marker_id if seg.modality == SPEECH else vocab.text_marker_id
            tokens.append(np.array([marker]))
            modality.append(np.array([MARKER]))
            previous = seg.modality
        tokens.append(np.asarray(seg.tokens))
        modality.append(np.full(len(seg.tokens), seg.modality))
    tokens.append(np.array([vocab.eos_id]))
    modality.append(np.array([MARKER]))
    return Doc(np.concatenate(tokens).astype(np.uint32), np.concatenate(modality).astype(np.uint8))


def split_segments(segments: list[Segment], max_len: int) -> tuple[list[list[Segment]], int]:
    """Greedily pack whole segments into pieces of at most `max_len` tokens (a marker per segment, one eos).

    A segment that cannot fit even alone is cut into chunks of `max_len - 2` tokens; returns the pieces and the
    number of segments cut. Words are never moved between segments, so every word stays in exactly one piece
    (a cut segment's word range is repeated on its chunks).
    """
    pieces: list[list[Segment]] = []
    current: list[Segment] = []
    used = 1  # eos
    cut = 0
    for seg in segments:
        cost = len(seg.tokens) + 1
        if current and used + cost > max_len:
            pieces.append(current)
            current, used = [], 1
        if used + cost <= max_len:
            current.append(seg)
            used += cost
            continue
        cut += 1
        step = max_len - 2
        chunks = [Segment(seg.modality, seg.word_start, seg.word_end, seg.tokens[i:i + step])
                  for i in range(0, len(seg.tokens), step)]
        pieces.extend([c] for c in chunks[:-1])
        current, used = [chunks[-1]], 2 + len(chunks[-1].tokens)
    if current:
        pieces.append(current)
    return pieces, cut
