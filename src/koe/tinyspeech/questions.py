"""TinySpeech questions: a context statement, a question about it, and the short answer.

    the dog sleeps in the barn . where does the dog sleep ? in the barn .
    the girls are hungry . are the girls tired ? no .

The answer is always in the context, so a small model can learn question forms (do-support, inversion, wh-words)
and the `question ? answer .` format that fact questions use, without world knowledge.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from koe.tinyspeech.grammar import be, do, finite, location, noun_phrase, object_phrase, pick, verb
from koe.tinyspeech.lexicon import adjectives_for, nouns_with

COLORS = ("red", "blue", "green", "yellow", "white", "black", "brown", "pink", "gray")


def _the(rng: random.Random, *tags: str):
    return noun_phrase(rng, pick(rng, nouns_with(*tags)), rng.random() < 0.4, "the", 0.3)


def _q_where_verb(rng):
    s, v = _the(rng, "animate"), verb(rng, "i")
    loc = location(rng, v)
    return [*s.tokens, finite(v, s.agr), *loc, ".", "where", do(s.agr), *s.tokens, v.text, "?", *loc, "."]


def _q_what(rng):
    s, v = _the(rng, "animate"), verb(rng, "t")
    o = object_phrase(rng, v)
    return [*s.tokens, finite(v, s.agr), *o.tokens, ".", "what", do(s.agr), *s.tokens, v.text, "?", *o.tokens, "."]


def _q_who(rng):
    s, v = _the(rng, "animate"), verb(rng, "t")
    o = object_phrase(rng, v)
    return [*s.tokens, finite(v, s.agr), *o.tokens, ".", "who", v.third, *o.tokens, "?", *s.tokens, "."]


def _q_yes_no_adjective(rng):
    s = _the(rng, "animate")
    adjectives = adjectives_for(s.noun)
    a = pick(rng, adjectives).text
    b = a if rng.random() < 0.5 else pick(rng, [x.text for x in adjectives if x.text != a])
    return [*s.tokens, be(s.agr), a, ".", be(s.agr), *s.tokens, b, "?", "yes" if a == b else "no", "."]


def _q_yes_no_verb(rng):
    s, v = _the(rng, "animate"), verb(rng, "t")
    o = object_phrase(rng, v)
    asked = o if rng.random() < 0.5 else object_phrase(rng, v)
    answer = "yes" if asked.tokens == o.tokens else "no"
    return [*s.tokens, finite(v, s.agr), *o.tokens, ".", do(s.agr), *s.tokens, v.text, *asked.tokens, "?", answer, "."]


def _q_where_be(rng):
    s, loc = _the(rng, "animate", "portable"), location(rng)
    return [*s.tokens, be(s.agr), *loc, ".", "where", be(s.agr), *s.tokens, "?", *loc, "."]


def _q_color(rng):
    s = noun_phrase(rng, pick(rng, nouns_with("toy", "furniture", "vehicle")), False, "the", 0)
    color = pick(rng, COLORS)
    return [*s.tokens, be(s.agr), color, ".", "what", "color", be(s.agr), *s.tokens, "?", color, "."]


def _q_how_many(rng):
    noun = pick(rng, [n for n in nouns_with("animal", "portable") if n.plural])
    count, loc, plural = pick(rng, ("two", "three", "four", "five")), location(rng), noun.plural
    return ["there", "are", count, plural, *loc, ".", "how", "many", plural, "are", "there", *loc, "?", count, "."]


QUESTIONS: dict[str, Callable[[random.Random], list[str]]] = {
    "where_verb": _q_where_verb, "what": _q_what, "who": _q_who, "yes_no_adjective": _q_yes_no_adjective,
    "yes_no_verb": _q_yes_no_verb, "where_be": _q_where_be, "color": _q_color, "how_many": _q_how_many,
}


def question(rng: random.Random, template: str | None = None) -> tuple[list[str], str]:
    """Context, question and answer tokens, and the template name."""
    name = template or pick(rng, tuple(QUESTIONS))
    return QUESTIONS[name](rng), name
