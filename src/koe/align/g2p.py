"""Pronunciations for words the CMU dictionary lacks: espeak-ng's phonemes mapped onto CMU ARPAbet.

    pronounce_word("dashwood")     # ["D", "AE", "SH", "W", "UH", "D"]
    pronounce_word("42")           # ["F", "AO", "R", "T", "IY", "T", "UW"]

espeak-ng (through koe.synth.espeak.phonemize) pronounces any spelling, so no word is ever dropped for lack of a
dictionary entry. Its ASCII phoneme mnemonics (Kirshenbaum-like: `T` = th, `@` = schwa, `3:` = er, `t#` = flapped t)
map onto the 39 ARPAbet phones of pocketsphinx's en-us model by the table below; stress marks are removed (the model's
phones carry none). A mnemonic outside the table is an error naming the word, never skipped.
"""

from __future__ import annotations

from koe.stage import KoeInputError

# espeak-ng en / en-us mnemonic -> ARPAbet (CMU dictionary conventions: flaps and glottal stops as T, r-coloured
# vowels as vowel + R or ER, syllabic consonants as AH + consonant).
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "m": ("M",), "n": ("N",), "N": ("NG",),
    "l": ("L",), "r": ("R",), "w": ("W",), "j": ("Y",), "tS": ("CH",), "dZ": ("JH",),
    "t#": ("T",), "t2": ("T",), "d#": ("D",), "?": ("T",), "x": ("K",), "C": ("HH",), "z#": ("Z",), "s#": ("S",),
    "n-": ("AH", "N"), "m-": ("AH", "M"), "l-": ("AH", "L"), "r-": ("R",), "l/": ("L",), "r/": ("R",),
    "W": ("W",), "hw": ("W",),
    # open and central vowels
    "a": ("AE",), "a#": ("AH",), "a2": ("AH",), "aa": ("AA",), "A:": ("AA",), "A#": ("AE",), "A@": ("AA", "R"),
    "V": ("AH",), "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@-": ("AH",), "@L": ("AH", "L"),
    "3": ("ER",), "3:": ("ER",), "@r": ("ER",), "3r": ("ER",),
    # back vowels
    "0": ("AA",), "0#": ("AA",), "O": ("AO",), "O:": ("AO",), "O2": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"),
    "o": ("OW",), "oU": ("OW",), "u": ("UW",), "u:": ("UW",), "U": ("UH",), "U@": ("UH", "R"),
    # front vowels
    "e": ("EH",), "E": ("EH",), "E2": ("EH",), "E3": ("EH",), "e@": ("EH", "R"), "eI": ("EY",),
    "i": ("IY",), "i:": ("IY",), "i@": ("IH", "R"), "i@3": ("IH", "R"), "I": ("IH",), "I#": ("IH",), "I2": ("IH",),
    # diphthongs
    "aI": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU": ("AW",), "aU@": ("AW", "ER"), "aU3": ("AW", "ER"),
    "OI": ("OY",),
}
_STRESS = "'\",%=_:!|;"  # stress, pauses and the palatal mark ";" (no ARPAbet counterpart)


def arpabet_from_espeak(phonemes: list[str], word: str = "?") -> list[str]:
    """Map one word's espeak mnemonics to ARPAbet; raises KoeInputError for a mnemonic outside the table."""
    out: list[str] = []
    for raw in phonemes:
        ph = raw.strip().lstrip(_STRESS) or raw.strip()
        if not ph or set(ph) <= set(_STRESS):
            continue  # pauses and bare stress marks carry no sound
        mapped = ESPEAK_TO_ARPABET.get(ph) or ESPEAK_TO_ARPABET.get(ph.rstrip(_STRESS))
        if mapped is None:
            raise KoeInputError(f"oov: {word!r}: espeak phoneme {raw!r} has no ARPAbet mapping")
        for p in mapped:
            # espeak writes a linking r after r-coloured vowels ("fire" = f aI3 r-); CMU does not double it.
            if p == "R" and out and out[-1] in ("R", "ER"):
                continue
            out.append(p)
    if not out:
        raise KoeInputError(f"oov: {word!r}: espeak gave no phonemes")
    return out


def pronounce_word(word: str, voice: str = "en-us") -> list[str]:
    """ARPAbet pronunciation of one word from espeak-ng; a word may be spoken as several ("42" = forty two)."""
    from koe.synth.espeak import phonemize

    return arpabet_from_espeak([p for spoken in phonemize(word, voice=voice) for p in spoken], word)
