"""espeak-ng through its C library: speech with exact word and phone timings, phonemes, voices.

    from koe.synth.espeak import synthesize, phonemize, normalize_text, list_voices
    syn = synthesize("The red dog runs.", voice="en-us+f3", rate_wpm=160, pitch=60)
    syn.audio            # float32, 16 kHz mono
    syn.words            # [("the", 0.012, 0.094), ("red", 0.094, 0.31), ...]
    syn.phones           # [("D", 0.012, 0.05), ("@", 0.05, 0.094), ...]  espeak's ASCII phoneme mnemonics
    phonemize("well-known 1990")   # [["w", "'E", "l", "n", "'oU", "n"], ["n", "'aI", "n", ...]]

Timings come from espeak's own event stream, not from an aligner: with `espeakINITIALIZE_PHONEME_EVENTS` the
synthesizer reports, in synchronous mode, a PHONEME event at the output sample where each phoneme starts and a WORD
event before each word's phonemes, with the character position of the word in the input text. A phone ends where the
next phoneme event (a pause `_`, `_:` included) starts; a word starts at its first phone and ends at the end of its
last phone, so pauses between words belong to no word. The WORD event's own sample is not used for the start: it
often sits inside the preceding pause (measured up to ~50 ms before the energy rises, see docs/synth.md).

Word labels are `normalize_text` of the input, one per whitespace-separated token, and every token must be spoken:
text whose audio and labels could disagree (a token espeak skips, or punctuation it reads aloud, like "&") raises
`KoeInputError`, so a manifest never holds timings for words that are not in its transcript.

libespeak-ng keeps its state in process globals and is not thread-safe: every call takes one process-wide lock and
works in a fresh session of the library (loaded, initialised, voice/rate/pitch set, terminated, unloaded), because
the library carries wave-generator state from one utterance to the next that no API resets; this way the same
arguments always give the same samples. Parallel synthesis uses processes.
"""

from __future__ import annotations

import _ctypes
import atexit
import contextlib
import ctypes
import dataclasses
import functools
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator

import numpy as np
import soxr

from koe.stage import KoeInputError

SAMPLE_RATE_HZ = 16_000

# speak_lib.h constants (libespeak-ng 1.52)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 0, 1, 5, 7
_PARAM_RATE, _PARAM_PITCH = 1, 3
_EE_OK = 0
_PHONEME_SEPARATOR = "|"
_RAND_SEED = 0
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT: `sample` is the output sample index (at the native rate) where the event happens."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input text
        ("length", ctypes.c_int),  # characters of the word (WORD events)
        ("audio_position", ctypes.c_int),  # milliseconds; `sample` is the exact value
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated language) pairs, hence not c_char_p
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass
class Synthesis:
    """One synthesized text: 16 kHz audio and `(label, start_s, end_s)` spans in seconds from the audio start."""

    audio: np.ndarray
    sample_rate_hz: int = SAMPLE_RATE_HZ
    words: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)
    phones: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate_hz

    @property
    def text(self) -> str:
        return " ".join(w for w, _, _ in self.words)


# ----------------------------------------------------------------------------------------------- normalisation
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_JOINERS = "'-"
# punctuation espeak-ng 1.52 (English voices) does not pronounce; any other symbol is spoken (measured, see tests)
_SILENT_PUNCTUATION = frozenset(".,;:!?'\"()[]{}<>|^`_-\u2013\u2014\u2026\u201c\u201d\u2018\u2019\u00ab\u00bb")
_SPOKEN_INFIX = re.compile(r"[^\W\d_][:!]\w|\w[:!][^\W\d_]")  # "a:b" is "a colon b", "2:30" is a time


def normalize_word(token: str) -> str:
    """Lowercase one whitespace-free token and drop punctuation, keeping word-internal apostrophes and hyphens."""
    token = unicodedata.normalize("NFKC", token).translate(_APOSTROPHES).lower()
    kept = "".join(ch for ch in token if ch.isalnum() or ch in _JOINERS)
    return kept.strip(_JOINERS)


def normalize_text(text: str) -> str:
    """The transcript koe stores for a text: normalised tokens joined by single spaces.

    "Don't stop -- it's 9:30, Mr. O'Neil!" -> "don't stop it's 930 mr o'neil". The aligner uses the same rule, so
    its word labels match synthesized ones one to one.
    """
    return " ".join(w for w in (normalize_word(t) for t in text.split()) if w)


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(label, start, end) character spans of the whitespace tokens of `text`, empty labels included."""
    return [(normalize_word(m.group()), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


# ----------------------------------------------------------------------------------------------- library state
class _Engine:
    """libespeak-ng, loaded fresh for every session from a private copy of the shared library.

    The library keeps wave-generator state between calls that no API resets (the pitch-flutter phase, the automatic
    gain, the Klatt filters), so the same text comes out a few samples longer or shorter depending on what was
    spoken before. A session therefore dlopens the library, initialises it, works, terminates it and dlcloses it:
    every call starts from the state the library file defines, whatever ran before or in which worker (measured:
    ~3 ms per session, see docs/synth.md). The copy is private so that no other module's handle keeps the library
    mapped between sessions.
    """

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path().encode()
        self.pid = os.getpid()
        tmp = tempfile.mkdtemp(prefix="koe-espeak-")
        atexit.register(_remove_if_owner, tmp, self.pid)  # forked children must not remove the parent's copy
        self.path = os.path.join(tmp, "libespeak-ng.so")
        shutil.copyfile(espeakng_loader.get_library_path(), self.path)
        self.lock = threading.Lock()
        self.native_rate_hz = 0
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _Callback(self._on_synth)  # kept referenced: the library holds a raw pointer

    @contextlib.contextmanager
    def session(self) -> Iterator[ctypes.CDLL]:
        """A freshly loaded and initialised library; hold `lock` around the whole session."""
        lib = ctypes.CDLL(self.path)
        _declare(lib)
        try:
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path, _INITIALIZE_PHONEME_EVENTS)
            if rate <= 0:
                raise RuntimeError(f"espeak_Initialize failed ({rate}); data path {self.data_path.decode()}")
            self.native_rate_hz = int(rate)
            lib.espeak_ng_SetRandSeed(_RAND_SEED)  # Initialize seeds from the clock; breathy variants draw noise
            lib.espeak_SetSynthCallback(self._callback)
            yield lib
        finally:
            lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)

    def _on_synth(self, wav, num_samples: int, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            name = e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else ""
            self._events.append((e.type, e.text_position, e.length, e.sample, name))
            i += 1
        return 0  # 0 = go on synthesizing

    def synth(self, lib: ctypes.CDLL, text: str, flags: int = 0) -> tuple[np.ndarray, list[Event]]:
        """Native-rate int16 audio and the raw (type, text_position, length, sample, phoneme) events."""
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | flags, None, None)
        if err != _EE_OK:
            raise KoeInputError(f"espeak-error: espeak_Synth returned {err} for {text[:60]!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events


_PHONEME_INPUT = 0x100  # speak_lib.h espeakPHONEMES: read [[...]] as phoneme mnemonics


Event = tuple[int, int, int, int, str]  # (type, text_position, length, sample, phoneme)


def _remove_if_owner(path: str, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))


def _set_voice(lib: ctypes.CDLL, voice: str, rate_wpm: int, pitch: int) -> None:
    if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
        raise KoeInputError(f"unknown-voice: {voice}: espeak-ng has no such voice (see koe.synth.list_voices)")
    lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
    lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)


_engine: _Engine | None = None
_engine_guard = threading.Lock()


def _get_engine() -> _Engine:
    """The process's engine; a forked child gets a fresh lock (the parent's may have been held at fork time)."""
    global _engine
    with _engine_guard:
        if _engine is None:
            _engine = _Engine()
        elif _engine.pid != os.getpid():
            _engine.lock = threading.Lock()
            _engine.pid = os.getpid()
        return _engine


# ----------------------------------------------------------------------------------------------- public API
def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50) -> Synthesis:
    """Speak `text` with one espeak-ng voice; words and phones carry the synthesizer's own timings.

    Args:
        text: plain text (not SSML); punctuation shapes the prosody, labels are `normalize_text(text)`.
        voice: an espeak voice, optionally with a variant: "en-us", "en+m3", "en-gb-scotland+klatt2".
        rate_wpm: speaking rate, 80-450 words per minute.
        pitch: base pitch, 0-100 (50 is the voice's default).

    Raises:
        KoeInputError: empty text, an unknown voice, or a token without speech / speech without a token.
    """
    _check_speakable(text)
    if not normalize_text(text):
        raise KoeInputError(f"empty-text: {text[:60]!r}: nothing to speak after normalisation")
    if not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM or not 0 <= pitch <= 100:
        raise KoeInputError(f"bad-parameter: rate_wpm={rate_wpm} (80-450), pitch={pitch} (0-100)")
    _check_variant(voice)
    engine = _get_engine()
    with engine.lock, engine.session() as lib:
        _set_voice(lib, voice, rate_wpm, pitch)
        raw, events = engine.synth(lib, text)
        native = engine.native_rate_hz
        words, phones = _spans(text, events, len(raw), native, lambda word: len(_word_phonemes(lib, word)))
    audio = soxr.resample(raw.astype(np.float32) / 32768.0, native, SAMPLE_RATE_HZ, quality="HQ")
    return Synthesis(np.ascontiguousarray(audio, dtype=np.float32), SAMPLE_RATE_HZ, words, phones)


def synthesize_phonemes(phonemes: str, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50) -> np.ndarray:
    """Speak espeak phoneme mnemonics (e.g. "str'ENTf", as `phonemize` gives them) as 16 kHz float32 audio.

    For pseudo-words, which have no spelling espeak would read as intended. No timings: phoneme input has no words.
    """
    _check_variant(voice)
    engine = _get_engine()
    with engine.lock, engine.session() as lib:
        _set_voice(lib, voice, rate_wpm, pitch)
        raw, _ = engine.synth(lib, f"[[{phonemes}]]", flags=_PHONEME_INPUT)
        native = engine.native_rate_hz
    if raw.size == 0:
        raise KoeInputError(f"espeak-error: [[{phonemes[:60]}]]: no audio")
    audio = soxr.resample(raw.astype(np.float32) / 32768.0, native, SAMPLE_RATE_HZ, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _spans(
    text: str, events: list[tuple[int, int, int, int, str]], num_samples: int, rate_hz: int,
    count_phonemes: Callable[[str], int],
) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """Turn the event stream into word and phone spans (seconds).

    Phoneme events after a WORD event belong to that word until the next WORD event; a phone lasts until the next
    phoneme event of any kind (or the end of the audio). Pauses (names starting with "_") and zero-length phones
    carry no speech and are left out; a WORD event followed by no speech is spurious and ignored. Events are
    matched to tokens by their character position, moved forward past punctuation-only tokens because espeak
    reports the word after a dash or a quote at the punctuation's position.
    """
    tokens = _tokens(text)
    starts = [sample for kind, _, _, sample, _ in events if kind == _EVENT_PHONEME]
    ends = iter([*starts[1:], num_samples])
    groups: list[tuple[int, list[tuple[str, int, int]]]] = [(0, [])]  # (character position, speech phones)
    for kind, position, _length, sample, name in events:
        if kind == _EVENT_WORD:
            groups.append((position - 1, []))
        elif kind == _EVENT_PHONEME:
            end = next(ends)
            if not name.startswith("_") and end > sample:
                groups[-1][1].append((name, sample, end))
    spoken: dict[int, list[tuple[str, int, int]]] = {}
    last = 0
    for position, phones in groups:
        if phones:
            last = max(last, _token_at(tokens, position))
            spoken.setdefault(last, []).extend(phones)
    _split_joined_words(text, tokens, spoken, count_phonemes)
    words: list[tuple[str, float, float]] = []
    all_phones: list[tuple[str, float, float]] = []
    for i, (label, _, _) in enumerate(tokens):
        if label:
            phones = spoken[i]
            words.append((label, phones[0][1] / rate_hz, phones[-1][2] / rate_hz))
            all_phones.extend((name, s / rate_hz, e / rate_hz) for name, s, e in phones)
    return words, all_phones


def _split_joined_words(
    text: str, tokens: list[tuple[str, int, int]], spoken: dict[int, list[tuple[str, int, int]]],
    count_phonemes: Callable[[str], int],
) -> None:
    """Share the phones of a WORD event that covers several words among them, in place.

    espeak speaks some function-word pairs ("on the", "of the") as one word with one WORD event. The phones are
    divided in the proportions of the words' own phoneme counts (exact when they add up, the usual case).
    """
    worded = [i for i, (label, _, _) in enumerate(tokens) if label]
    k = 0
    while k < len(worded):
        if worded[k] not in spoken:
            raise KoeInputError(f"unspoken-word: {text[:60]!r}: espeak produced no speech for {tokens[worded[k]][0]!r}")
        run = [worded[k]]
        while k + len(run) < len(worded) and worded[k + len(run)] not in spoken:
            run.append(worded[k + len(run)])
        k += len(run)
        if len(run) == 1:
            continue
        phones = spoken[run[0]]
        if len(phones) < len(run):
            raise KoeInputError(f"unspoken-word: {text[:60]!r}: {len(run)} words share {len(phones)} phones")
        counts = [max(1, count_phonemes(tokens[i][0])) for i in run]
        bounds = np.round(np.cumsum([0, *counts]) * len(phones) / sum(counts)).astype(int)
        bounds = np.maximum.accumulate(np.maximum(bounds, np.arange(len(bounds))))  # at least one phone each
        bounds = np.minimum(bounds, len(phones) - (len(bounds) - 1 - np.arange(len(bounds))))
        for j, i in enumerate(run):
            spoken[i] = phones[bounds[j] : bounds[j + 1]]


def _token_at(tokens: list[tuple[str, int, int]], char: int) -> int:
    """Index of the first worded token ending after character `char` (the last worded token if none does)."""
    worded = [i for i, (label, _, _) in enumerate(tokens) if label]
    for i in worded:
        if char < tokens[i][2]:
            return i
    return worded[-1]


def _check_speakable(text: str) -> None:
    """Refuse text with symbols espeak reads aloud ("&" -> "and", "5%" -> "five percent", "a:b" -> "a colon b").

    Their speech would be timed as part of a neighbouring word whose label does not say it; spelling them out in
    the text keeps transcript and audio identical.
    """
    bad = sorted({ch for ch in text if not (ch.isalnum() or ch.isspace() or ch in _SILENT_PUNCTUATION)})
    bad += [m.group() for m in _SPOKEN_INFIX.finditer(text)]
    if bad:
        raise KoeInputError(f"spoken-symbol: {text[:60]!r}: espeak reads {bad} aloud; spell them out")


def phonemize(text: str, voice: str = "en-us") -> list[list[str]]:
    """espeak's phoneme mnemonics per word of `normalize_text(text)`, stress marks kept ("'oU").

    Each word is phonemized on its own so the result has exactly one entry per normalised word (a number such as
    "1990" gives all the phonemes of "nineteen ninety"); the symbols are those of `synthesize`'s phones.
    """
    _check_variant(voice)
    engine = _get_engine()
    out = []
    with engine.lock, engine.session() as lib:
        _set_voice(lib, voice, 175, 50)
        for word in normalize_text(text).split():
            out.append(_word_phonemes(lib, word))
    return out


def _word_phonemes(lib: ctypes.CDLL, word: str) -> list[str]:
    buf = ctypes.c_char_p(word.encode("utf-8"))
    mode = ord(_PHONEME_SEPARATOR) << 8  # ASCII mnemonics, "|" between phonemes, spaces between words
    phonemes: list[str] = []
    while buf.value:
        clause = lib.espeak_TextToPhonemes(ctypes.byref(buf), _CHARS_UTF8, mode)
        if not clause:
            break
        for chunk in clause.decode("utf-8").split():
            phonemes.extend(p for p in chunk.split(_PHONEME_SEPARATOR) if p)
    return phonemes


def list_voices(language_prefix: str = "en") -> list[str]:
    """Names of the installed base voices whose language starts with `language_prefix` ("en-us", "en-029", ...).

    Append a variant with "+" ("en-us+f3"); `list_variants()` names them.
    """
    return sorted({lang for lang, _ in _voices() if lang == language_prefix or lang.startswith(language_prefix + "-")})


def list_variants() -> list[str]:
    """Voice variants ("m1".."m8", "f1".."f5", "klatt".."klatt6", "whisper", ...) to append as "voice+variant"."""
    spec = _Voice(languages=ctypes.cast(ctypes.c_char_p(b"variant"), ctypes.c_void_p))
    return sorted({ident.rsplit("/", 1)[-1] for _, ident in _voices(spec)})


@functools.cache
def _variant_names() -> frozenset[str]:
    return frozenset(list_variants())


def _check_variant(voice: str) -> None:
    """espeak silently ignores an unknown "+variant"; refuse it so a manifest's voice names what was heard."""
    _, _, variant = voice.partition("+")
    if variant and variant not in _variant_names():
        raise KoeInputError(f"unknown-voice: {voice}: no variant {variant!r} (see koe.synth.list_variants)")


def _voices(spec: _Voice | None = None) -> list[tuple[str, str]]:
    """(first language, identifier) of each voice espeak lists for `spec` (all base voices when None)."""
    engine = _get_engine()
    with engine.lock, engine.session() as lib:
        table = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        found = []
        i = 0
        while table[i]:
            v = table[i].contents
            # languages: a priority byte, then a NUL-terminated language name (the first is the main one)
            lang = ctypes.string_at(v.languages + 1).decode()
            found.append((lang, (v.identifier or b"").decode()))
            i += 1
    return found
