"""The answer scorer hears the same audio the same way whatever it scored before (systems are evaluated one after
another, or in parallel processes)."""

from __future__ import annotations

from koe.echox.asr import AnswerASR
from koe.synth.espeak import synthesize


def test_transcripts_do_not_depend_on_what_was_decoded_before():
    questions = ["what is the capital of randira", "who founded the city of tarvik", "what is the river of semla"]
    words = {w for q in questions for w in q.split()}
    # this one came out as "who founded the the city what tarvik", then "who founded the the what tarvik"
    audio = synthesize(questions[1], voice="en-gb-x-rp+m2").audio
    asr = AnswerASR(words)
    first = asr.transcribe(audio)
    asr.transcribe(synthesize(questions[0], voice="en-us").audio)
    assert [asr.transcribe(audio) for _ in range(2)] == [first, first]
    assert AnswerASR(words).transcribe(audio) == first
    choices = [asr.choose(audio, "who founded the city of", ["tarvik", "randira", "semla"]) for _ in range(3)]
    assert choices == [choices[0]] * 3
