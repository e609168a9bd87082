"""Invented words: place and person names for facts, and pseudo-words for lexical minimal pairs.

    >>> from koe.tinyspeech.phonotactics import pseudo_word, invented_names
    >>> invented_names(3, seed=0)
    ['verila', 'tenkost', 'thonmor']
    >>> pseudo_word("garden", random.Random(0))
    'gardoan'

Both are built from English spelling patterns so espeak-ng reads them as words, and both must be unknown to any
model before training: names are two or three syllables from a fixed syllable inventory (letters only, no lexicon
word); pseudo-words follow sWUGGY's recipe in spelling form: one onset, vowel or coda of a real lexicon word is
replaced by another that the lexicon itself uses in the same position, so the result is phonotactically plausible.
Pseudo-words are also kept out of the aligner's CMU dictionary (shipped with pocketsphinx), so that a model started
from a text LLM cannot know them either.
"""

from __future__ import annotations

import functools
import os
import random
import re
from collections import Counter

from koe.tinyspeech.lexicon import LEXICON, surface_forms

# Name syllables: onset + vowel (+ coda), chosen so every combination reads as one English-like word.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "tr", "st",
           "th", "sh", "kr", "pr", "bl", "gl")
_INNER_ONSETS = ("b", "d", "g", "k", "l", "m", "n", "p", "r", "t", "v")  # after a coda: no hard clusters
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o")
_CODAS = ("", "", "", "l", "r", "n", "m", "s")
_ENDINGS = ("a", "ia", "or", "en", "ar", "el", "on", "is", "ith", "und", "ane", "ira", "ova", "ax", "ora", "ila",
            "enna", "ost")
_RUDE = re.compile(r"shit|fuc|fuk|cum|sex|nig|fag|cunt|dick|tit|ass|piss|rape|porn|slut|whor|cock|poo|pee")
_SEGMENT = re.compile(r"qu|[aeiouy]+|[^aeiouy]+")


def invented_names(count: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """`count` distinct invented names, deterministic given `seed`: not lexicon forms, English words or `exclude`."""
    rng = random.Random(seed)
    taken = set(surface_forms()) | set(exclude)
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        if rng.random() < 0.2:
            name += rng.choice(_INNER_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        name += rng.choice(_INNER_ONSETS) + rng.choice(_ENDINGS)
        if (name not in taken and name not in english_words() and len(name) <= 9 and not re.search(r"(.)\1", name)
                and not _RUDE.search(name)):
            taken.add(name)
            names.append(name)
    return names


def segments(text: str) -> list[str]:
    """Split a spelling into alternating consonant and vowel groups; a final silent `e` joins its consonants.

    `cake` -> [c, a, ke]; `garden` -> [g, a, rd, e, n]; `yellow` -> [y, e, ll, ow]. A leading `y` is a consonant.
    """
    parts = _SEGMENT.findall(text)
    if text.startswith("y") and len(parts[0]) > 1:  # "ye" -> "y", "e"
        parts[:1] = ["y", parts[0][1:]]
    if len(parts) >= 3 and parts[-1] == "e" and not _is_vowel(parts, len(parts) - 2):
        parts[-2:] = [parts[-2] + "e"]
    return parts


def _is_vowel(parts: list[str], i: int) -> bool:
    return parts[i][0] in "aeiouy" and parts[i] != "qu" and not (i == 0 and parts[i] == "y")


def _slot(parts: list[str], i: int) -> str:
    """Where a segment sits: onset (word-initial consonants), medial, coda (word-final), or a vowel by context."""
    if _is_vowel(parts, i):
        if i + 2 == len(parts) and parts[-1].endswith("e") and len(parts[-1]) > 1:
            return "vowel-silent-e"  # the a of cake: only single vowels read well here
        return "vowel-final" if i + 1 == len(parts) else "vowel"
    if i == 0:
        return "onset"
    return "coda" if i + 1 == len(parts) else "medial"


# Spellings whose sound depends on their neighbours (ow, aw, igh, y-vowels) are never swapped in or out.
_FRAGILE = re.compile(r"[wyhx]|^(io|ie|ui|au|ei|eo)$")


@functools.cache
def inventory() -> dict[str, tuple[str, ...]]:
    """Spelling segments by slot that at least two content words use there (rare spellings read badly)."""
    counts: Counter[tuple[str, str]] = Counter()
    for w in LEXICON:
        if w.pos in ("noun", "verb", "adjective", "adverb"):
            parts = segments(w.text)
            counts.update((_slot(parts, i), seg) for i, seg in enumerate(parts))
    slots: dict[str, list[str]] = {}
    for (slot, seg), n in sorted(counts.items()):
        fragile = _FRAGILE.search(seg) and not (slot == "onset" and seg in ("h", "sh", "th", "ch", "wh", "w"))
        too_long = len(seg) > (2 if slot == "medial" else 3)
        if n >= 2 and not fragile and not too_long and not (slot == "vowel-silent-e" and len(seg) > 1):
            slots.setdefault(slot, []).append(seg)
    return {slot: tuple(segs) for slot, segs in slots.items()}


@functools.cache
def english_words() -> frozenset[str]:
    """The aligner's CMU pronouncing dictionary (shipped with pocketsphinx, a koe dependency).

    Invented names and pseudo-words are kept out of it, so that a model started from a text LLM cannot know them.
    """
    import pocketsphinx

    path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
    with open(path, encoding="utf-8") as f:
        return frozenset(line.split(maxsplit=1)[0].split("(")[0] for line in f if line.strip())


@functools.cache
def _banned() -> frozenset[str]:
    return surface_forms() | english_words()


def pseudo_word(real: str, rng: random.Random, tries: int = 50) -> str | None:
    """A non-word made from `real` by swapping one spelling segment; None when no candidate passes the checks."""
    parts = segments(real)
    inv = inventory()
    banned = _banned()
    for _ in range(tries):
        i = rng.randrange(len(parts))
        neighbours = "".join(parts[max(i - 1, 0):i + 2])
        if _FRAGILE.search(parts[i]) or len(parts[i]) > 3 or (_is_vowel(parts, i) and _FRAGILE.search(neighbours)):
            continue
        options = [s for s in inv.get(_slot(parts, i), ()) if s != parts[i] and abs(len(s) - len(parts[i])) <= 1]
        if not options:
            continue
        candidate = "".join([*parts[:i], rng.choice(options), *parts[i + 1:]])
        if (candidate.isascii() and candidate.isalpha() and candidate not in banned and not _RUDE.search(candidate)
                and not re.search(r"(.)\1\1", candidate)):
            return candidate
    return None
