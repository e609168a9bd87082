"""Answer strategies: the ways a speech-text LM answers a spoken question in speech, one module each.

    from koe.strategies import get_strategy
    strategy = get_strategy(StrategyOptions(name="interleaved", text_chunk=13, speech_chunk=26))
    seq = strategy.sequence(tokens, vocab)          # training ids + labels (prompt positions carry no loss)
    answer = strategy.answer(bundle, example, audio_root, max_new_tokens=120)   # text, units/audio, first audio

Registered here and nowhere else (a new strategy = a new module + one line):
- chain_of_modality (SpeechGPT): question units -> transcript -> text answer -> speech answer;
- interleaved (GLM-4-Voice): alternating chunks of text and speech tokens after the question;
- parallel (PSLM / Mini-Omni / Moshi): text and speech streams at the same positions, embeddings summed, one head
  per stream, text padded with pad, speech delayed;
- text_units (LLaMA-Omni): the LM answers in text, a CTC head on its hidden states emits the units;
- cascade: pocketsphinx ASR -> the text LM -> espeak TTS (the reference).
Sequences and decoding rules: docs/dialogue.md.
"""

from __future__ import annotations

import importlib

STRATEGIES = {
    "chain_of_modality": "koe.strategies.chain:ChainOfModality",
    "interleaved": "koe.strategies.interleaved:Interleaved",
    "parallel": "koe.strategies.parallel:Parallel",
    "text_units": "koe.strategies.text_units:TextDrivenUnits",
    "cascade": "koe.strategies.cascade:Cascade",
}


def get_strategy(options):
    """The strategy named by `options.name` (a koe.strategies.options.StrategyOptions), built with its options."""
    module, _, cls = STRATEGIES[options.name].partition(":")
    return getattr(importlib.import_module(module), cls)(options)
