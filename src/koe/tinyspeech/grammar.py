"""The TinySpeech sentence grammar: noun phrases, agreement, and a few dozen statement and question templates.

    >>> import random
    >>> from koe.tinyspeech.grammar import statement
    >>> from koe.tinyspeech.questions import question
    >>> " ".join(statement(random.Random(3))[0])
    'my brothers are in the yard .'
    >>> " ".join(question(random.Random(3))[0])
    'the brothers are quiet . are the brothers strong ? no .'

Everything is present tense, so every clause shows subject-verb agreement (`the dog sleeps`, `the dogs sleep`,
`i am`, `he is`); determiners agree with their noun in number (`this dog`, `these dogs`); `a`/`an` follows the next
word. Word choice obeys the lexicon's tags (dogs eat food, girls read books). A tenth of all possible sentences is
reserved for evaluation (`reserved`): the corpus never contains them, minimal pairs are built only from them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from koe.seed import derive_seed
from koe.tinyspeech.lexicon import Word, adjectives_for, article, by_pos, nouns_with, word

SG_DETS = ("the", "a", "this", "that", "every", "my", "his", "her", "our", "their", "one")
PL_DETS = ("the", "these", "those", "some", "many", "two", "three", "four", "five", "my", "our", "their")
MASS_DETS = ("the", "some", "my", "his", "her", "our", "their")
PRONOUNS = {"i": "1sg", "you": "other", "he": "3sg", "she": "3sg", "it": "3sg", "we": "other", "they": "other"}
OBJECT_PRONOUN = {"he": "him", "she": "her", "it": "it"}


def reserved(text: str) -> bool:
    """True for the tenth of sentences (or story openings) kept for evaluation; independent of any seed."""
    return derive_seed(0, "tinyspeech-eval", text) % 10 == 0


@dataclasses.dataclass
class Phrase:
    """A noun phrase and what agreement it triggers: `3sg` (the dog, he), `1sg` (i) or `other` (plural, you)."""

    tokens: list[str]
    agr: str
    noun: Word | None = None


def finite(verb: Word, agr: str) -> str:
    return verb.third if agr == "3sg" else verb.text


def be(agr: str) -> str:
    return {"3sg": "is", "1sg": "am"}.get(agr, "are")


def do(agr: str) -> str:
    return "does" if agr == "3sg" else "do"


def other_agr(agr: str) -> str:
    """The agreement an error would use: singular for plural subjects and the reverse."""
    return "other" if agr == "3sg" else "3sg"


def pick(rng: random.Random, options: tuple | list):
    return options[rng.randrange(len(options))]


def noun_phrase(rng: random.Random, noun: Word, plural: bool, det: str | None = None,
                adj_p: float = 0.35) -> Phrase:
    """`det [adj] noun` with a determiner that agrees in number; mass nouns are never plural."""
    plural = plural and noun.plural is not None
    head = noun.plural if plural else noun.text
    dets = MASS_DETS if noun.plural is None else PL_DETS if plural else SG_DETS
    det = det or pick(rng, dets)
    words = [head]
    adjectives = adjectives_for(noun)
    if adjectives and rng.random() < adj_p:
        words.insert(0, pick(rng, adjectives).text)
    if det == "a":
        det = article(words[0])
    return Phrase([det, *words], "other" if plural else "3sg", noun)


def subject(rng: random.Random, pronoun_p: float = 0.15, attractor_p: float = 0.0) -> Phrase:
    """An animate subject, sometimes a pronoun, sometimes with a prepositional phrase holding a distracting noun."""
    if rng.random() < pronoun_p:
        p = pick(rng, tuple(PRONOUNS))
        return Phrase([p], PRONOUNS[p])
    np = noun_phrase(rng, pick(rng, nouns_with("animate")), rng.random() < 0.45)
    if rng.random() < attractor_p:
        prep = pick(rng, ("near", "behind", "with"))
        other = pick(rng, nouns_with("animate") if prep == "with" else nouns_with("furniture", "vehicle", "nature"))
        np.tokens += [prep, *noun_phrase(rng, other, np.agr == "3sg", "the", 0).tokens]
    return np


def verb(rng: random.Random, args: str) -> Word:
    """A verb whose argument frame allows `args` ("t": with an object, "i": without one)."""
    frames = ("i", "ti") if args == "i" else ("t", "T", "ti")
    return pick(rng, [v for v in by_pos("verb") if v.args in frames and (args == "i" or v.tags)])


def object_phrase(rng: random.Random, v: Word) -> Phrase:
    return noun_phrase(rng, pick(rng, nouns_with(*v.tags)), rng.random() < 0.4)


MOTION = ("go", "come", "walk", "run", "fly", "swim")


def location(rng: random.Random, v: Word | None = None) -> list[str]:
    """`in the garden`, `on the farm`, `under the table`: a place with its usual preposition, or furniture.

    After a verb of motion the place is a goal: `the dog runs to the river`.
    """
    if v is not None and v.text in MOTION:
        return ["to", "the", pick(rng, nouns_with("place")).text]
    if rng.random() < 0.7:
        place = pick(rng, nouns_with("place"))
        prep = "on" if "on" in place.tags else pick(rng, ("in", "near", "in", "behind"))
        return [prep, "the", place.text]
    return [pick(rng, ("under", "on", "behind", "near")), "the", pick(rng, nouns_with("furniture")).text]


def _s_intransitive(rng):
    s, v = subject(rng, attractor_p=0.2), verb(rng, "i")
    return [*s.tokens, finite(v, s.agr), *location(rng, v)]


def _s_transitive(rng):
    s, v = subject(rng, attractor_p=0.2), verb(rng, "t")
    tail = location(rng) if rng.random() < 0.4 else []
    return [*s.tokens, finite(v, s.agr), *object_phrase(rng, v).tokens, *tail]


def _s_adjective(rng):
    s = subject(rng, pronoun_p=0.2)
    adjectives = adjectives_for(s.noun) if s.noun else adjectives_for(word("boy", "noun"))
    return [*s.tokens, be(s.agr), *(["very"] if rng.random() < 0.2 else []), pick(rng, adjectives).text]


def _s_where(rng):
    s = subject(rng, pronoun_p=0.2)
    return [*s.tokens, be(s.agr), *location(rng)]


def _s_there(rng):
    plural = rng.random() < 0.5
    det = pick(rng, ("some", "many", "two", "three") if plural else ("a",))
    np = noun_phrase(rng, pick(rng, [n for n in nouns_with("animate", "portable") if n.plural]), plural, det)
    return ["there", be(np.agr), *np.tokens, *location(rng)]


def _s_adverb(rng):
    s, v = subject(rng), verb(rng, "i")
    return [*s.tokens, pick(rng, ("always", "often", "never", "sometimes")), finite(v, s.agr), *location(rng, v)]


def _s_manner(rng):
    s = subject(rng)
    return [*s.tokens, finite(verb(rng, "i"), s.agr), pick(rng, ("slowly", "quickly", "happily", "quietly"))]


def _s_coordinated_subject(rng):
    a = noun_phrase(rng, pick(rng, nouns_with("animate")), False, "the", 0.2)
    b = noun_phrase(rng, pick(rng, nouns_with("animate")), rng.random() < 0.5, "the", 0.2)
    return [*a.tokens, "and", *b.tokens, finite(verb(rng, "i"), "other"), "together"]


def _s_two_verbs(rng):
    s, v1, v2 = subject(rng), verb(rng, "t"), verb(rng, "t")
    return [*s.tokens, finite(v1, s.agr), *object_phrase(rng, v1).tokens, "and", finite(v2, s.agr),
            *object_phrase(rng, v2).tokens]


def _s_negation(rng):
    s, v = subject(rng, pronoun_p=0.2), verb(rng, "t")
    return [*s.tokens, do(s.agr), "not", v.text, *object_phrase(rng, v).tokens]


def _s_modal(rng):
    s, v = subject(rng, pronoun_p=0.2), verb(rng, "i")
    return [*s.tokens, "can", v.text, *location(rng, v)]


def _s_time(rng):
    s, v = subject(rng), verb(rng, "i")
    when = pick(rng, (["every", "morning"], ["every", "day"], ["in", "the", "evening"], ["today"], ["now"]))
    return [*when, *s.tokens, finite(v, s.agr), *location(rng, v)]


def _s_because(rng):
    s, v = subject(rng, pronoun_p=0), verb(rng, "t")
    state = pick(rng, ("hungry", "happy", "tired", "sad", "thirsty"))
    pronoun = "they" if s.agr == "other" else "he" if "male" in s.noun.tags else "she" if "female" in s.noun.tags \
        else "it"
    return [*s.tokens, finite(v, s.agr), *object_phrase(rng, v).tokens, "because", pronoun, be(PRONOUNS[pronoun]),
            state]


STATEMENTS: dict[str, Callable[[random.Random], list[str]]] = {
    "intransitive": _s_intransitive, "transitive": _s_transitive, "adjective": _s_adjective, "where": _s_where,
    "there": _s_there, "adverb": _s_adverb, "manner": _s_manner, "coordinated": _s_coordinated_subject,
    "two_verbs": _s_two_verbs, "negation": _s_negation, "modal": _s_modal, "time": _s_time,
    "because": _s_because,
}


def statement(rng: random.Random, template: str | None = None) -> tuple[list[str], str]:
    """One statement's tokens (ending in `.`) and its template name."""
    name = template or pick(rng, tuple(STATEMENTS))
    return [*STATEMENTS[name](rng), "."], name
