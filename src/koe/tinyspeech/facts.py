"""Invented facts for knowledge-transfer tests: `the capital of randira is felane .`

    >>> from koe.tinyspeech import facts, fact_questions
    >>> f = facts()[0]
    >>> f.statement, f.question, f.answer, f.split
    ('the capital of randira is felane .', 'what is the capital of randira ?', 'felane', 'text_and_speech')

Every place, city, river and king name is invented (see `phonotactics.invented_names`), so a model can only know a
fact from its training data. Each fact carries a split label that decides where the corpus puts it:

- `text_and_speech`: in training text and in training speech; the ceiling for spoken question answering.
- `text_only`: only in training text; asked in speech at evaluation, it measures how much knowledge learnt from
  text transfers to speech input (the synth stage must not speak these: `TextItem.meta["fact_split"]`).
- `heldout`: never in training; its accuracy is the chance baseline (with 4 candidates, about 25%).

Splits are assigned per relation with exact counts (largest remainder), so every relation has every split.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from koe.seed import derive_seed
from koe.tinyspeech.phonotactics import invented_names

SPLITS = ("text_and_speech", "text_only", "heldout")
DEFAULT_PROPORTIONS = (0.5, 0.4, 0.1)
NUM_PLACES = 120
# relation -> (how many places have it, question word)
RELATIONS = {"capital": (120, "what"), "river": (45, "what"), "king": (45, "who")}


@dataclasses.dataclass(frozen=True)
class Fact:
    """`the <relation> of <subject> is <answer> .`, asked as `<what|who> is the <relation> of <subject> ?`."""

    id: str
    relation: str
    subject: str
    answer: str
    statement: str
    question: str
    split: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FactQuestion:
    """A spoken-QA item: the question, its answer, and candidates (the answer among same-relation distractors)."""

    id: str
    fact_id: str
    question: str
    answer: str
    candidates: list[str]
    split: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _split_counts(n: int, proportions: tuple[float, ...]) -> list[int]:
    raw = [n * p / sum(proportions) for p in proportions]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def facts(seed: int = 0, proportions: tuple[float, float, float] = DEFAULT_PROPORTIONS) -> list[Fact]:
    """All facts (210 by default), deterministic given `seed`; `proportions` for text_and_speech/text_only/heldout."""
    if len(proportions) != 3 or min(proportions) < 0 or sum(proportions) <= 0:
        raise ValueError(f"proportions must be three non-negative numbers, got {proportions}")
    rng = random.Random(derive_seed(seed, "tinyspeech-facts"))
    num_answers = sum(n for n, _ in RELATIONS.values())
    names = invented_names(NUM_PLACES + num_answers, derive_seed(seed, "tinyspeech-names"))
    places, answers = names[:NUM_PLACES], iter(names[NUM_PLACES:])
    out: list[Fact] = []
    for relation, (count, wh) in RELATIONS.items():
        splits = [s for s, c in zip(SPLITS, _split_counts(count, proportions), strict=True) for _ in range(c)]
        rng.shuffle(splits)
        for k, (place, split) in enumerate(zip(rng.sample(places, count), splits, strict=True)):
            answer = next(answers)
            out.append(Fact(f"fact-{relation}-{k:03d}", relation, place, answer,
                            f"the {relation} of {place} is {answer} .", f"{wh} is the {relation} of {place} ?", split))
    return out


def fact_questions(seed: int = 0, num_candidates: int = 4,
                   proportions: tuple[float, float, float] = DEFAULT_PROPORTIONS) -> list[FactQuestion]:
    """One question per fact. Distractors are answers of other facts with the same relation and, where there are
    enough, the same split: a heldout question then offers only never-seen names (a clean chance baseline), and a
    text_only question only names seen equally often, so name frequency cannot give the answer away."""
    all_facts = facts(seed, proportions)
    out = []
    for f in all_facts:
        rng = random.Random(derive_seed(seed, "tinyspeech-candidates", f.id))
        same = [g.answer for g in all_facts if g.relation == f.relation and g.id != f.id and g.split == f.split]
        if len(same) < num_candidates - 1:
            same = [g.answer for g in all_facts if g.relation == f.relation and g.id != f.id]
        candidates = [f.answer, *rng.sample(same, num_candidates - 1)]
        rng.shuffle(candidates)
        out.append(FactQuestion(f"q-{f.id}", f.id, f.question, f.answer, candidates, f.split))
    return out
