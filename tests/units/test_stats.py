"""koe units stats: rates, bitrate, codebook usage, perplexity, purity and PNMI on arrays with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from koe.cli import run_command
from koe.corpus.manifest import Utterance, write_manifest
from koe.units.config import StatsConfig
from koe.units.shards import UnitRecord, UnitsMeta, write_unit_shard, write_units_meta
from koe.units.stats import (
    UnitStats,
    alignment_scores,
    distribution_stats,
    frame_span_index,
    pair_counts,
    run_stats,
)


def _scores(labels, units):
    return alignment_scores(pair_counts(np.asarray(labels), np.asarray(units)))


def test_perfect_one_to_one_mapping_scores_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, 5000)
    units = np.array([3, 7, 1, 0, 6, 2, 5, 4])[labels]  # a permutation: each unit is exactly one label
    s = _scores(labels, units)
    assert s["purity"] == pytest.approx(1.0) and s["cluster_purity"] == pytest.approx(1.0)
    assert s["pnmi"] == pytest.approx(1.0)


def test_independent_labels_give_pnmi_near_zero():
    rng = np.random.default_rng(1)
    s = _scores(rng.integers(0, 10, 200_000), rng.integers(0, 20, 200_000))
    assert s["pnmi"] < 0.005
    assert s["purity"] == pytest.approx(0.1, abs=0.02)  # the most frequent of 10 equiprobable labels per unit


def test_units_that_split_a_phone_are_pure_and_fully_informative():
    labels = np.repeat([0, 1, 2], 100)
    units = np.arange(300) % 2 + 2 * labels  # two units per phone, used equally
    s = _scores(labels, units)
    assert s["purity"] == pytest.approx(1.0) and s["pnmi"] == pytest.approx(1.0)
    assert s["cluster_purity"] == pytest.approx(0.5)  # each phone's best unit holds half of its frames


def test_small_table_against_hand_computed_values():
    # n(label, unit): a: u0=2, u1=1; b: u1=2, u2=1
    s = _scores([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 2])
    assert s["purity"] == pytest.approx(5 / 6)
    assert s["cluster_purity"] == pytest.approx(4 / 6)
    mutual = 0.5 * math.log(2) + math.log(2 / 3) / 6 + math.log(4 / 3) / 3
    assert s["pnmi"] == pytest.approx(mutual / math.log(2))


def test_single_label_has_undefined_pnmi_and_unlabelled_frames_are_ignored():
    assert _scores([0, 0, 0], [1, 2, 3])["pnmi"] is None
    assert _scores([-1, 0, -1, 1], [5, 0, 5, 1]) == _scores([0, 1], [0, 1])


def test_codebook_usage_and_perplexity():
    assert distribution_stats(np.array([5, 5, 0, 0])) == pytest.approx((0.5, 2.0))
    assert distribution_stats(np.full(64, 3)) == pytest.approx((1.0, 64.0))
    assert distribution_stats(np.array([9, 0, 0]))[1] == pytest.approx(1.0)


def test_frame_labels_are_taken_at_frame_centres():
    spans = [("b", 0.04, 0.08), ("a", 0.0, 0.04)]  # unsorted on purpose; 0.1 s at 50 Hz = 5 frames
    # centres 0.01, 0.03, 0.05, 0.07, 0.09 -> a, a, b, b, none
    assert frame_span_index(spans, 5, 50.0).tolist() == [1, 1, 0, 0, -1]


def test_rates_run_length_and_bitrate_of_one_record():
    acc = UnitStats(num_units=256, frame_rate_hz=50.0)
    acc.add(UnitRecord("u", [1, 2, 1], [2, 3, 5]))  # 10 frames = 0.2 s, 3 tokens
    r = acc.result()
    assert r["token_rate_before_dedup_hz"] == pytest.approx(50.0)
    assert r["token_rate_hz"] == pytest.approx(15.0)
    assert r["mean_run_length_frames"] == pytest.approx(10 / 3)
    assert r["bitrate_bps"] == pytest.approx(15.0 * 8) and r["bitrate_before_dedup_bps"] == pytest.approx(400.0)
    assert r["units_used"] == 2 and r["codebook_usage"] == pytest.approx(2 / 256)
    assert r["phones"] is None


def _write_units(tmp_path, records, num_units=4, frame_rate_hz=50.0, manifest="none.jsonl"):
    d = tmp_path / "units"
    write_unit_shard(d / "shard-00000.npz", records[:2])
    write_unit_shard(d / "shard-00001.npz", records[2:])
    write_units_meta(d, UnitsMeta(tokenizer_hash="abc", tokenizer_dir="tok", num_units=num_units,
                                  frame_rate_hz=frame_rate_hz, manifest=str(manifest), num_shards=2,
                                  num_utterances=len(records)))
    return d


def test_run_stats_writes_json_table_plot_and_lists_unmatched_utterances(tmp_path):
    # u1: phones p (0-0.1 s) and q (0.1-0.2 s) at 50 Hz: units 0,0,0,0,0 | 1,1,1,2,2 -> purity 1, PNMI 1
    records = [UnitRecord("u1", [0, 1, 2], [5, 3, 2]), UnitRecord("u2", [0, 1], [5, 5]),
               UnitRecord("ghost", [3], [10])]
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, [
        Utterance("u1", "a.wav", 16000, 0.2, phones=[("p", 0.0, 0.1), ("q", 0.1, 0.2)],
                  words=[("pq", 0.0, 0.2)]),
        Utterance("u2", "b.wav", 16000, 0.2, phones=[("p", 0.0, 0.1), ("q", 0.1, 0.2)]),
    ])
    units_dir = _write_units(tmp_path, records, manifest=manifest)
    report = run_stats(StatsConfig(units_dir=units_dir, out_dir=tmp_path / "out"))

    stats = json.loads((tmp_path / "out/stats.json").read_text())
    assert stats["manifest"] == str(manifest)  # found through meta.json
    assert stats["num_utterances"] == 3 and stats["frames"] == 30 and stats["tokens"] == 6
    assert stats["token_rate_hz"] == pytest.approx(6 / 0.6)
    assert stats["codebook_usage"] == pytest.approx(1.0)
    phones = stats["phones"]
    assert phones["purity"] == pytest.approx(1.0) and phones["pnmi"] == pytest.approx(1.0)
    assert phones["cluster_purity"] == pytest.approx((5 + 5 + 3 + 5) / 20)
    assert phones["num_labels"] == 2 and phones["labelled_fraction"] == pytest.approx(1.0)
    assert stats["words"]["purity"] == pytest.approx(1.0) and stats["words"]["pnmi"] is None
    assert [(f.item, f.reason.split(":")[0]) for f in report.failures] == [("ghost", "not in manifest")]
    assert report.exit_code == 1
    table = (tmp_path / "out/stats.md").read_text()
    assert "| phones: PNMI | 1.000 |" in table and "| token rate after dedup (Hz) | 10.00 |" in table
    assert (tmp_path / "out/stats.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out/stats_config.yaml").is_file()


def test_cli_without_manifest_uses_frame_durations_and_catches_a_wrong_manifest(tmp_path):
    records = [UnitRecord("a", [0, 1], [25, 25]), UnitRecord("b", [2], [50]), UnitRecord("c", [3, 0], [1, 1])]
    units_dir = _write_units(tmp_path, records)
    assert run_command("units stats", [str(units_dir)]) == 0
    stats = json.loads((units_dir / "stats.json").read_text())
    assert stats["manifest"] is None and stats["audio_hours"] == pytest.approx(102 / 50 / 3600)

    wrong = tmp_path / "wrong.jsonl"
    write_manifest(wrong, [Utterance(i, "x.wav", 16000, 5.0) for i in "abc"])
    assert run_command("units stats", [str(units_dir), f"manifest={wrong}", f"out_dir={tmp_path / 'o'}"]) == 1
    failures = (tmp_path / "o/units_stats_failures.jsonl").read_text()
    assert failures.count("length mismatch") == 3
