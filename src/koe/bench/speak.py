"""Speak one benchmark side with espeak-ng: text through `koe.synth.espeak.synthesize`, phonemes via `[[...]]`.

    wav = speak(Spoken("the red dog"), "en-us", rate_wpm=160, pitch=50)      # float32, 16 kHz
    wav = speak(Spoken(None, "str'ENTf"), "en+m3", rate_wpm=160, pitch=50)   # a pseudo-word from phonemes

espeak-ng reads `[[...]]` as phoneme mnemonics only when `espeak_Synth` gets the espeakPHONEMES flag, which
`synthesize` does not pass (and its word-timing checks do not apply to phoneme input). Until koe.synth.espeak offers
phoneme input publicly, the phoneme path opens a session of that module's engine (fresh library state, its lock)
and calls `espeak_Synth` with the flag; everything else (voice checks, resampling rule) is the same.
"""

from __future__ import annotations

import numpy as np
import soxr

from koe.bench.draft import Spoken
from koe.stage import KoeInputError

_ESPEAK_PHONEMES = 0x100  # speak_lib.h: allow [[...]] phoneme mnemonics in the text
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1


def speak(side: Spoken, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """16 kHz float32 audio of a side; KoeInputError for unspeakable text, an unknown voice or no audio."""
    from koe.synth import espeak

    if side.phonemes is None:
        return espeak.synthesize(str(side.text), voice=voice, rate_wpm=rate_wpm, pitch=pitch).audio
    engine = espeak._get_engine()
    data = side.speak.encode("utf-8")
    with engine.lock, engine.session() as lib:
        espeak._set_voice(lib, voice, rate_wpm, pitch)
        engine._chunks, engine._events = [], []
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8 | _ESPEAK_PHONEMES,
                               None, None)
        chunks, native = engine._chunks, engine.native_rate_hz
    if err != 0 or not chunks:
        raise KoeInputError(f"espeak-error: {side.speak[:60]!r}: espeak_Synth returned {err}, {len(chunks)} chunks")
    raw = np.concatenate(chunks).astype(np.float32) / 32768.0
    audio = soxr.resample(raw, native, espeak.SAMPLE_RATE_HZ, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)
