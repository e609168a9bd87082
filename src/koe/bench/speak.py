"""Speak one benchmark side with espeak-ng: text through `koe.synth.espeak.synthesize`, phonemes via `[[...]]`.

    wav = speak(Spoken("the red dog"), "en-us", rate_wpm=160, pitch=50)      # float32, 16 kHz
    wav = speak(Spoken(None, "str'ENTf"), "en+m3", rate_wpm=160, pitch=50)   # a pseudo-word from phonemes

Pseudo-words with no spelling are spoken from phonemes (`koe.synth.espeak.synthesize_phonemes`).
"""

from __future__ import annotations

import numpy as np

from koe.bench.draft import Spoken


def speak(side: Spoken, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """16 kHz float32 audio of a side; KoeInputError for unspeakable text, an unknown voice or no audio."""
    from koe.synth import espeak

    if side.phonemes is None:
        return espeak.synthesize(str(side.text), voice=voice, rate_wpm=rate_wpm, pitch=pitch).audio
    return espeak.synthesize_phonemes(side.phonemes, voice=voice, rate_wpm=rate_wpm, pitch=pitch)
