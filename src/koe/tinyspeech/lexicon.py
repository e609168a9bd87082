"""The TinySpeech lexicon: ~400 common English words with their part of speech and a few semantic tags.

    >>> from koe.tinyspeech import lexicon
    >>> [w.text for w in lexicon() if w.pos == "noun"][:3]
    ['boy', 'girl', 'man']

Words are real, common and lowercase so that espeak-ng pronounces them well and the aligner's CMU dictionary knows
them. Tags keep generated sentences sensible (a dog eats food, reads nothing): nouns carry classes (`animate`,
`food`, `portable`, ...), verbs carry the classes their object may have, adjectives the classes they describe.
Inflection is regular by spelling rule, with the few irregular forms written out.
"""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class Word:
    """One lexicon entry. `tags`: noun classes; for verbs the object classes; for adjectives the noun classes."""

    text: str
    pos: str  # noun verb adjective adverb determiner number preposition conjunction pronoun question auxiliary answer
    tags: tuple[str, ...] = ()
    plural: str | None = None  # nouns; None for mass nouns
    third: str | None = None  # verbs: 3rd person singular present
    args: str = ""  # verbs: "t" needs an object, "T" has one here but may drop it, "ti" either way, "i" takes none

    @property
    def forms(self) -> tuple[str, ...]:
        return tuple(f for f in (self.text, self.plural, self.third) if f)


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


_IRREGULAR_PLURAL = {"man": "men", "woman": "women", "child": "children", "mouse": "mice", "wolf": "wolves",
                     "leaf": "leaves", "potato": "potatoes", "tomato": "tomatoes"}
_IRREGULAR_THIRD = {"go": "goes", "do": "does", "have": "has"}

# noun: extra tags. Every noun also gets its class (the section it is listed in) as a tag.
_NOUNS: dict[str, dict[str, str]] = {
    "person": {
        "boy": "male", "girl": "female", "man": "male", "woman": "female", "child": "", "baby": "",
        "king": "male", "queen": "female", "prince": "male", "princess": "female", "farmer": "", "baker": "",
        "teacher": "", "doctor": "", "friend": "", "sister": "female", "brother": "male", "mother": "female",
        "father": "male", "student": "", "sailor": "", "driver": "", "painter": "", "singer": "", "nurse": "",
        "pilot": "", "hunter": "", "uncle": "male", "aunt": "female", "neighbor": "", "guard": "", "captain": "",
        "artist": "",
    },
    "animal": {
        "dog": "", "cat": "", "fox": "", "bird": "", "horse": "big", "cow": "big", "pig": "", "duck": "",
        "goat": "", "frog": "", "mouse": "", "rabbit": "", "bear": "big", "wolf": "", "lion": "big",
        "tiger": "big", "monkey": "", "owl": "", "eagle": "", "hen": "", "snake": "", "bee": "", "ant": "",
        "elephant": "big", "whale": "big", "turtle": "", "squirrel": "", "donkey": "big", "camel": "big",
        "puppy": "", "kitten": "", "chicken": "", "parrot": "", "spider": "",
    },
    "food": {
        "apple": "fruit", "cake": "made", "egg": "", "pie": "made", "cookie": "made", "banana": "fruit",
        "orange": "fruit", "carrot": "", "potato": "", "tomato": "fruit", "pear": "fruit", "plum": "fruit",
        "sandwich": "made", "nut": "", "berry": "fruit", "lemon": "fruit", "peach": "fruit", "onion": "",
        "grape": "fruit", "cherry": "fruit", "bread": "mass made", "cheese": "mass", "honey": "mass",
        "rice": "mass",
    },
    "drink": {"water": "mass", "milk": "mass", "tea": "mass", "juice": "mass"},
    "thing": {
        "ball": "toy", "box": "container openable", "cup": "container", "book": "readable openable",
        "hat": "made", "bag": "container openable", "key": "", "stone": "", "stick": "", "bell": "loud",
        "lamp": "fixable", "coat": "", "shoe": "", "toy": "toy made", "flower": "", "leaf": "", "kite": "toy made",
        "map": "readable", "letter": "readable", "ring": "", "coin": "", "drum": "loud toy", "basket": "container made",
        "bottle": "container openable", "candle": "made", "pencil": "", "shell": "", "feather": "", "rope": "",
        "clock": "fixable", "brush": "", "plate": "", "bowl": "container", "blanket": "", "shirt": "",
        "umbrella": "openable", "jar": "container openable", "note": "readable",
    },
    "furniture": {
        "chair": "fixable made", "table": "fixable made", "bed": "fixable", "door": "openable fixable",
        "window": "openable", "fence": "fixable built climbable", "wall": "built climbable", "gate": "openable fixable",
    },
    "vehicle": {"boat": "fixable built", "car": "fixable", "wagon": "fixable", "ship": "", "bus": "", "train": ""},
    "place": {
        "house": "indoor built", "garden": "", "river": "water", "forest": "", "hill": "on climbable", "town": "",
        "city": "", "farm": "on", "school": "indoor", "park": "", "lake": "water", "road": "on", "field": "",
        "market": "", "beach": "on", "bridge": "on built", "village": "", "castle": "indoor", "island": "on",
        "mountain": "on climbable", "kitchen": "indoor", "room": "indoor", "shop": "indoor", "cave": "indoor",
        "tower": "indoor built", "barn": "indoor built", "sea": "water", "valley": "", "street": "on",
        "library": "indoor", "yard": "", "pond": "water", "meadow": "", "nest": "built",
    },
    "nature": {"sun": "", "moon": "", "star": "", "sky": "", "tree": "climbable", "cloud": "", "rain": "mass",
               "snow": "mass", "wind": "", "fire": ""},
    "attribute": {"color": ""},
    "time": {"day": "", "night": "", "morning": "", "evening": "", "week": "", "year": "", "time": ""},
}

# verb: (args, object classes)
_VERBS: dict[str, tuple[str, str]] = {
    # strictly transitive: these are the verbs argument-structure pairs leave without an object
    "find": ("t", "person animal portable food"), "like": ("t", "person animal portable food drink"),
    "want": ("t", "animal portable food drink"), "need": ("t", "portable food drink"),
    "take": ("t", "portable food"), "hold": ("t", "portable"), "carry": ("t", "portable"),
    "bring": ("t", "portable food"), "touch": ("t", "animal portable furniture"), "make": ("t", "made"),
    "use": ("t", "portable"), "keep": ("t", "portable animal"), "feed": ("t", "animal person"),
    "fix": ("t", "fixable"), "buy": ("t", "portable food drink"), "have": ("t", "portable animal"),
    # usually transitive ("T": always given an object here, but "they meet" is fine English) or either ("ti")
    "see": ("T", "person animal portable food furniture vehicle nature"), "watch": ("T", "person animal vehicle"),
    "eat": ("ti", "food"), "drink": ("ti", "drink"), "read": ("ti", "readable"), "open": ("T", "openable"),
    "close": ("T", "openable"), "help": ("T", "person animal"), "follow": ("T", "person animal"),
    "call": ("T", "person animal"), "visit": ("T", "place person"), "leave": ("T", "place"),
    "paint": ("T", "furniture vehicle portable"), "build": ("T", "built"), "wash": ("ti", "portable animal"),
    "clean": ("T", "indoor furniture portable"), "kick": ("T", "toy"), "push": ("T", "vehicle furniture"),
    "pull": ("T", "vehicle"), "throw": ("T", "toy"), "catch": ("T", "toy animal"),
    "chase": ("T", "animal"), "draw": ("T", "person animal portable"), "hide": ("ti", "portable"),
    "cook": ("ti", "food"), "hug": ("T", "person animal"), "meet": ("T", "person animal"),
    "love": ("T", "person animal place"), "hear": ("T", "person animal loud"), "smell": ("T", "food"),
    "drop": ("T", "portable"), "lose": ("T", "portable"), "share": ("T", "food"), "count": ("T", "animal"),
    "climb": ("ti", "climbable"), "sell": ("T", "food portable"),
    "run": ("ti", ""), "walk": ("ti", ""), "swim": ("ti", ""), "jump": ("ti", ""), "dance": ("ti", ""),
    "sing": ("ti", ""), "play": ("ti", ""), "fly": ("ti", ""), "wake": ("ti", ""), "grow": ("ti", ""),
    # strictly intransitive: these are the verbs argument-structure pairs give an object
    "sleep": ("i", ""), "laugh": ("i", ""), "smile": ("i", ""), "arrive": ("i", ""), "fall": ("i", ""),
    "rest": ("i", ""), "yawn": ("i", ""), "stay": ("i", ""), "go": ("i", ""), "come": ("i", ""),
    "sit": ("i", ""), "cry": ("i", ""), "wait": ("i", ""), "live": ("i", ""),
}

# adjective: noun classes it describes
_ANIMATE = "person animal"
_ADJECTIVES: dict[str, str] = {
    "big": "animal portable furniture vehicle place food", "small": "animal portable furniture vehicle place food",
    "little": "person animal portable place", "old": "person animal portable furniture vehicle place",
    "new": "portable furniture vehicle", "tiny": "animal portable", "huge": "animal vehicle place",
    "red": "animal portable furniture vehicle fruit", "blue": "portable furniture vehicle",
    "green": "portable furniture vehicle fruit", "yellow": "animal portable furniture vehicle fruit",
    "white": "animal portable furniture vehicle", "black": "animal portable furniture vehicle",
    "brown": "animal portable furniture", "pink": "animal portable", "gray": "animal portable furniture",
    "purple": "portable fruit",
    "happy": _ANIMATE, "sad": _ANIMATE, "hungry": _ANIMATE, "thirsty": _ANIMATE, "tired": _ANIMATE,
    "angry": _ANIMATE, "kind": "person", "brave": _ANIMATE, "clever": _ANIMATE, "funny": _ANIMATE,
    "busy": "person place", "sleepy": _ANIMATE, "friendly": _ANIMATE, "shy": _ANIMATE, "lazy": _ANIMATE,
    "proud": _ANIMATE, "young": _ANIMATE, "strong": _ANIMATE, "quiet": "person animal place",
    "loud": "person animal loud", "fast": "animal vehicle", "slow": "animal vehicle", "tall": "person climbable",
    "cold": "person animal place drink", "warm": "person animal place drink", "wet": "animal portable",
    "dry": "portable place", "clean": "portable furniture place", "dirty": "portable furniture place",
    "soft": "animal portable food", "hard": "portable furniture food", "heavy": "portable furniture",
    "round": "portable fruit", "long": "portable vehicle", "short": "person portable", "sweet": "food drink",
    "fresh": "food drink", "ripe": "fruit", "empty": "container", "full": "container",
    "beautiful": "person animal portable place", "pretty": "person animal portable place", "dark": "place",
    "deep": "water", "wide": "water", "noisy": "animal place", "good": "person animal food",
}

_FUNCTION: dict[str, str] = {
    "determiner": "the a an this that these those every each some many several my your his her its our their",
    "number": "one two three four five six seven eight nine ten",
    "preposition": "in on under near behind with to from at by into over across around beside inside through for "
                   "of above after before up down",
    "conjunction": "and but or so because when while if",
    "pronoun": "i you he she it we they me him her us them",
    "question": "what who where when why how which",
    "auxiliary": "is are am do does can will not",
    "adverb": "always often never sometimes today now here there very also again slowly quickly happily quietly "
              "loudly soon later too home away together back still then",
    "answer": "yes no",
}


def _noun_entries() -> list[Word]:
    words = []
    for cls, entries in _NOUNS.items():
        for text, extra in entries.items():
            tags = (cls, *extra.split())
            if cls in ("person", "animal"):
                tags += ("animate",)
            if cls in ("thing", "food"):
                tags += ("portable",)
            plural = None if "mass" in tags else _IRREGULAR_PLURAL.get(text, _plural(text))
            words.append(Word(text, "noun", tuple(dict.fromkeys(tags)), plural=plural))
    return words


def _entries() -> tuple[Word, ...]:
    words = _noun_entries()
    for text, (args, objects) in _VERBS.items():
        words.append(Word(text, "verb", tuple(objects.split()), third=_IRREGULAR_THIRD.get(text, _plural(text)),
                          args=args))
    words += [Word(text, "adjective", tuple(classes.split())) for text, classes in _ADJECTIVES.items()]
    for pos, texts in _FUNCTION.items():
        words += [Word(text, pos) for text in texts.split()]
    return tuple(words)


LEXICON: tuple[Word, ...] = _entries()


def lexicon() -> list[Word]:
    """Every entry, in a fixed order (a word with two parts of speech, like `her`, appears once per part)."""
    return list(LEXICON)


@functools.cache
def surface_forms() -> frozenset[str]:
    """Every spelling the grammar can produce: base forms, plurals, 3rd person singular verbs."""
    return frozenset(f for w in LEXICON for f in w.forms)


@functools.cache
def by_pos(pos: str) -> tuple[Word, ...]:
    return tuple(w for w in LEXICON if w.pos == pos)


@functools.cache
def nouns_with(*tags: str) -> tuple[Word, ...]:
    """Nouns carrying any of `tags` (e.g. the possible objects of a verb)."""
    return tuple(w for w in by_pos("noun") if set(w.tags) & set(tags))


@functools.cache
def word(text: str, pos: str) -> Word:
    for w in LEXICON:
        if w.text == text and w.pos == pos:
            return w
    raise KeyError(f"{text!r} ({pos}) is not in the TinySpeech lexicon")


def adjectives_for(noun: Word) -> tuple[Word, ...]:
    """Adjectives that can describe `noun` (a red ball, a hungry fox; never a hungry ball)."""
    return tuple(a for a in by_pos("adjective") if set(a.tags) & set(noun.tags))


def article(next_word: str) -> str:
    """`a` or `an` by the next word's first letter (every vowel-initial lexicon word starts with a vowel sound)."""
    return "an" if next_word[0] in "aeiou" else "a"
