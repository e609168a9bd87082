"""Synthetic speech with exact word and phone timings from espeak-ng (see docs/synth.md).

    from koe.synth import synthesize
    syn = synthesize("the red dog runs", voice="en-us+f3")   # syn.audio, syn.words, syn.phones

    koe synth source=tinyspeech num_items=1000 out_dir=data/synth
"""

from koe.synth.espeak import Synthesis, list_variants, list_voices, normalize_text, phonemize, synthesize

__all__ = ["Synthesis", "list_variants", "list_voices", "normalize_text", "phonemize", "synthesize"]
