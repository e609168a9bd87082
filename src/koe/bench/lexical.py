"""Lexical benchmarks (sWUGGY-style): a real word vs a pseudo-word, from a lexicon and from TinySpeech.

    koe bench build kinds=[lexical] wordlist=words.txt wordlist_num=500

Pseudo-words are made in phoneme space: the word is phonemized by espeak-ng (ASCII mnemonics of the first voice),
one phone (two for words of 6+ phones) is replaced by another of the same manner class (a voiceless stop by a
voiceless stop, a vowel by a vowel, ...; stress marks kept), and the result is refused when it is the phonemization of
any lexicon word or breaks a simple English phonotactic rule (`N`/`Z` never word-initial, `h` never final, no
`N` before p/b/t/d). Both the
word and its pseudo-word are then spoken from phonemes (`[[...]]` input), so they pass through the same synthesis
path and differ only in the replaced phones. A pseudo-word has no spelling: its `text` is null and text-modality
scores of this benchmark are n/a. With counts in the lexicon (`word count` lines), items are binned into frequency
tertiles (`freq-high`, `freq-mid`, `freq-low`), as ZeroSpeech reports sWUGGY by frequency band.
"""

from __future__ import annotations

import itertools

import numpy as np

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Skipped, Spoken, safe_id
from koe.bench.registry import BenchSource, tiny_pair_drafts
from koe.bench.sources import read_wordlist
from koe.seed import rng_for

# espeak-ng English phoneme mnemonics grouped by manner (and voicing); a phone is only replaced within its class.
PHONE_CLASSES: dict[str, tuple[str, ...]] = {
    "stop-voiceless": ("p", "t", "k"),
    "stop-voiced": ("b", "d", "g"),
    "fricative-voiceless": ("f", "T", "s", "S"),
    "fricative-voiced": ("v", "D", "z", "Z"),
    "affricate": ("tS", "dZ"),
    "nasal": ("m", "n", "N"),
    "liquid": ("l", "r"),
    "glide": ("w", "j"),
    "vowel": ("a", "A:", "E", "I", "i:", "0", "O:", "U", "u:", "V", "eI", "aI", "oU", "aU", "OI", "3:"),
}
_CLASS_OF = {p: c for c, phones in PHONE_CLASSES.items() for p in phones}
_NOT_INITIAL = {"N", "Z"}
_NOT_FINAL = {"h"}
_NEVER_AFTER_NG = {"p", "b", "t", "d"}  # English [N] is never followed by a non-velar stop
_STRESS = "',"


def _split_stress(phone: str) -> tuple[str, str]:
    core = phone.lstrip(_STRESS)
    return phone[: len(phone) - len(core)], core


def make_pseudoword(phones: list[str], rng: np.random.Generator, lexicon: set[str], tries: int = 50) -> list[str]:
    """Replace 1 (2 for 6+ phones) substitutable phones within their class; refuse real words and bad phonotactics.

    Raises ValueError when no acceptable pseudo-word is found in `tries` draws.
    """
    slots = [i for i, p in enumerate(phones) if _split_stress(p)[1] in _CLASS_OF]
    count = 2 if len(phones) >= 6 else 1
    if len(slots) < count:
        raise ValueError(f"no substitutable phones in {phones}")
    for _ in range(tries):
        out = list(phones)
        for i in rng.choice(slots, size=count, replace=False):
            stress, core = _split_stress(phones[int(i)])
            choices = [p for p in PHONE_CLASSES[_CLASS_OF[core]] if p != core]
            out[int(i)] = stress + choices[int(rng.integers(len(choices)))]
        cores = [_split_stress(p)[1] for p in out]
        bad_ng = any(a == "N" and b in _NEVER_AFTER_NG for a, b in itertools.pairwise(cores))
        if cores[0] in _NOT_INITIAL or cores[-1] in _NOT_FINAL or bad_ng or phone_key(out) in lexicon:
            continue
        return out
    raise ValueError(f"no pseudo-word for {phones} in {tries} tries")


def phone_key(phones: list[str]) -> str:
    """Stress-free phone string, used to test whether a pseudo-word is a real word."""
    return " ".join(_split_stress(p)[1] for p in phones)


def frequency_bands(counts: list[int]) -> list[str]:
    """Tertile band of each count among `counts` (ties share the lower band boundary)."""
    ranks = np.argsort(np.argsort(-np.asarray(counts), kind="stable"), kind="stable")
    n = len(counts)
    return ["freq-high" if r < n / 3 else "freq-mid" if r < 2 * n / 3 else "freq-low" for r in ranks]


def wordlist_drafts(cfg: BenchBuildConfig) -> list[Draft | Skipped]:
    from koe.synth.espeak import phonemize

    entries = [(w, c) for w, c in read_wordlist(cfg.wordlist) if w.isalpha()]
    voice = cfg.voices[0]
    lexicon = {phone_key(p[0]) for w, _ in entries if len(p := phonemize(w, voice)) == 1}
    if cfg.wordlist_num and cfg.wordlist_num < len(entries):
        picks = rng_for(cfg.seed, "wordlist-sample").choice(len(entries), size=cfg.wordlist_num, replace=False)
        entries = [entries[int(i)] for i in sorted(picks)]
    with_counts = all(c is not None for _, c in entries)
    bands = frequency_bands([c for _, c in entries]) if with_counts and entries else ["all"] * len(entries)
    drafts: list[Draft | Skipped] = []
    for (word, count), band in zip(entries, bands, strict=True):
        phones = phonemize(word, voice)
        if len(phones) != 1 or len(phones[0]) < 2:
            drafts.append(Skipped(word, f"not-one-word: espeak phonemizes it as {phones}"))
            continue
        try:
            pseudo = make_pseudoword(phones[0], rng_for(cfg.seed, "pseudo", word), lexicon)
        except ValueError as e:
            drafts.append(Skipped(word, f"no-pseudoword: {e}"))
            continue
        drafts.append(Draft(group=safe_id(f"lex-{word}"), task="pair", category=band,
                            candidates=[Spoken(word, "".join(phones[0])), Spoken(None, "".join(pseudo))],
                            meta={"word": word, "count": count, "phones": phones[0], "pseudo_phones": pseudo}))
    return drafts


def sources(cfg: BenchBuildConfig) -> list[BenchSource]:
    out = []
    if cfg.tinyspeech:
        out.append(BenchSource("lexical-tiny", "tinyspeech", "TinySpeech words vs pseudo-words (spelled)",
                               lambda: tiny_pair_drafts("lexical_pairs", cfg)))
    if cfg.wordlist is not None:
        out.append(BenchSource("lexical-wordlist", "wordlist",
                               "sWUGGY-style: lexicon words vs phone-substituted pseudo-words, spoken from phonemes",
                               lambda: wordlist_drafts(cfg)))
    return out
