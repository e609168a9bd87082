"""pocketsphinx alignment: accuracy on espeak speech with true timings, OOV words, the mismatch detector, and
agreement with pocketsphinx's shipped alignments of real LibriVox speech."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from koe.align.config import AlignConfig
from koe.align.g2p import arpabet_from_espeak, pronounce_word
from koe.align.mismatch import MismatchRule, detect_mismatches, mismatch_reason
from koe.align.pauses import (
    loud_frames,
    quiet_frames,
    quiet_runs,
    speech_outside,
    split_at_quiet,
    stops_start_at_burst,
)
from koe.align.pocketsphinx import AlignResult, EdgeLoop, PocketsphinxAligner, _loud_gap
from koe.align.run import run_align
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.stage import KoeInputError
from koe.synth.espeak import synthesize

SENTENCES = ["The box was thrown beside the parked truck.", "Four hours of steady work faced us.",
             "Rice is often served in round bowls.", "The swan dive was far short of perfect."]


@pytest.fixture(scope="module")
def aligner() -> PocketsphinxAligner:
    return PocketsphinxAligner()


def _write_synth(tmp_path: Path, texts: list[str], voice: str = "en-us") -> tuple[Path, dict]:
    utts, truth = [], {}
    for i, text in enumerate(texts):
        syn = synthesize(text, voice=voice, rate_wpm=175, pitch=50)
        sf.write(tmp_path / f"s{i}.wav", syn.audio, syn.sample_rate_hz)
        utts.append(Utterance(f"s{i}", f"s{i}.wav", syn.sample_rate_hz, syn.duration_s, voice, text))
        truth[f"s{i}"] = syn.words
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, utts)
    return manifest, truth


def test_espeak_word_boundaries_are_accurate(aligner: PocketsphinxAligner) -> None:
    errors = []
    for text in SENTENCES:
        syn = synthesize(text, voice="en+m3", rate_wpm=175, pitch=50)
        result = aligner.align(syn.audio, [w for w, _, _ in syn.words])
        assert [w for w, _, _ in result.words] == [w for w, _, _ in syn.words]
        pairs = zip(syn.words, result.words, strict=True)
        errors += [abs(a - b) for (_, *t), (_, *r) in pairs for a, b in zip(t, r, strict=True)]
        assert result.phones[0][1] == result.words[0][1] and result.phones[-1][2] == result.words[-1][2]
    errors_ms = np.array(errors) * 1000
    assert np.median(errors_ms) <= 15
    assert (errors_ms <= 50).mean() >= 0.9


@pytest.mark.parametrize(("text", "voice"), [
    # digital silence in the stop closures: without dither "catch" ended 179 ms and "pink" 127 ms early
    ("A rod is used to catch pink salmon.", "en-us"),
    # breathy noise in the pause and after the speech: without the quiet-run split "flame" ended 95 ms and "heat"
    # 59 ms late
    ("Smoky fires lack flame and heat.", "en-us+f3"),
])
def test_refinements_keep_every_boundary_within_50ms(aligner: PocketsphinxAligner, text: str, voice: str) -> None:
    syn = synthesize(text, voice=voice, rate_wpm=175, pitch=50)
    result = aligner.align(syn.audio, [w for w, _, _ in syn.words])
    errors = [abs(a - b) for (_, *t), (_, *r) in zip(syn.words, result.words, strict=True)
              for a, b in zip(t, r, strict=True)]
    assert max(errors) <= 0.05, list(zip(syn.words, result.words, strict=True))


def test_quiet_runs_are_pauses_and_edges_not_stop_closures() -> None:
    rate = 16000
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(int(0.3 * rate)) / rate)
    hiss = np.random.default_rng(0).normal(0, 0.3 * 10 ** (-45 / 20), int(0.12 * rate))  # 45 dB down: a pause
    closure = np.zeros(int(0.05 * rate))  # as quiet, but a stop closure's length
    audio = np.concatenate([tone, closure, tone, hiss, tone, np.zeros(int(0.04 * rate))]).astype(np.float32)
    runs = quiet_runs(quiet_frames(audio, rate, frame_s=0.01, offset_s=0.0078), frame_s=0.01, offset_s=0.0078)
    assert len(runs) == 2
    (pause_start, pause_end), (tail_start, tail_end) = runs
    # layout (s): tone 0-0.3, closure 0.3-0.35, tone 0.35-0.65, hiss 0.65-0.77, tone 0.77-1.07, zeros 1.07-1.11
    assert pause_start >= 0.64 and pause_end <= 0.78 and pause_end - pause_start >= 0.1
    assert tail_start >= 1.06 and tail_end <= len(audio) / rate


def test_split_at_quiet_moves_word_edges_out_of_the_run() -> None:
    words = [("a", 0.1, 0.5), ("b", 0.5, 0.9), ("c", 0.9, 1.4)]
    phones = [("a1", 0.1, 0.3), ("a2", 0.3, 0.5), ("b1", 0.5, 0.9), ("c1", 0.9, 1.0), ("c2", 1.0, 1.4)]
    split_at_quiet(words, phones, [(0.42, 0.56), (1.1, 1.2), (0.0, 0.05)])
    assert words == [("a", 0.1, 0.42), ("b", 0.56, 0.9), ("c", 0.9, 1.4)]  # the run inside "c" is a closure
    assert phones[1] == ("a2", 0.3, 0.42) and phones[2] == ("b1", 0.56, 0.9)
    words, phones = [("d", 0.0, 0.4)], [("d1", 0.0, 0.1), ("d2", 0.1, 0.4)]
    split_at_quiet(words, phones, [(0.05, 0.5)])  # the last phone keeps 10 ms, never vanishes
    assert words == [("d", 0.0, 0.11)] and phones == [("d1", 0.0, 0.1), ("d2", 0.1, 0.11)]


def test_a_quiet_run_from_the_first_frame_starts_where_the_first_word_can_start() -> None:
    quiet = np.array([True] * 5 + [False] * 20)
    assert quiet_runs(quiet, 0.01, 0.0078) == [(0.0, 0.0578)]
    words, phones = [("kick", 0.0, 0.2)], [("k", 0.0, 0.08), ("ih", 0.08, 0.15), ("k", 0.15, 0.2)]
    split_at_quiet(words, phones, quiet_runs(quiet, 0.01, 0.0078))
    assert words == [("kick", 0.0578, 0.2)]  # was left at 0: the run began at 0.0078, after the word's start


def test_stop_closure_goes_to_the_word_before_and_the_stop_starts_at_its_burst() -> None:
    # "the | parked": the p's span is 0.2-0.32 s with its closure (quiet) until 0.26 s; "a | dog" with a loud d
    words = [("the", 0.0, 0.2), ("parked", 0.2, 0.5), ("a", 0.6, 0.7), ("dog", 0.7, 0.9)]
    phones = [("dh", 0.0, 0.1), ("ah", 0.1, 0.2), ("p", 0.2, 0.32), ("aa", 0.32, 0.5), ("ah", 0.6, 0.7),
              ("d", 0.7, 0.75), ("ao", 0.75, 0.85), ("g", 0.85, 0.9)]
    quiet = np.zeros(100, bool)
    quiet[20:26] = True  # frames 20-25: 0.2-0.26 s on a grid without offset
    quiet[55:60] = True  # a pause before "a", not touched: the words do not meet there
    stops_start_at_burst(words, phones, quiet, 0.01, 0.0)
    assert words[:2] == [("the", 0.0, 0.26), ("parked", 0.26, 0.5)]
    assert phones[1] == ("ah", 0.1, 0.26) and phones[2] == ("p", 0.26, 0.32)
    assert words[2:] == [("a", 0.6, 0.7), ("dog", 0.7, 0.9)]  # no quiet frame inside the d: unchanged
    quiet[20:32] = True  # a closure through the whole stop: the stop keeps 10 ms
    words, phones = [("the", 0.0, 0.2), ("parked", 0.2, 0.5)], [("dh", 0.0, 0.1), ("ah", 0.1, 0.2),
                                                                 ("p", 0.2, 0.32), ("aa", 0.32, 0.5)]
    stops_start_at_burst(words, phones, quiet, 0.01, 0.0)
    assert words == [("the", 0.0, 0.31), ("parked", 0.31, 0.5)]


@pytest.mark.parametrize(("text", "stop_word"), [("Glue the sheet to the dark blue background.", "to"),
                                                ("It's easy to tell the depth of a well.", "tell")])
def test_a_word_starting_with_a_stop_starts_at_its_burst_as_in_koe_synth(
    aligner: PocketsphinxAligner, text: str, stop_word: str
) -> None:
    # at 140 wpm espeak's closures are long; pocketsphinx put "to" / "tell" 70 ms early, at the closure's start
    syn = synthesize(text, voice="en-us", rate_wpm=140, pitch=50)
    words = [w for w, _, _ in syn.words]
    result = aligner.align(syn.audio, words)
    i = words.index(stop_word)
    assert abs(result.words[i][1] - syn.words[i][1]) <= 0.025 and result.words[i - 1][2] == result.words[i][1]
    own_spans = PocketsphinxAligner(min_pause_s=0, edge_loops=False).align(syn.audio, words)
    assert own_spans.words[i][1] < syn.words[i][1] - 0.05  # min_pause_s=0 keeps pocketsphinx's own spans


def test_run_align_writes_times_and_handles_oov_words(tmp_path: Path) -> None:
    manifest, truth = _write_synth(tmp_path, ["The zorbleflax sat on Dashwood's mat.", SENTENCES[1]])
    report = run_align(AlignConfig(manifest=manifest))
    assert report.exit_code == 0, report.failures
    out = {u.id: u for u in read_manifest(tmp_path / "manifest.aligned.jsonl")}
    assert [w for w, _, _ in out["s0"].words] == [w for w, _, _ in truth["s0"]]  # OOV words kept, none dropped
    zorb = out["s0"].words[1]
    true_zorb = truth["s0"][1]
    assert abs(zorb[1] - true_zorb[1]) < 0.05 and abs(zorb[2] - true_zorb[2]) < 0.05
    lexicon = (tmp_path / "align_oov.dict").read_text()
    assert lexicon.startswith("dashwood's D AE SH W UH D Z\nzorbleflax Z AO R B AH L F L AE K S")
    assert report.extra["num_oov_words"] == 2 and report.extra["coverage"] == 1.0
    assert out["s0"].meta["align"]["method"] == "pocketsphinx"


def test_g2p_maps_espeak_phonemes_and_refuses_unknown_ones() -> None:
    assert arpabet_from_espeak(["f", "'aI3", "r-"]) == ["F", "AY", "ER"]
    assert arpabet_from_espeak(["b", "'V", "?", "n-"]) == ["B", "AH", "T", "AH", "N"]
    assert pronounce_word("42") == ["F", "AO", "R", "T", "IY", "T", "UW"]
    with pytest.raises(KoeInputError, match="no ARPAbet mapping"):
        arpabet_from_espeak(["k", "Y:"], "kyu")


def test_swapped_transcript_is_a_mismatch_failure_not_an_alignment(tmp_path: Path) -> None:
    # two transcripts of the same length swapped: no speech is left outside the words, so only the fit judges them;
    # their fit deficit (about 23/frame) is below the small-run max_fit_deficit but far above this speaker's median
    texts = ["The hogs were fed chopped corn and garbage.", "A large size in stockings is hard to sell.",
             "Help the woman get back to her feet.", *SENTENCES]
    manifest, _ = _write_synth(tmp_path, texts)
    utts = read_manifest(manifest)
    utts[0].text, utts[1].text = texts[1], texts[0]
    write_manifest(manifest, utts)
    report = run_align(AlignConfig(manifest=manifest, min_corpus_size=5))
    reasons = {f.item: f.reason for f in report.failures}
    assert set(reasons) == {"s0", "s1"}, reasons
    assert all(r.startswith(("mismatch:", "align-failed:")) for r in reasons.values())
    assert [u.id for u in read_manifest(tmp_path / "manifest.aligned.jsonl")] == [f"s{i}" for i in range(2, 7)]


def _result(deficit: float | None, squeezed: int = 0, edges: tuple[float, float] = (0.0, 0.0)) -> AlignResult:
    words = [(f"w{i}", i * 0.1, i * 0.1 + 0.1) for i in range(10)]
    return AlignResult(words, [], num_frames=120, word_frames=100, word_score=-4000, squeezed_words=squeezed,
                       fit_deficit=deficit, edge_speech_s=edges)


def test_every_mismatch_threshold_is_an_align_option_with_the_same_default() -> None:
    # run_align builds its MismatchRule from the AlignConfig fields of the same names
    cfg = AlignConfig(manifest=Path("m.jsonl"))
    for field in dataclasses.fields(MismatchRule):
        assert getattr(cfg, field.name) == field.default, field.name


def test_detector_compares_each_speaker_with_its_own_median() -> None:
    rule = MismatchRule(max_fit_deficit=30, max_score_drop=18, min_corpus_size=5, max_squeezed_fraction=0.3)
    results = {f"real{i}": _result(-20 + i % 3) for i in range(6)} | {f"tts{i}": _result(10 + i % 3) for i in range(6)}
    results |= {"real-bad": _result(5), "tts-bad": _result(35), "squeezed": _result(-20, squeezed=5),
                "cut": _result(-20, edges=(0.0, 0.2)), "no-free-decode": _result(None)}
    speakers = {k: "tts" if k.startswith("tts") else "real" for k in results}
    reasons = detect_mismatches(results, rule, speakers)
    # a deficit of 5 is normal for tts, a mismatch for real speech; without a free decode the other rules still judge
    assert set(reasons) == {"real-bad", "tts-bad", "squeezed", "cut"}
    assert "speaker real" in reasons["real-bad"] and "max_fit_deficit" in reasons["tts-bad"]
    assert "squeezed" in reasons["squeezed"] and "after the last aligned word" in reasons["cut"]


@pytest.mark.parametrize("voice", ["en-us", "en-gb-x-rp+f2"])
def test_rule_accepts_the_transcript_and_rejects_it_without_its_first_or_last_word(
    aligner: PocketsphinxAligner, voice: str
) -> None:
    syn = synthesize("Glue the sheet to the dark blue background.", voice=voice, rate_wpm=180, pitch=50)
    words = [w for w, _, _ in syn.words]
    rule = MismatchRule()
    assert mismatch_reason(aligner.align(syn.audio, words), rule, None) is None
    missing_first = mismatch_reason(aligner.align(syn.audio, words[1:]), rule, None)
    missing_last = mismatch_reason(aligner.align(syn.audio, words[:-1]), rule, None)
    assert missing_first is not None and "before the first aligned word" in missing_first
    assert missing_last is not None and "after the last aligned word" in missing_last


def test_edge_gain_rule_judges_each_edge_against_its_own_limit_and_zero_turns_it_off() -> None:
    rule = MismatchRule(max_edge_gain_start=500, max_edge_gain_end=800)
    judged = {}
    for gains in [(400, 0), (600, 0), (0, 700), (0, 900), (499, 799)]:
        res = _result(0.0)
        res.edge_loops = (EdgeLoop(gains[0], 2, 0.1), EdgeLoop(gains[1], 3, 0.2))
        judged[gains] = mismatch_reason(res, rule, None)
    assert [r is not None for r in judged.values()] == [False, True, False, True, False]
    assert "before the first" in judged[(600, 0)] and "after the last" in judged[(0, 900)]
    res.edge_loops = (EdgeLoop(5000, 4, 0.3), EdgeLoop(5000, 4, 0.3))
    assert mismatch_reason(res, dataclasses.replace(rule, max_edge_gain_start=0, max_edge_gain_end=0), None) is None


@pytest.mark.parametrize(("text", "drop"), [
    # "the" left out: the aligner stretches "box" over "the box", no speech is left outside the words and the fit
    # deficit hardly moves; free phones before "box" gain 607 (the full transcript: -9)
    ("The box was thrown beside the parked truck.", "first"),
    # "garbage" left out: "and" is stretched over it; free phones after "and" gain 2108 (the full transcript: 88)
    ("The hogs were fed chopped corn and garbage.", "last"),
])
def test_missing_edge_word_that_the_aligner_stretches_over_is_caught_by_the_edge_loops(
    aligner: PocketsphinxAligner, text: str, drop: str
) -> None:
    syn = synthesize(text, voice="en-us", rate_wpm=180, pitch=50)
    words = [w for w, _, _ in syn.words]
    partial = aligner.align(syn.audio, words[1:] if drop == "first" else words[:-1])
    full = aligner.align(syn.audio, words)
    rule = MismatchRule()
    without_loops = dataclasses.replace(rule, max_edge_gain_start=0, max_edge_gain_end=0)
    assert mismatch_reason(full, rule, None) is None
    assert mismatch_reason(partial, without_loops, None) is None  # the other rules pass it
    reason = mismatch_reason(partial, rule, None)
    assert reason is not None and "free phones" in reason
    assert ("before the first" if drop == "first" else "after the last") in reason
    side = 0 if drop == "first" else 1
    assert partial.edge_loops[side].gain > 2 * full.edge_loops[side].gain


def test_edge_loops_take_words_the_jsgf_parser_would_not() -> None:
    own = PocketsphinxAligner(extra_words={"r2d2": ["AA", "R", "T", "UW", "D", "IY", "T", "UW"]})
    syn = synthesize("A r2d2 rod is used to catch pink salmon.", voice="en-us", rate_wpm=180, pitch=50)
    result = own.align(syn.audio, [w for w, _, _ in syn.words])
    assert result.edge_loops is not None
    assert result.edge_loops[0].gain < MismatchRule().max_edge_gain_start
    assert mismatch_reason(result, MismatchRule(), None) is None


def test_fit_deficit_is_small_for_the_transcript_and_large_for_another_sentence(aligner: PocketsphinxAligner) -> None:
    syn = synthesize(SENTENCES[2], voice="en-029+m5", rate_wpm=220, pitch=50)
    own = aligner.align(syn.audio, [w for w, _, _ in syn.words]).fit_deficit
    other = aligner.align(syn.audio, SENTENCES[3].lower().rstrip(".").split()).fit_deficit
    assert own is not None and other is not None
    assert own < MismatchRule().max_fit_deficit < other


def test_speech_outside_counts_loud_frames_beyond_the_words_not_quiet_ones() -> None:
    rate = 16000
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(int(0.2 * rate)) / rate)
    noise = np.random.default_rng(0).normal(0, 0.3 * 10 ** (-30 / 20), int(0.2 * rate))  # 30 dB down: not speech
    audio = np.concatenate([tone, tone, noise]).astype(np.float32)
    before, after = speech_outside(loud_frames(audio, rate, 0.01, 0.0078), 0.01, 0.0078, start_s=0.2078, end_s=0.4078)
    assert before == pytest.approx(0.2, abs=0.011) and after == 0.0


def test_unreadable_audio_and_missing_text_are_listed(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance("bad", "bad.wav", 16000, 1.0, text="hello"),
                              Utterance("quiet", "bad.wav", 16000, 1.0, text=" ")])
    report = run_align(AlignConfig(manifest=manifest))
    reasons = {f.item: f.reason for f in report.failures}
    assert reasons["quiet"].startswith("no-text:")
    assert reasons["bad"].split(":")[0] in ("unreadable", "unsupported format") and "bad.wav" in reasons["bad"]
    assert report.extra["coverage"] == 0.0 and report.exit_code == 1


def test_librivox_agrees_with_pocketsphinx_shipped_alignments(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "pocketsphinx_librivox_aligned"
    utts, reference = [], {}
    for uid in (root / "fileids").read_text().split():
        info = sf.info(str(root / f"{uid}.wav"))
        utts.append(Utterance(uid, str(root / f"{uid}.wav"), info.samplerate, info.duration,
                              text=(root / f"{uid}.txt").read_text()))
        shipped = json.loads((root / f"{uid}.json").read_text())["w"]
        reference[uid] = [(w["b"], w["b"] + w["d"]) for w in shipped if w["t"] != "<sil>"]
    write_manifest(tmp_path / "m.jsonl", utts)
    report = run_align(AlignConfig(manifest=tmp_path / "m.jsonl", min_pause_s=0.0))
    assert report.extra["coverage"] == 1.0
    diffs = [abs(a - b) for u in read_manifest(tmp_path / "m.aligned.jsonl")
             for (_, *got), ref in zip(u.words, reference[u.id], strict=True) for a, b in zip(got, ref, strict=True)]
    assert np.median(diffs) <= 0.015 and np.mean(np.array(diffs) <= 0.05) >= 0.95


def test_loud_speech_swallowed_by_an_inner_silence_is_aligned_again_without_it(aligner: PocketsphinxAligner) -> None:
    # the Klatt voice's "back": pocketsphinx's silence model took its vowel (a 390 ms "pause" after "get"), and
    # "back" started 344 ms late, squeezed to its minimum duration; re-aligned with inner silences ruled out it is
    # within 50 ms
    syn = synthesize("Help the woman get back to her feet.", voice="en-gb-scotland+klatt", rate_wpm=140, pitch=50)
    result = aligner.align(syn.audio, [w for w, _, _ in syn.words])
    assert result.realigned
    (_, start, end), (_, got_start, got_end) = syn.words[4], result.words[4]
    assert abs(got_start - start) <= 0.05 and abs(got_end - end) <= 0.05, (syn.words[4], result.words[4])
    # real pauses are quiet and do not trigger it
    calm = synthesize("It snowed, rained, and hailed the same morning.", voice="en-us", rate_wpm=180, pitch=50)
    assert not aligner.align(calm.audio, [w for w, _, _ in calm.words]).realigned


def test_loud_gap_counts_loud_frames_between_words_only() -> None:
    loud = np.zeros(100, bool)
    loud[40:46] = True  # 60 ms of loud audio
    assert _loud_gap([(0, 40, 3), (46, 80, 3)], loud)  # all of it in the silence between the two words
    assert not _loud_gap([(0, 42, 3), (46, 80, 3)], loud)  # only 40 ms of it
    assert not _loud_gap([(0, 50, 3), (50, 80, 3)], loud)  # inside a word


def test_two_squeezed_words_of_a_short_window_are_not_a_mismatch() -> None:
    # en-029+f4 at 220 wpm: 2 of a 6-word window's words at their minimum duration (0.33 > 0.3) with the right
    # transcript; wrong transcripts that the rule catches squeeze 3 or more
    res = _result(0.0, squeezed=2)
    res.words = res.words[:6]
    assert mismatch_reason(res, MismatchRule(), None) is None
    res.squeezed_words = 3
    assert "squeezed" in mismatch_reason(res, MismatchRule(), None)


def test_edge_speech_of_a_left_out_short_word_is_a_mismatch() -> None:
    # a left-out "a" or "the" at 220 wpm leaves 30-50 ms of loud speech before the first word; correct transcripts
    # of koe synth's default voices leave at most 20 ms (docs/align.md)
    assert mismatch_reason(_result(0.0, edges=(0.04, 0.0)), MismatchRule(), None) is not None
    assert mismatch_reason(_result(0.0, edges=(0.02, 0.02)), MismatchRule(), None) is None


def test_a_result_does_not_depend_on_what_the_aligner_decoded_before() -> None:
    """pocketsphinx's noise removal carried its noise estimate from each decode into the next, so an utterance's free
    phone-loop decode (and with it the fit deficit the mismatch rules read) depended on which utterances the same
    process had aligned before it: with several workers, on the scheduling."""
    target = synthesize(SENTENCES[3], voice="en-us", rate_wpm=220, pitch=50)
    words = [w for w, _, _ in target.words]
    fresh = PocketsphinxAligner().align(target.audio, words)
    used = PocketsphinxAligner()
    for text in SENTENCES[:2]:  # quieter and another voice: another noise estimate
        other = synthesize(text, voice="en-029+f4", rate_wpm=140, pitch=50)
        used.align(other.audio * 0.05, [w for w, _, _ in other.words])
    again = used.align(target.audio, words)
    assert again.free_phones == fresh.free_phones and again.fit_deficit == fresh.fit_deficit
    assert again.words == fresh.words and again.edge_loops == fresh.edge_loops
