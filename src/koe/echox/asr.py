"""Pocketsphinx scoring of spoken answers (offline, the en-us model inside the wheel).

    asr = AnswerASR(vocabulary)                   # every word answers can use; OOV names through koe.align.g2p
    asr.choose(audio, "the capital of randira is", candidates)     # forced choice among the candidates
    asr.transcribe(audio)                          # word loop over the vocabulary, for own-text WER

TinySpeech names are invented, so pocketsphinx's n-gram LM knows none of them; both searches are JSGF grammars.
The forced choice lets the answer slot be any of the multiple-choice candidates (the template words optional): on
clean espeak speech of the gold answer it picks the right name for 151 of the 210 facts (docs/echox.md).
"""

from __future__ import annotations

import numpy as np

from koe.align.pocketsphinx import _pcm16, decode_utterance


class AnswerASR:
    def __init__(self, vocabulary: set[str]):
        from pocketsphinx import Decoder

        from koe.align.g2p import pronounce_word

        self.words = sorted(w for w in vocabulary if w.isalpha())
        self.decoder = Decoder(lm=None, loglevel="FATAL")
        for w in self.words:
            if self.decoder.lookup_word(w) is None:
                self.decoder.add_word(w, " ".join(pronounce_word(w)), False)
        loop = f"#JSGF V1.0;\ngrammar loop;\npublic <s> = ( {' | '.join(self.words)} )+ ;\n"
        self.decoder.add_jsgf_string("loop", loop)

    def _run(self, search: str, audio: np.ndarray) -> list[str]:
        if len(audio) < 1600:
            return []
        self.decoder.activate_search(search)
        decode_utterance(self.decoder, _pcm16(audio), passes=2)
        hyp = self.decoder.hyp()
        return hyp.hypstr.split() if hyp is not None else []

    def transcribe(self, audio: np.ndarray) -> list[str]:
        return self._run("loop", audio)

    def choose(self, audio: np.ndarray, template: str, candidates: list[str]) -> str | None:
        words = [w for w in template.split() if w in self.words]
        opt = f"[{' '.join(words)}] " if words else ""
        grammar = f"#JSGF V1.0;\ngrammar choice;\npublic <s> = {opt}( {' | '.join(candidates)} ) ;\n"
        self.decoder.add_jsgf_string("choice", grammar)
        hyp = self._run("choice", audio)
        return next((w for w in reversed(hyp) if w in candidates), None)


def word_error_rate(hyp: list[str], ref: list[str]) -> float:
    from koe.units.invariance import normalized_edit_distance

    if not ref:
        return 0.0 if not hyp else 1.0
    return normalized_edit_distance(np.asarray(hyp), np.asarray(ref)) * max(len(hyp), len(ref)) / len(ref)
