"""`koe units fit` and `koe units encode` end to end on tiny tone files and on real FSDD recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from koe.config import load_config
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.units.config import EncodeConfig, FitConfig
from koe.units.encode import plan_parts, run_encode
from koe.units.fit import run_fit
from koe.units.shards import load_units_meta, read_unit_shards
from koe.units.tokenizer import UnitTokenizer, expand_units


def test_fit_writes_a_tokenizer_dir_and_summary(mfcc_tokenizer):
    files = sorted(p.name for p in mfcc_tokenizer.iterdir())
    assert files == [".done", "centroids.npy", "config.yaml", "unit_tokenizer.json", "units_fit_failures.jsonl",
                     "units_fit_summary.json"]
    spec = json.loads((mfcc_tokenizer / "unit_tokenizer.json").read_text())
    assert spec["num_units"] == 8 and spec["dedup"] is True and spec["bpe"] is None
    assert spec["features"]["backend"] == "mfcc" and spec["features"]["sample_rate_hz"] == 16000
    assert spec["fit"]["seed"] == 0 and spec["fit"]["iterations"] == 10 and spec["fit"]["num_frames"] > 100
    summary = json.loads((mfcc_tokenizer / "units_fit_summary.json").read_text())
    assert summary["units_used"] == 8 and 0 < summary["dedup_ratio"] < 0.5 and summary["inertia"] > 0


def test_fit_is_reproducible_and_bpe_is_optional(tone_manifest, mfcc_tokenizer, tmp_path):
    cfg = FitConfig(manifest=tone_manifest, out_dir=tmp_path / "again", features="mfcc", k=8, iterations=10,
                    max_frames=5000, device="cpu", bpe_vocab_size=12)
    run_fit(cfg)
    tok = UnitTokenizer.load(tmp_path / "again")
    np.testing.assert_array_equal(tok.centroids, UnitTokenizer.load(mfcc_tokenizer).centroids)
    assert tok.vocab_size == 12 and (tmp_path / "again" / "bpe.json").exists()
    summary = (tmp_path / "again" / "units_fit_summary.json").read_text()
    report = run_fit(cfg)  # done marker: nothing is redone, the earlier summary stays and its counts are reported
    assert "skipped" in report.extra and report.items_out == json.loads(summary)["items_out"] > 0
    assert (tmp_path / "again" / "units_fit_summary.json").read_text() == summary


def test_fit_config_problems_are_listed_together():
    with pytest.raises(ValueError) as e:
        load_config(FitConfig, overrides=["manifest=m", "out_dir=o", "k=1", "bpe_vocab_size=1", "max_frames=0"])
    assert "k=1" in str(e.value) and "bpe_vocab_size=1" in str(e.value) and "max_frames=0" in str(e.value)
    with pytest.raises(ValueError, match="init='best' must be one of"):
        load_config(FitConfig, overrides=["manifest=m", "out_dir=o", "init=best"])


def test_encode_writes_the_documented_shards(tone_manifest, mfcc_tokenizer, unit_shards):
    meta = load_units_meta(unit_shards)
    tok = UnitTokenizer.load(mfcc_tokenizer)
    assert json.loads((unit_shards / "meta.json").read_text()) == {
        "tokenizer_hash": tok.content_hash, "tokenizer_dir": str(mfcc_tokenizer), "num_units": 8,
        "frame_rate_hz": 100.0, "manifest": str(tone_manifest), "num_shards": 2, "num_utterances": 6,
        "dedup": True, "schema_version": 1}
    assert sorted(p.name for p in unit_shards.glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz"]
    utts = read_manifest(tone_manifest)
    records = list(read_unit_shards(unit_shards))
    assert [r.id for r in records] == [u.id for u in utts] and meta.num_utterances == 6
    for rec, utt in zip(records, utts, strict=True):
        wav, _ = sf.read(tone_manifest.parent / utt.audio_path, dtype="float32")
        units, durations = tok.encode_audio(wav)  # shards hold exactly what the tokenizer gives
        np.testing.assert_array_equal(rec.units, units)
        np.testing.assert_array_equal(rec.durations, durations)
        assert len(expand_units(rec.units, rec.durations)) == len(wav) // 160 + 1
    summary = json.loads((unit_shards / "units_encode_summary.json").read_text())
    assert summary["items_out"] == 6 and summary["num_failures"] == 0 and summary["units_per_s"] > 0


def test_bad_files_are_listed_and_the_rest_encoded(tone_manifest, mfcc_tokenizer, tmp_path):
    utts = read_manifest(tone_manifest)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")
    sf.write(tmp_path / "long.wav", np.zeros(16000 * 3, np.float32), 16000)
    bad = [Utterance(id="broken", audio_path=str(tmp_path / "broken.wav"), sample_rate_hz=16000, duration_s=1.0),
           Utterance(id="gone", audio_path=str(tmp_path / "gone.wav"), sample_rate_hz=16000, duration_s=1.0),
           Utterance(id="long", audio_path=str(tmp_path / "long.wav"), sample_rate_hz=16000, duration_s=3.0)]
    for u in utts:
        u.audio_path = str(tone_manifest.parent / u.audio_path)
    write_manifest(tmp_path / "m.jsonl", [*utts[:2], *bad, *utts[2:]])
    report = run_encode(EncodeConfig(manifest=tmp_path / "m.jsonl", tokenizer=mfcc_tokenizer, out_dir=tmp_path / "u",
                                     device="cpu", max_duration_s=2.5, shard_size=3))
    assert report.exit_code == 1 and report.items_in == 9 and report.items_out == 6
    failures = [json.loads(line) for line in (tmp_path / "u" / "units_encode_failures.jsonl").read_text().splitlines()]
    reasons = {f["item"]: f["reason"] for f in failures}
    assert sorted(reasons) == ["broken", "gone", "long"] and reasons["long"].startswith("too long:")
    assert all(str(tmp_path) in r for r in reasons.values())  # each reason names its file
    assert [r.id for r in read_unit_shards(tmp_path / "u")] == [u.id for u in utts]
    assert load_units_meta(tmp_path / "u").num_shards == 3


@pytest.mark.slow  # two spawned processes each import torch: ~10-20 s on 2 busy cores
def test_worker_processes_write_the_same_shards(tone_manifest, mfcc_tokenizer, unit_shards, tmp_path):
    run_encode(EncodeConfig(manifest=tone_manifest, tokenizer=mfcc_tokenizer, out_dir=tmp_path / "w2",
                            device="cpu", shard_size=4, num_workers=2))
    for name in ("shard-00000.npz", "shard-00001.npz"):
        with np.load(unit_shards / name) as a, np.load(tmp_path / "w2" / name) as b:
            assert all(np.array_equal(a[k], b[k]) for k in a.files)


def _encode_rank(rank: int, world: int, port: int, cfg: EncodeConfig) -> None:
    """One torchrun-like rank: the environment torchrun sets, accelerate's state reset after the fork."""
    import os

    import torch
    from accelerate.state import AcceleratorState

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "KOE_NO_PROGRESS": "1"})
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)
    run_encode(cfg)


def test_two_ranks_write_the_same_shards_and_one_meta(tone_manifest, mfcc_tokenizer, unit_shards, tmp_path):
    """Ranks split the shards and gather their reports through accelerate (PartialState + gather_object)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "two"
    cfg = EncodeConfig(manifest=tone_manifest, tokenizer=mfcc_tokenizer, out_dir=out, shard_size=4, device="cpu")
    mp.start_processes(_encode_rank, args=(2, port, cfg), nprocs=2, join=True, start_method="fork")
    one, two = load_units_meta(unit_shards), load_units_meta(out)
    assert two.num_shards == one.num_shards >= 2 and two.num_utterances == one.num_utterances
    for name in sorted(p.name for p in unit_shards.glob("shard-*.npz")):
        with np.load(unit_shards / name) as a, np.load(out / name) as b:
            assert all(np.array_equal(a[k], b[k]) for k in a.files), name
    summary = json.loads((out / "units_encode_summary.json").read_text())
    assert summary["items_out"] == one.num_utterances


@pytest.mark.parametrize("world", [1, 2, 3])
def test_plan_parts_covers_every_shard_once(world):
    seen = [s for rank in range(world) for part in plan_parts(23, 4, rank, world, workers=2) for s in part]
    assert sorted(seen) == list(range(6))


@pytest.mark.shared_data
def test_real_fsdd_recordings_encode(shared_data, tmp_path):
    """8 kHz real speech: resampled on load, fitted and encoded; the same digit word gives similar unit rates."""
    paths = sorted((shared_data / "fsdd" / "recordings").glob("[01]_*_0.wav"))[:8]
    utts = []
    for p in paths:
        info = sf.info(p)
        utts.append(Utterance(id=p.stem, audio_path=str(p), sample_rate_hz=info.samplerate,
                              duration_s=info.frames / info.samplerate, speaker=p.stem.split("_")[1]))
    assert utts and utts[0].sample_rate_hz == 8000
    write_manifest(tmp_path / "fsdd.jsonl", utts)
    fit = run_fit(FitConfig(manifest=tmp_path / "fsdd.jsonl", out_dir=tmp_path / "tok", features="mel", k=16,
                            iterations=10, max_frames=20000, device="cpu"))
    assert fit.exit_code == 0 and fit.extra["units_used"] >= 12
    enc = run_encode(EncodeConfig(manifest=tmp_path / "fsdd.jsonl", tokenizer=tmp_path / "tok",
                                  out_dir=tmp_path / "units", device="cpu"))
    assert enc.exit_code == 0 and enc.items_out == len(utts)
    for rec, utt in zip(read_unit_shards(tmp_path / "units"), utts, strict=True):
        assert abs(rec.durations.sum() / 100.0 - utt.duration_s) < 0.02  # 100 Hz frames cover the recording
        assert 1 < len(rec.units) < rec.durations.sum()


def test_encode_batch_defaults_by_device():
    from koe.units.features import default_batch_s

    cfg = EncodeConfig(manifest=Path("m.jsonl"), tokenizer=Path("t"), out_dir=Path("o"))
    assert cfg.batch_s == 0 and cfg.validate() == []
    assert default_batch_s("cpu") == 320.0
    assert EncodeConfig(manifest=Path("m"), tokenizer=Path("t"), out_dir=Path("o"), batch_s=-1).validate() == [
        "batch_s=-1 must be >= 0 (0 = by device)"]
