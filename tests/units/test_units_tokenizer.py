"""Dedup, BPE and the tokenizer directory (save/load, content hash, tamper check, encoding audio)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from koe.stage import KoeInputError
from koe.units.bpe import bpe_decode, bpe_encode, train_bpe
from koe.units.features import FeatureSpec
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec, dedup_units, expand_units


def test_dedup_round_trip():
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 5, 200), rng.integers(1, 6, 200)).astype(np.int32)
    units, durations = dedup_units(frames)
    assert units.dtype == durations.dtype == np.int32
    assert (units[1:] != units[:-1]).all() and (durations >= 1).all()
    np.testing.assert_array_equal(expand_units(units, durations), frames)
    assert [a.tolist() for a in dedup_units(np.array([3, 3, 3, 1, 3]))] == [[3, 1, 3], [3, 1, 1]]
    assert [len(a) for a in dedup_units(np.zeros(0, np.int32))] == [0, 0]


def test_bpe_round_trip_keeps_durations():
    rng = np.random.default_rng(1)
    motifs = [rng.integers(0, 30, 4) for _ in range(5)]  # repeated motifs give BPE something to merge
    seqs = [dedup_units(np.concatenate([motifs[j] for j in rng.integers(0, 5, 12)]))[0] for _ in range(40)]
    tok = train_bpe(seqs, num_units=30, vocab_size=60)
    assert tok.get_vocab_size() == 60
    units = seqs[0]
    durations = rng.integers(1, 4, len(units)).astype(np.int32)
    ids, piece_durations = bpe_encode(tok, units, durations)
    assert len(ids) < len(units) and ids.max() >= 30  # merges happened
    np.testing.assert_array_equal(bpe_decode(tok, ids), units)
    assert piece_durations.sum() == durations.sum() and (piece_durations >= 1).all()
    single, single_d = bpe_encode(tok, units[:1], durations[:1])
    assert single.tolist() == [int(units[0])] and single_d.tolist() == [int(durations[0])]
    with pytest.raises(ValueError, match="must exceed"):
        train_bpe(seqs, num_units=30, vocab_size=30)


def _tokenizer(seed: int = 0, bpe_json: str | None = None) -> UnitTokenizer:
    centroids = np.random.default_rng(seed).normal(size=(8, 39)).astype(np.float32)
    spec = UnitTokenizerSpec(features=FeatureSpec(backend="mfcc", frame_rate_hz=100.0, dim=39), num_units=8,
                             fit={"manifest": "m.jsonl", "num_frames": 100, "seed": seed, "iterations": 5})
    return UnitTokenizer(spec, centroids, bpe_json)


def test_save_load_and_hash(tmp_path):
    tok = _tokenizer()
    assert len(tok.content_hash) == 16 and tok.num_units == 8 and tok.frame_rate_hz == 100.0
    tok.save(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["centroids.npy", "unit_tokenizer.json"]
    loaded = UnitTokenizer.load(tmp_path / "a")
    assert loaded.content_hash == tok.content_hash == _tokenizer().content_hash  # stable across builds
    np.testing.assert_array_equal(loaded.centroids, tok.centroids)
    loaded.save(tmp_path / "b")
    spec_a, spec_b = (tmp_path / d / "unit_tokenizer.json" for d in ("a", "b"))
    assert spec_a.read_bytes() == spec_b.read_bytes()
    assert _tokenizer(seed=1).content_hash != tok.content_hash
    moved = _tokenizer()
    moved.centroids = moved.centroids.copy()
    moved.centroids[0, 0] += 1e-3
    moved.save(tmp_path / "c")  # saved with the old hash: load must notice
    with pytest.raises(KoeInputError, match="does not match"):
        UnitTokenizer.load(tmp_path / "c")


def test_bpe_changes_the_hash_and_is_saved(tmp_path):
    seqs = [np.array([1, 2, 3, 1, 2, 3, 4], np.int32)] * 5
    bpe_json = train_bpe(seqs, num_units=8, vocab_size=10).to_str()
    tok = _tokenizer(bpe_json=bpe_json)
    tok.spec.bpe = {"vocab_size": 10, "file": "bpe.json"}
    tok.spec.content_hash = ""
    tok = UnitTokenizer(tok.spec, tok.centroids, bpe_json)
    assert tok.content_hash != _tokenizer().content_hash and tok.vocab_size == 10
    loaded = UnitTokenizer.load(tok.save(tmp_path / "bpe"))
    ids, durations = loaded.apply_bpe(seqs[0], np.ones(7, np.int32))
    assert len(ids) < 7 and durations.sum() == 7
    np.testing.assert_array_equal(loaded.undo_bpe(ids), seqs[0])


def test_load_errors(tmp_path):
    with pytest.raises(KoeInputError, match="not a unit tokenizer directory"):
        UnitTokenizer.load(tmp_path)
    _tokenizer().save(tmp_path / "t")
    spec = json.loads((tmp_path / "t" / "unit_tokenizer.json").read_text())
    (tmp_path / "t" / "unit_tokenizer.json").write_text(json.dumps({**spec, "schema_version": 99}))
    with pytest.raises(KoeInputError, match="newer"):
        UnitTokenizer.load(tmp_path / "t")


def _tones(*pitches: float, seg_s: float = 0.3, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seg_s * sr)) / sr
    return np.concatenate([0.5 * np.sin(2 * np.pi * p * t) for p in pitches]).astype(np.float32)


def test_encode_audio(mfcc_tokenizer):
    tok = UnitTokenizer.load(mfcc_tokenizer)
    wav = _tones(220.0, 880.0, 220.0)
    units, durations = tok.encode_audio(wav)
    assert units.dtype == durations.dtype == np.int32
    assert durations.sum() == len(wav) // 160 + 1  # every 10 ms frame is covered once
    assert 3 <= len(units) < durations.sum() and units.max() < tok.num_units
    frames = expand_units(units, durations)
    assert frames[15] == frames[75] != frames[45]  # same pitch, same unit; another pitch, another unit
    batch = tok.encode_batch([wav, wav[:8000]])
    np.testing.assert_array_equal(batch[0][0], units)
    at_8k = tok.encode_audio(_tones(220.0, 880.0, 220.0, sr=8000), sample_rate_hz=8000)
    assert abs(int(at_8k[1].sum()) - int(durations.sum())) <= 1


def test_hf_tokenizer_round_trip(tiny_hubert, tone_manifest, tmp_path):
    """fit with features=hf:<local tiny HuBERT>@2, then load the directory and encode with it."""
    from koe.units.config import FitConfig
    from koe.units.fit import run_fit

    report = run_fit(FitConfig(manifest=tone_manifest, out_dir=tmp_path / "tok", features=f"hf:{tiny_hubert}@2", k=5,
                               iterations=5, max_frames=2000, device="cpu"))
    assert report.exit_code == 0 and report.extra["frames_used"] > 5
    spec = json.loads((tmp_path / "tok" / "unit_tokenizer.json").read_text())
    assert spec["features"]["backend"] == "hf" and spec["features"]["source"] == str(tiny_hubert)
    assert (spec["features"]["layer"], spec["features"]["frame_rate_hz"], spec["features"]["dim"]) == (2, 50.0, 32)
    tok = UnitTokenizer.load(tmp_path / "tok")
    assert tok.content_hash == spec["content_hash"]
    units, durations = tok.encode_audio(_tones(220.0, 440.0))
    assert durations.sum() == (9600 - 400) // 320 + 1 and units.max() < 5
