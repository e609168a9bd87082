"""The cascade baseline: pocketsphinx ASR -> the text LM -> espeak TTS, the reference for end-to-end strategies.

    question audio --pocketsphinx--> "what is the capital of randira" --LM--> " felane ." --espeak--> answer audio

`koe sft` trains it on text rows only (`<text> question ? | answer . eos`): the LM never sees units. Answering
recognises the question (`asr=tinyspeech`: a word loop over TinySpeech's question words, since its invented place
names are in no English LM; `asr=open`: pocketsphinx's en-us LM), answers the transcript in text, and speaks the
answer with the example's answer voice. Its first audio waits for recognition, the whole text and synthesis.
"""

from __future__ import annotations

from pathlib import Path

from koe.strategies.base import (
    Answer,
    Bundle,
    Clock,
    Sequence,
    Strategy,
    Tokens,
    generate_text,
    question_string,
    text_ids,
    text_sequence,
)


class Cascade(Strategy):
    name = "cascade"
    cross_modal = False

    def __init__(self, options):
        super().__init__(options)
        self._asr = None

    def sequence(self, t: Tokens, vocab) -> Sequence:
        return text_sequence(t, vocab)

    def recogniser(self):
        if self._asr is None:
            from koe.dialogue.asr import Transcriber, tinyspeech_question_words

            self._asr = Transcriber(tinyspeech_question_words() if self.options.asr == "tinyspeech" else None)
        return self._asr

    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        from koe.audio import load_audio
        from koe.synth.espeak import synthesize

        asr = self.recogniser()
        clock = Clock()
        heard = asr.transcribe(load_audio(Path(audio_root) / ex.question_audio))
        prompt = [bundle.vocab.text_marker_id, *text_ids(bundle.tokenizer, question_string(heard), False)]
        text, ids = generate_text(bundle, prompt, max_new_tokens)
        said = text.strip().rstrip(".").strip()
        audio = synthesize(said, voice=ex.answer_voice or "en-us").audio if said else None
        if audio is not None:
            clock.mark()
        return Answer(text, None, audio, len(ids) + 1 if audio is not None else None, clock.first, transcript=heard)
