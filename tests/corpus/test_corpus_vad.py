"""koe corpus import vad: espeak phrases separated by silence, cut back into utterances by silero-vad."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import soxr

from koe.audio import load_audio
from koe.corpus.config import ImportConfig
from koe.corpus.importers import run_import
from koe.corpus.manifest import read_manifest

espeak = pytest.importorskip("koe.synth.espeak")

PHRASES = ["the red dog runs to the old house", "one green tree stands on a hill", "we walk home"]


def _recording(rate_hz: int, gap_s: float = 1.5) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Phrases with gap_s of silence around each; returns audio at rate_hz and each phrase's speech span."""
    parts, spans, t = [np.zeros(int(gap_s * 16000), np.float32)], [], gap_s
    for text in PHRASES:
        syn = espeak.synthesize(text, voice="en-us")
        loud = np.flatnonzero(np.abs(syn.audio) > 0.02)  # where the phrase is audible, from the audio itself
        spans.append((t + loud[0] / 16000, t + loud[-1] / 16000))
        parts += [syn.audio, np.zeros(int(gap_s * 16000), np.float32)]
        t += syn.duration_s + gap_s
    audio = np.concatenate(parts)
    return (soxr.resample(audio, 16000, rate_hz) if rate_hz != 16000 else audio), spans


def test_vad_cuts_phrases_with_offsets_into_the_original_file(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    audio, spans = _recording(24000)
    sf.write(raw / "talk.wav", audio, 24000, subtype="PCM_16")
    sf.write(raw / "silence.wav", np.zeros(3 * 16000, np.float32), 16000)
    out = tmp_path / "out"
    report = run_import(ImportConfig(source="vad", path=raw, out_dir=out, min_segment_s=0.5, max_segment_s=10,
                                     merge_gap_s=0.3, split_by="recording", valid_fraction=0.5))

    utts = read_manifest(out / "manifest.jsonl")
    assert [u.id for u in utts] == ["talk-0000", "talk-0001", "talk-0002"]
    for u, (start, end) in zip(utts, spans, strict=True):
        assert u.offset_s == pytest.approx(start, abs=0.25)
        assert u.offset_s + u.duration_s == pytest.approx(end, abs=0.3)
        assert (u.sample_rate_hz, u.speaker, u.text) == (24000, "talk", None)
        assert u.audio_path == str((raw / "talk.wav").resolve())  # no re-encoding: segments of the original
        seg = load_audio(u.audio_path, offset_s=u.offset_s, duration_s=u.duration_s)
        assert seg.shape[0] == pytest.approx(u.duration_s * 16000, abs=2)
    assert len({u.split for u in utts}) == 1  # split_by=recording keeps one recording's segments together
    assert [f.reason.split(":")[0] for f in report.failures] == ["no speech"]
    assert report.failures[0].item == "silence"


def test_vad_drops_and_counts_short_segments_and_cuts_long_ones(tmp_path):
    audio, _ = _recording(16000, gap_s=1.0)
    sf.write(tmp_path / "talk.wav", audio, 16000)
    report = run_import(ImportConfig(source="vad", path=tmp_path / "talk.wav", out_dir=tmp_path / "o1",
                                     min_segment_s=1.2, max_segment_s=5.0))
    assert len(read_manifest(tmp_path / "o1/manifest.jsonl")) == 2  # "we walk home" (< 1.2 s) is dropped...
    assert report.extra["vad_segments_dropped"] == 1 and report.extra["vad_dropped_s"] > 0.5  # ...and counted
    assert report.exit_code == 0

    run_import(ImportConfig(source="vad", path=tmp_path / "talk.wav", out_dir=tmp_path / "o2", min_segment_s=0.2,
                            max_segment_s=1.0))
    utts = read_manifest(tmp_path / "o2/manifest.jsonl")
    assert len(utts) >= 5  # the two ~1.9 s phrases are cut in two
    assert all(u.duration_s <= 1.0 + 1e-6 for u in utts)
    assert all(a.offset_s + a.duration_s <= b.offset_s + 1e-6 for a, b in itertools.pairwise(utts))
