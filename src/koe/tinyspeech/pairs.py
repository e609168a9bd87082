"""Minimal pairs for zero-shot evaluation, in the style of sWUGGY, sBLIMP and (t)StoryCloze, from TinySpeech.

    >>> from koe.tinyspeech import syntactic_pairs
    >>> p = syntactic_pairs(4, seed=0)[0]
    >>> p.category, p.good, p.bad
    ('subject_verb_agreement', 'those bees laugh behind the garden .', 'those bees laughs behind the garden .')

A model passes a pair when it gives `good` a higher likelihood than `bad` (for semantic pairs: the ending after
`prompt`). The two sides differ only as the category says, so the score isolates one ability:

- lexical (category = part of speech): a real word against a pseudo-word made from it (`phonotactics.pseudo_word`).
- syntactic: `subject_verb_agreement` and `determiner_noun_agreement` change one word's number;
  `word_order` reorders the same words; `argument_structure` swaps a strictly transitive verb and a strictly
  intransitive one, so one side leaves a transitive verb without its object or gives an intransitive one an object.
- semantic: `causal` (a need story ending with the action another need calls for), `contradiction` (the ending
  changes the colour of the found thing, or sends the protagonist home to a place it does not live in) and `topic`
  (the ending of another story, about another protagonist: tStoryCloze's random ending).

Good sentences and story openings come only from the tenth of the language `grammar.reserved` keeps out of the
training corpus, so no evaluation item is a copy of a training item, whatever the seeds.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from koe.seed import derive_seed
from koe.tinyspeech import grammar as g
from koe.tinyspeech.lexicon import Word, adjectives_for, by_pos, nouns_with, word
from koe.tinyspeech.phonotactics import pseudo_word
from koe.tinyspeech.stories import MOODS, Story, story

SYNTACTIC_CATEGORIES = ("subject_verb_agreement", "determiner_noun_agreement", "word_order", "argument_structure")
SEMANTIC_CATEGORIES = ("causal", "contradiction", "topic")
LEXICAL_CATEGORIES = ("noun", "verb", "adjective", "adverb")
_SG_MARKED = ("this", "that", "a", "every", "one")
_PL_MARKED = ("these", "those", "two", "three", "many")


@dataclasses.dataclass(frozen=True)
class MinimalPair:
    """`good` should score higher than `bad`; for semantic pairs both are endings of the shared `prompt`."""

    id: str
    kind: str  # lexical | syntactic | semantic
    category: str
    good: str
    bad: str
    prompt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _strict(args: str) -> list[Word]:
    """Strictly transitive or intransitive verbs; without `go` and `sit`, whose story sentences (`she goes to the
    pond .`) would otherwise make a good sentence that also occurs in the training stories."""
    return [v for v in by_pos("verb") if v.args == args and v.text not in ("go", "sit")]


def _lexical_candidates() -> list[Word]:
    """Every word a lexical pair may test, whatever the seed; a word with two parts of speech (clean) once."""
    first: dict[str, Word] = {}
    for w in (w for pos in LEXICAL_CATEGORIES for w in by_pos(pos) if len(w.text) >= 3):
        first.setdefault(w.text, w)
    return list(first.values())


def lexical_pair_words() -> frozenset[str]:
    """The real words of lexical pairs, for any seed and size: the corpus never speaks these alone (`word` items)."""
    return frozenset(w.text for w in _lexical_candidates())


def lexical_pairs(num: int, seed: int) -> list[MinimalPair]:
    """`num` word / pseudo-word pairs over nouns, verbs, adjectives and adverbs, each word in turn."""
    rng = random.Random(derive_seed(seed, "tinyspeech-lexical"))
    words = _lexical_candidates()
    rng.shuffle(words)
    seen: set[tuple[str, str]] = set()
    out: list[MinimalPair] = []
    for k in range(50 * num + 1000):
        if len(out) == num:
            return out
        w = words[k % len(words)]
        fake = pseudo_word(w.text, rng)
        if fake is not None and (w.text, fake) not in seen:
            seen.add((w.text, fake))
            out.append(MinimalPair(f"lexical-{len(out):05d}", "lexical", w.pos, w.text, fake))
    raise ValueError(f"cannot make {num} distinct lexical pairs (got {len(out)})")


def _agreement(rng: random.Random) -> tuple[list[str], list[str]]:
    s = g.subject(rng, pronoun_p=0.25, attractor_p=0.3)
    frame = g.pick(rng, ("intransitive", "transitive", "be", "do"))
    if frame == "be":
        adjectives = [a for a in adjectives_for(s.noun or word("child", "noun")) if a.text not in MOODS]
        tail = [g.pick(rng, adjectives).text, "."]  # (not a mood: `she is hungry .` is a story sentence)
        return [*s.tokens, g.be(s.agr), *tail], [*s.tokens, g.be(g.other_agr(s.agr)), *tail]
    if frame == "do":
        v = g.pick(rng, _strict("t"))
        tail = ["not", v.text, *g.object_phrase(rng, v).tokens, "."]
        return [*s.tokens, g.do(s.agr), *tail], [*s.tokens, g.do(g.other_agr(s.agr)), *tail]
    v = g.pick(rng, _strict("t") if frame == "transitive" else _strict("i"))
    tail = [*(g.object_phrase(rng, v).tokens if frame == "transitive" else g.location(rng, v)), "."]
    return [*s.tokens, g.finite(v, s.agr), *tail], [*s.tokens, g.finite(v, g.other_agr(s.agr)), *tail]


def _determiner(rng: random.Random) -> tuple[list[str], list[str]]:
    s, v = g.subject(rng, pronoun_p=0.25), g.pick(rng, _strict("t"))
    noun = g.pick(rng, [n for n in nouns_with(*v.tags) if n.plural])
    plural = rng.random() < 0.5
    obj = g.noun_phrase(rng, noun, plural, g.pick(rng, _PL_MARKED if plural else _SG_MARKED), adj_p=0.3)
    wrong = [*obj.tokens[:-1], noun.text if plural else noun.plural]
    head = [*s.tokens, g.finite(v, s.agr)]
    return [*head, *obj.tokens, "."], [*head, *wrong, "."]


def _word_order(rng: random.Random) -> tuple[list[str], list[str]]:
    s = g.noun_phrase(rng, g.pick(rng, nouns_with("animate")), rng.random() < 0.45, adj_p=0.5)
    transitive = rng.random() < 0.5
    v = g.pick(rng, _strict("t") if transitive else _strict("i"))
    verb = g.finite(v, s.agr)
    rest = g.object_phrase(rng, v).tokens if transitive else g.location(rng, v)
    good = [*s.tokens, verb, *rest, "."]
    moves: list[Callable[[], list[str]]] = [
        lambda: [s.tokens[1], s.tokens[0], *s.tokens[2:], verb, *rest, "."],  # determiner after the next word
        lambda: [verb, *s.tokens, *rest, "."],  # verb first
    ]
    if transitive:  # (an intransitive verb after a location would read as "the dog in the barn sleeps")
        moves.append(lambda: [*s.tokens, *rest, verb, "."])  # object before the verb
    if len(s.tokens) == 3:
        moves.append(lambda: [s.tokens[0], s.tokens[2], s.tokens[1], verb, *rest, "."])  # adjective after noun
    if not transitive:
        moves.append(lambda: [*s.tokens, verb, *rest[1:], rest[0], "."])  # preposition after its noun phrase
    return good, g.pick(rng, moves)()


def _argument(rng: random.Random) -> tuple[list[str], list[str]]:
    s = g.subject(rng, pronoun_p=0.25)
    vt, vi = g.pick(rng, _strict("t")), g.pick(rng, _strict("i"))
    if rng.random() < 0.5:  # an intransitive verb given an object
        obj = g.object_phrase(rng, vt).tokens
        return [*s.tokens, g.finite(vt, s.agr), *obj, "."], [*s.tokens, g.finite(vi, s.agr), *obj, "."]
    loc = g.location(rng, vi)  # a transitive verb left without its object
    return [*s.tokens, g.finite(vi, s.agr), *loc, "."], [*s.tokens, g.finite(vt, s.agr), *loc, "."]


_SYNTACTIC: dict[str, Callable[[random.Random], tuple[list[str], list[str]]]] = {
    "subject_verb_agreement": _agreement, "determiner_noun_agreement": _determiner, "word_order": _word_order,
    "argument_structure": _argument,
}


def syntactic_pairs(num: int, seed: int) -> list[MinimalPair]:
    """`num` grammatical / ungrammatical sentence pairs, the four categories in turn, all good sentences distinct."""
    rng = random.Random(derive_seed(seed, "tinyspeech-syntactic"))
    seen: set[str] = set()
    out: list[MinimalPair] = []
    for i in range(num):
        category = SYNTACTIC_CATEGORIES[i % len(SYNTACTIC_CATEGORIES)]
        for _ in range(10_000):
            good, bad = (" ".join(t) for t in _SYNTACTIC[category](rng))
            if good != bad and good not in seen and g.reserved(good):
                break
        else:
            raise ValueError(f"cannot make {num} distinct {category} pairs (got {i})")
        seen.add(good)
        out.append(MinimalPair(f"syntactic-{i:05d}", "syntactic", category, good, bad))
    return out


def _semantic(rng: random.Random, category: str) -> tuple[Story, list[str]]:
    if category == "causal":
        s = story(rng, "need", for_eval=True)
        return s, s.bad["causal"]
    if category == "contradiction":
        s = story(rng, g.pick(rng, ("object", "journey")), for_eval=True)
        return s, s.bad["contradiction"]
    s = story(rng, for_eval=True)
    while True:  # the ending of a story about someone else, somewhere else
        other = story(rng, s.schema)
        ending = other.sentences[other.ending]
        prompt_words = {t for sentence in s.sentences[: s.ending] for t in sentence}
        if other.setting != s.setting and other.protagonist.text not in prompt_words \
                and s.protagonist.text not in ending:
            return s, ending


def semantic_pairs(num: int, seed: int) -> list[MinimalPair]:
    """`num` story prompts (3-4 sentences) with a coherent and an incoherent ending, the categories in turn."""
    rng = random.Random(derive_seed(seed, "tinyspeech-semantic"))
    seen: set[str] = set()
    out: list[MinimalPair] = []
    for i in range(num):
        category = SEMANTIC_CATEGORIES[i % len(SEMANTIC_CATEGORIES)]
        for _ in range(10_000):
            s, bad = _semantic(rng, category)
            prompt = " ".join(t for sentence in s.sentences[: s.ending] for t in sentence)
            if prompt not in seen:
                break
        else:
            raise ValueError(f"cannot make {num} distinct {category} pairs (got {i})")
        seen.add(prompt)
        good = " ".join(s.sentences[s.ending])
        out.append(MinimalPair(f"semantic-{i:05d}", "semantic", category, good, " ".join(bad), prompt))
    return out
