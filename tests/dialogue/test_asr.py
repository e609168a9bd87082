"""The answer recogniser hears the same audio the same way whatever it decoded before."""

from __future__ import annotations

from koe.dialogue.asr import Transcriber, tinyspeech_question_words
from koe.synth.espeak import synthesize


def test_transcripts_do_not_depend_on_what_was_decoded_before():
    # pocketsphinx carried state from one decode into the next: this question came out as "what is the capital of
    # semla" once, then "what is the capital what semla"
    audio = synthesize("what is the capital of semla", voice="en-us").audio
    other = synthesize("who founded the city of tarvik", voice="en-gb-x-rp+m2").audio
    asr = Transcriber(tinyspeech_question_words())
    first = asr.transcribe(audio)
    asr.transcribe(other)
    assert [asr.transcribe(audio) for _ in range(2)] == [first, first]
    assert Transcriber(tinyspeech_question_words()).transcribe(audio) == first
