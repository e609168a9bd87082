"""Drafts: what a benchmark builder returns before anything is spoken.

    Draft(group="wq-wqs000001", task="qa", category="webquestions",
          prompt=Spoken("what did james k polk do before he was president?"),
          candidates=[Spoken("Lawyer"), Spoken("Jamaican English"), ...], label=0, references=["Lawyer"])

Builders (one module per benchmark kind) are pure text functions, so they are tested without a synthesizer; `build`
speaks every side with every voice and turns each draft into one `BenchItem` per voice.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Spoken:
    """A side to speak: `text` is its spelling (None for a phone-made pseudo-word), `phonemes` espeak mnemonics.

    When `phonemes` is set the audio is made from them (`[[...]]` phoneme input), otherwise from `text`.
    """

    text: str | None
    phonemes: str | None = None

    @property
    def speak(self) -> str:
        return f"[[{self.phonemes}]]" if self.phonemes is not None else str(self.text)


@dataclasses.dataclass
class Draft:
    group: str
    task: str
    category: str
    candidates: list[Spoken]
    label: int = 0
    prompt: Spoken | None = None
    references: list[str] = dataclasses.field(default_factory=list)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A source entry a builder could not turn into an item (listed in the benchmark's skipped.jsonl)."""

    item: str
    reason: str


def safe_id(text: str) -> str:
    """An id usable in file names and as a JSON key (letters, digits, `-`, `_`, `.`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def ranking_candidates(answer: str, pool: list[str], num: int, rng: np.random.Generator,
                       exclude: set[str] | None = None) -> tuple[list[str], int]:
    """The answer plus `num - 1` distractors drawn from `pool` (other questions' answers), shuffled.

    Distractors differ from the answer and from `exclude` (its aliases) after case folding, and from each other.
    Returns (candidates, index of the answer). Raises ValueError when the pool is too small.
    """
    banned = {answer.casefold()} | {e.casefold() for e in exclude or set()}
    chosen: list[str] = []
    for j in rng.permutation(len(pool)):
        cand = pool[int(j)]
        if cand.casefold() in banned:
            continue
        banned.add(cand.casefold())
        chosen.append(cand)
        if len(chosen) == num - 1:
            break
    if len(chosen) < num - 1:
        raise ValueError(f"only {len(chosen)} distractors available for {answer!r}, need {num - 1}")
    cands = [answer, *chosen]
    order = rng.permutation(len(cands))
    cands = [cands[int(i)] for i in order]
    return cands, cands.index(answer)
