"""Speech recognition for scoring spoken answers and for the cascade baseline: pocketsphinx, offline.

    asr = Transcriber(vocabulary=["what", "is", "the", "capital", "of", "randira", "felane"])
    asr.transcribe(load_audio("answer.wav"))          # "felane"
    Transcriber(phrases=["felane", "new york"])         # closed set: exactly one of these phrases
    Transcriber().transcribe(wav)                       # open vocabulary: pocketsphinx's en-us LM and dictionary

Three modes. With `phrases` the decoder picks exactly one of them (a closed-set recogniser: how `koe eval s2s`
scores TinySpeech answers, whose names no English LM knows; chance is 1/len(phrases)).
With a `vocabulary` the decoder searches a JSGF word loop over exactly those words (any number, any
order, no language model), so invented TinySpeech names that no English dictionary or LM knows can be recognised;
pronunciations come from the CMU dictionary, else from espeak through koe.align.g2p. Without one it uses
pocketsphinx's bundled en-us trigram LM (the real-English path: WebQuestions, TriviaQA). Audio is dithered exactly
as the aligner does (koe.align.pocketsphinx._pcm16) because espeak's digital silence confuses the front end, and
padded with `EDGE_SILENCE_S` of silence at both ends: a spoken answer is often one short word cut tight at its edges,
and pocketsphinx, whose models expect an utterance to start and end in silence, then returned no hypothesis for 56 of
210 TinySpeech answer names said clearly by espeak's en-us voice (closed set; 2 with 0.2 s padding; 0.1 s left 11,
0.3 s recognised fewer). Measured on the reference answers' espeak audio, never on model outputs.
"""

from __future__ import annotations

import numpy as np

from koe.stage import KoeInputError

EDGE_SILENCE_S = 0.2


class Transcriber:
    """One pocketsphinx decoder (built once: loading the model takes ~0.5 s)."""

    def __init__(self, vocabulary: list[str] | None = None, phrases: list[str] | None = None):
        from pocketsphinx import Decoder

        from koe.align.pocketsphinx import dictionary_words

        self.phrases = sorted({" ".join(p.lower().split()) for p in phrases or []} - {""})
        words = {w for p in self.phrases for w in p.split()} | {w.lower() for w in vocabulary or []}
        self.vocabulary = sorted(words) if words else None
        if self.vocabulary is None:
            self.decoder = Decoder(loglevel="FATAL")
            return
        self.decoder = Decoder(lm=None, loglevel="FATAL")
        known = dictionary_words()
        for word in self.vocabulary:
            if word not in known:
                from koe.align.g2p import pronounce_word

                self.decoder.add_word(word, " ".join(pronounce_word(word)), False)
        if self.phrases:
            rule = " | ".join(" ".join(_jsgf_word(w) for w in p.split()) for p in self.phrases)
        else:
            rule = "( " + " | ".join(_jsgf_word(w) for w in self.vocabulary) + " )+"
        grammar = f"#JSGF V1.0;\ngrammar loop;\npublic <s> = {rule} ;\n"
        add = getattr(self.decoder, "add_jsgf_string", None) or self.decoder.set_jsgf_string  # 5.1 renamed it
        add("loop", grammar)
        self.decoder.activate_search("loop")

    def transcribe(self, audio: np.ndarray) -> str:
        """Lower-case words of 16 kHz mono float32 `audio`; "" when pocketsphinx finds no hypothesis."""
        from koe.align.pocketsphinx import _pcm16, decode_utterance
        from koe.audio import TARGET_SAMPLE_RATE_HZ

        if audio.size == 0:
            raise KoeInputError("empty-audio: nothing to transcribe")
        edge = np.zeros(round(EDGE_SILENCE_S * TARGET_SAMPLE_RATE_HZ), dtype=np.float32)
        padded = np.concatenate([edge, np.asarray(audio, dtype=np.float32), edge])
        decode_utterance(self.decoder, _pcm16(padded), passes=2)
        hyp = self.decoder.hyp()
        if hyp is None:
            return ""
        words = [w.split("(")[0] for w in hyp.hypstr.lower().split()]
        return " ".join(w for w in words if not w.startswith(("<", "[", "++")))


def _jsgf_word(word: str) -> str:
    """JSGF tokens may not hold grammar symbols; koe's vocabularies are plain words, so a bad one is an error."""
    if not word or any(c in word for c in " ;|()<>[]*+=/\"{}"):
        raise KoeInputError(f"bad-word: {word!r} cannot be a grammar word")
    return word


def tinyspeech_question_words(fact_seed: int = 0) -> list[str]:
    """Every word of TinySpeech's fact questions: the cascade's question lexicon on the TinySpeech path."""
    from koe.tinyspeech import facts

    return sorted({w for f in facts(fact_seed) for w in f.question.split() if w.isalpha()})
