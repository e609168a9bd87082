"""TinySpeech stories: 3-5 sentences about one protagonist in one setting, from four schemas.

    there is a little fox in the forest . the fox is hungry . it finds an apple near the tree .
    the fox eats the apple . now the fox is happy .

Each schema has a regular inner logic a small model can pick up, and that semantic minimal pairs test:
`need` (a state and the action it calls for: hungry -> eats, thirsty -> drinks, tired -> sleeps, cold -> sits near
the fire), `object` (a found thing keeps its colour), `journey` (the protagonist goes back to where it lives) and
`friend` (the protagonist meets another animal and they play together). Later mentions use `the <noun>` or a
pronoun; the ending sentence always names the protagonist, so an ending borrowed from another story is visibly
about someone else.
"""

from __future__ import annotations

import dataclasses
import random

from koe.tinyspeech.grammar import pick, reserved
from koe.tinyspeech.lexicon import Word, adjectives_for, article, nouns_with

STATES = ("hungry", "thirsty", "tired", "cold")
MOODS = ("hungry", "thirsty", "tired", "cold", "happy", "sad", "sleepy", "warm", "angry")
COLORS = ("red", "blue", "green", "yellow", "white", "black", "brown", "pink", "gray")
ACTIVITIES = ("plays", "sings", "rests", "waits", "sits", "dances")


@dataclasses.dataclass
class Story:
    """A full story, where its pair ending sits, and the incoherent endings it supports (category -> tokens)."""

    schema: str
    sentences: list[list[str]]
    ending: int  # index of the sentence semantic pairs replace; the prompt is every sentence before it
    optional: tuple[int, ...]  # sentences a training story may leave out
    protagonist: Word
    setting: Word
    bad: dict[str, list[str]]

    @property
    def key(self) -> str:
        """The opening two sentences: they decide whether the story is reserved for evaluation."""
        return " ".join(self.sentences[0] + self.sentences[1])

    def text(self, drop: tuple[int, ...] = ()) -> str:
        return " ".join(t for i, s in enumerate(self.sentences) if i not in drop for t in s)


class _Cast:
    """The protagonist, how to refer to it, and its setting."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.noun = pick(rng, nouns_with("animate"))
        adjectives = [a.text for a in adjectives_for(self.noun) if a.text not in MOODS]
        self.adj = pick(rng, adjectives)
        self.setting = pick(rng, [p for p in nouns_with("place") if "water" not in p.tags])
        tags = self.noun.tags
        self.pronoun = "he" if "male" in tags else "she" if "female" in tags else "it" if "animal" in tags else None
        self.possessive = {"he": "his", "she": "her", "it": "its", None: "the"}[self.pronoun]

    def where(self, place: Word | None = None) -> list[str]:
        place = place or self.setting
        return ["on" if "on" in place.tags else "in", "the", place.text]

    def opening(self, lives: bool = False) -> list[str]:
        np = [article(self.adj), self.adj, self.noun.text]
        if lives or self.rng.random() < 0.5:
            return [*np, "lives", *self.where(), "."]
        return ["there", "is", *np, *self.where(), "."]

    def the(self) -> list[str]:
        return ["the", self.noun.text]

    def ref(self) -> list[str]:
        """A later mention: the noun, or its pronoun a third of the time."""
        return [self.pronoun] if self.pronoun and self.rng.random() < 0.35 else self.the()


def _need_action(cast: _Cast, state: str, food: Word) -> list[str]:
    return {"hungry": ["eats", "the", food.text], "thirsty": ["drinks", "some", "water"],
            "tired": ["sleeps", "for", "a", "long", "time"], "cold": ["sits", "near", "the", "fire"]}[state]


def _need(rng: random.Random, cast: _Cast) -> Story:
    state, food = pick(rng, STATES), pick(rng, [f for f in nouns_with("food") if f.plural])
    middle = {"hungry": ["finds", article(food.text), food.text, "near", "the", pick(rng, ("tree", "fence", "wall"))],
              "thirsty": ["goes", "to", "the", pick(rng, nouns_with("water")).text],
              "tired": ["goes", "to", cast.possessive, "bed"], "cold": ["goes", "into", "the", "house"]}[state]
    other = pick(rng, [s for s in STATES if s != state])
    sentences = [cast.opening(), [*pick(rng, (["one", "day", *cast.the()], cast.ref())), "is", state, "."],
                 [*cast.ref(), *middle, "."], [*cast.the(), *_need_action(cast, state, food), "."],
                 ["now", *cast.the(), "is", "happy", "."]]
    bad_action = _need_action(cast, other, food)
    if other == "hungry":
        bad_action = ["eats", article(food.text), food.text]
    return Story("need", sentences, 3, (2, 4), cast.noun, cast.setting, {"causal": [*cast.the(), *bad_action, "."]})


def _object(rng: random.Random, cast: _Cast) -> Story:
    thing, color = pick(rng, nouns_with("toy")), pick(rng, COLORS)
    other = pick(rng, [c for c in COLORS if c != color])
    place = pick(rng, [p for p in nouns_with("place") if p is not cast.setting])
    sentences = [cast.opening(), ["one", "day", *cast.ref(), "finds", article(color), color, thing.text,
                                  *cast.where(place), "."],
                 [*cast.ref(), "takes", "the", color, thing.text, "home", "."],
                 [*cast.ref(), "is", "very", "happy", "."],
                 [*cast.the(), "plays", "with", "the", color, thing.text, "every", "day", "."]]
    bad = [*cast.the(), "plays", "with", "the", other, thing.text, "every", "day", "."]
    return Story("object", sentences, 4, (3,), cast.noun, cast.setting, {"contradiction": bad})


def _journey(rng: random.Random, cast: _Cast) -> Story:
    dest, elsewhere = rng.sample([p for p in nouns_with("place") if p is not cast.setting], 2)
    sentences = [cast.opening(lives=True), ["every", "morning", *cast.ref(), "walks", "to", "the", dest.text, "."],
                 [*cast.ref(), pick(rng, ACTIVITIES), "there", "."],
                 ["in", "the", "evening", *cast.the(), "goes", "back", "to", "the", cast.setting.text, "."],
                 ["then", *cast.ref(), "sleeps", "."]]
    bad = ["in", "the", "evening", *cast.the(), "goes", "back", "to", "the", elsewhere.text, "."]
    return Story("journey", sentences, 3, (2, 4), cast.noun, cast.setting, {"contradiction": bad})


def _friend(rng: random.Random, cast: _Cast) -> Story:
    friend = pick(rng, [n for n in nouns_with("animal") if n is not cast.noun])
    nice = pick(rng, [a.text for a in adjectives_for(friend) if a.text in ("friendly", "funny", "clever", "brave")])
    sentences = [cast.opening(), ["one", "day", *cast.ref(), "meets", article(friend.text), friend.text, "."],
                 ["the", friend.text, "is", "very", nice, "."],
                 [*cast.the(), "and", "the", friend.text, "play", "together", "."],
                 ["now", "they", "are", "good", "friends", "."]]
    return Story("friend", sentences, 3, (2, 4), cast.noun, cast.setting, {})


SCHEMAS = {"need": _need, "object": _object, "journey": _journey, "friend": _friend}


def story(rng: random.Random, schema: str | None = None, for_eval: bool = False) -> Story:
    """A story whose opening is reserved for evaluation (`for_eval`) or not; see `grammar.reserved`."""
    while True:
        s = SCHEMAS[schema or pick(rng, tuple(SCHEMAS))](rng, _Cast(rng))
        if reserved(s.key) == for_eval:
            return s


def training_story(rng: random.Random) -> tuple[str, Story]:
    """A corpus story of 3-5 sentences: the full story, or with one or two optional sentences left out."""
    s = story(rng)
    drop = pick(rng, [(), (), *[(i,) for i in s.optional], s.optional])
    return s.text(drop), s
