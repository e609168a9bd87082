"""koe.synth.espeak: the ctypes binding, its timings checked against the audio's energy, and the normaliser."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from koe.stage import KoeInputError
from koe.synth.espeak import list_variants, list_voices, normalize_text, phonemize, synthesize

SENTENCE = "The old fox, who lives by the river, sees 3 red birds. Don't you think?"


def _frame_db(audio: np.ndarray, start_s: float, end_s: float, sr: int = 16000) -> float:
    seg = audio[int(start_s * sr) : int(end_s * sr)]
    return float(20 * np.log10(np.sqrt(np.mean(seg.astype(np.float64) ** 2)) + 1e-9))


def test_normalize_text():
    assert normalize_text("Don't stop -- it's 9:30, Mr. O'Neil!") == "don't stop it's 930 mr o'neil"
    assert normalize_text("  “Well-known”  café… ") == "well-known café"
    assert normalize_text("don’t 'quoted' ...") == "don't quoted"
    assert normalize_text("?! ...") == ""


def test_timings_are_ordered_inside_the_audio_and_nonzero():
    syn = synthesize(SENTENCE, voice="en-us", rate_wpm=175)
    assert syn.sample_rate_hz == 16000 and syn.audio.dtype == np.float32 and syn.audio.ndim == 1
    assert syn.text == normalize_text(SENTENCE)
    assert [w for w, _, _ in syn.words] == normalize_text(SENTENCE).split()
    for spans in (syn.words, syn.phones):
        assert spans
        for (_, _, end), (_, next_start, _) in itertools.pairwise(spans):
            assert end <= next_start + 1e-9
        for _, s, e in spans:
            assert 0.0 <= s < e <= syn.duration_s + 1e-6
    # every phone lies inside one word, and a word's span runs from its first to its last phone
    first, last = syn.words[0], syn.words[-1]
    assert syn.phones[0][1] == pytest.approx(first[1]) and syn.phones[-1][2] == pytest.approx(last[2])
    assert not any(p.startswith("_") for p, _, _ in syn.phones)


def test_word_start_is_where_energy_rises_after_a_pause():
    """A long pause: word 2 must start after the silence (not at espeak's early WORD event) and word 1 end before."""
    syn = synthesize("one. ... two.", voice="en-us")
    (w1, _, e1), (w2, s2, _) = syn.words
    assert (w1, w2) == ("one", "two")
    assert s2 - e1 > 0.2  # the pause lies between the words, in neither of them
    silence = _frame_db(syn.audio, e1 + 0.01, s2 - 0.005)
    assert silence < -80  # espeak's pause is digital silence
    assert _frame_db(syn.audio, s2, s2 + 0.02) > silence + 40  # speech begins within 20 ms of the start
    assert _frame_db(syn.audio, e1 - 0.03, e1) > silence + 40  # and word 1 speaks until its end


@pytest.mark.parametrize("text", ["“Quoted” words - and -- dashes", "Hello, world. ... Don't well-known 1990 café!"])
def test_one_span_per_normalised_word_around_punctuation(text):
    syn = synthesize(text)
    assert syn.text == normalize_text(text)
    assert all(e > s for _, s, e in syn.words)


def test_voices_and_variants_differ():
    voices = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-us+f3", "en+m3",
              "en-gb-scotland+klatt2", "en-us+m7"]
    audios = [synthesize("the red dog runs", voice=v).audio for v in voices]
    digests = {a.tobytes() for a in audios}
    assert len(digests) == len(voices)
    assert {"en-us", "en-029", "en-gb-scotland"} <= set(list_voices())
    assert {"m1", "f5", "klatt2"} <= set(list_variants())


def test_rate_and_pitch_are_applied_per_call():
    slow = synthesize("the red dog runs", rate_wpm=100)
    fast = synthesize("the red dog runs", rate_wpm=300)
    again = synthesize("the red dog runs", rate_wpm=100)
    assert slow.duration_s > 1.8 * fast.duration_s
    np.testing.assert_array_equal(slow.audio, again.audio)
    assert synthesize("the red dog runs", pitch=90).audio.tobytes() != again.audio.tobytes()


@pytest.mark.parametrize(
    ("text", "voice", "kind"),
    [("", "en-us", "empty-text"), ("... !", "en-us", "empty-text"), ("cats & dogs", "en-us", "spoken-symbol"),
     ("5% off", "en-us", "spoken-symbol"), ("hello", "xx-nope", "unknown-voice"),
     ("hello", "en+nope", "unknown-voice")],
)
def test_bad_input_raises_with_reason_kind(text, voice, kind):
    with pytest.raises(KoeInputError, match=f"^{kind}:"):
        synthesize(text, voice=voice)


def test_phonemize_one_entry_per_word_with_event_symbols():
    text = "Hello, well-known 1990 world!"
    phon = phonemize(text)
    assert len(phon) == len(normalize_text(text).split())
    assert phon[0] == ["h", "@", "l", "'oU"]
    assert len(phon[2]) > 10  # "nineteen ninety"
    syn_symbols = {p for p, _, _ in synthesize("hello world").phones}
    assert set(phon[0]) | set(phon[3]) >= syn_symbols - {"d"} and "'3:" in syn_symbols


def test_threads_share_one_engine_safely():
    expected = synthesize("one two three", voice="en+m3").audio
    results: list[bytes] = []

    def work(voice: str) -> None:
        results.append(synthesize("one two three", voice=voice).audio.tobytes())

    threads = [threading.Thread(target=work, args=(v,)) for v in ["en+m3", "en-us+f3"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(expected.tobytes()) == 3 and len(set(results)) == 2


@pytest.mark.parametrize("voice", ["en-us", "en-us+f3", "en-us+klatt4", "en-us-nyc+whisper", "en+croak"])
def test_output_does_not_depend_on_what_was_spoken_before(voice):
    """libespeak keeps wave-generator state between utterances; each call must start from a clean library."""
    ref = synthesize("Is it raining? I think so.", voice=voice, rate_wpm=150)
    synthesize("some other words to change the state", voice="en-gb-scotland+klatt2", rate_wpm=300, pitch=90)
    again = synthesize("Is it raining? I think so.", voice=voice, rate_wpm=150)
    np.testing.assert_array_equal(ref.audio, again.audio)
    assert ref.words == again.words and ref.phones == again.phones


def test_output_does_not_depend_on_the_clock():
    """espeak_Initialize seeds its noise generator from the time; breathy variants must still repeat exactly."""
    ref = synthesize("one two three", voice="en-us+f3").audio
    time.sleep(1.05)
    np.testing.assert_array_equal(ref, synthesize("one two three", voice="en-us+f3").audio)
