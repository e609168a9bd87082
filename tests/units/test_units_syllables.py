"""Syllable units: segmentation on planted blocks, boundary metrics, edit distance, and fit -> encode -> stats ->
`koe data build` on tone "syllables" (each tone a word, so the truth is known)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from koe.config import ConfigError, load_config
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.corpus.text import TextItem, write_text_items
from koe.data.interleave import align_units
from koe.units.boundaries import (
    BoundaryCounts,
    boundary_scores,
    is_nucleus,
    match_boundaries,
    span_boundaries,
    syllable_spans,
)
from koe.units.config import FitConfig
from koe.units.invariance import normalized_edit_distance, same_text_pairs, speaker_invariance
from koe.units.segment import (
    SegmentParams,
    absorb_short,
    greedy_region,
    merge_adjacent,
    mincut_bounds,
    mincut_region,
    segment_features,
    speech_mask,
    uniform_region,
)
from koe.units.shards import UnitRecord, UnitsMeta, read_unit_shard, read_unit_shards, write_unit_shard
from koe.units.syllables import agglomerate, syllable_tokens
from koe.units.tokenizer import UnitTokenizer

RAW = SegmentParams(cmvn=False, smooth_s=0.0, cosine=False, min_segment_s=0.0)


def planted(lengths: list[int], dim: int = 16, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of frames around distinct random centres; returns (features, true boundaries)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(lengths), dim)) * 2
    x = np.concatenate([c + noise * rng.standard_normal((n, dim)) for c, n in zip(centres, lengths, strict=True)])
    return x, np.cumsum([0, *lengths])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mincut_and_greedy_recover_planted_blocks(seed):
    x, truth = planted([12, 20, 8, 15, 25, 10], seed=seed)
    over = SegmentParams(**{**RAW.to_dict(), "sec_per_syllable": 0.05, "merge_threshold": 0.9})
    assert mincut_region(x, 100.0, over).tolist() == truth.tolist()
    sylber = SegmentParams(**{**RAW.to_dict(), "greedy_threshold": 0.8, "merge_threshold": 0.9})
    assert greedy_region(x, 100.0, sylber).tolist() == truth.tolist()


def test_mincut_dp_finds_exactly_k_segments_and_respects_max_length():
    x, truth = planted([10, 10, 10, 10])
    assert mincut_bounds(x, 4, 40).tolist() == truth.tolist()
    bounds = mincut_bounds(x, 8, 6)  # over-segmentation: 8 segments of at most 6 frames, true cuts kept
    assert len(bounds) == 9 and np.diff(bounds).max() <= 6 and set(truth) <= set(bounds.tolist())


def test_merging_joins_similar_neighbours_only():
    x, _ = planted([10, 10, 10])
    over = np.array([0, 5, 10, 15, 20, 25, 30])
    assert merge_adjacent(x, over, 0.9).tolist() == [0, 10, 20, 30]
    assert merge_adjacent(x, over, 1.01).tolist() == over.tolist()  # nothing reaches the threshold
    assert absorb_short(x, np.array([0, 10, 12, 20, 30]), 3).tolist() == [0, 10, 20, 30]  # 10-12 joins its block
    assert uniform_region(x, 100.0, SegmentParams(sec_per_syllable=0.1)).tolist() == [0, 10, 20, 30]


def test_segment_features_skips_silence_and_pools_each_segment():
    x, _ = planted([20, 30], dim=8, noise=0.1)
    silence = np.full((25, 8), 1e-3)
    raw = np.concatenate([silence, x[:20], silence, x[20:], silence])  # hf-style: activity is the L2 norm
    params = SegmentParams(**{**RAW.to_dict(), "merge_threshold": 0.9})
    assert speech_mask(raw, "hf", 100.0, params).sum() == 50
    segs, pooled = segment_features(raw, "hf", 100.0, params)
    assert segs.tolist() == [[25, 45], [70, 100]]
    np.testing.assert_allclose(pooled[1], raw[70:100].mean(0), rtol=1e-5)
    quiet, _ = segment_features(np.full((30, 8), 1e-3), "hf", 100.0, params)
    assert quiet.tolist()[0][0] == 0 and quiet[-1][1] == 30  # no speech: still tokens covering the utterance


def test_syllable_token_centres_stay_inside_their_segments():
    segs = np.array([[5, 20], [20, 30], [40, 55], [90, 100]])
    units, durations = syllable_tokens(segs, np.array([3, 3, 1, 2]), 110)
    assert units.tolist() == [3, 3, 1, 2]  # repeats are kept
    cuts = np.concatenate([[0], np.cumsum(durations)])
    assert cuts.tolist() == [0, 20, 39, 70, 110] and durations.sum() == 110
    centres = (cuts[:-1] + cuts[1:]) / 2
    assert np.all((segs[:, 0] <= centres) & (centres < segs[:, 1]))


def test_agglomerate_joins_nearby_centroids_weighted_by_counts():
    centroids = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.0, 10.2]], dtype=np.float32)
    merged = agglomerate(centroids, np.array([3, 1, 1, 1]), 2)
    merged = merged[np.argsort(merged[:, 0])]
    np.testing.assert_allclose(merged, [[0.025, 0.0], [10.0, 10.1]], atol=1e-5)


def test_boundary_matching_is_one_to_one_within_tolerance():
    assert match_boundaries(np.array([0.10, 0.11]), np.array([0.1]), 0.05) == 1
    assert match_boundaries(np.array([0.0, 0.3]), np.array([0.05, 0.36]), 0.05) == 1  # 0.06 is too far
    # greedy by distance: 0.2 takes 0.19 and 0.26 still reaches 0.3
    assert match_boundaries(np.array([0.2, 0.26]), np.array([0.19, 0.3]), 0.05) == 2


def test_boundary_scores_and_r_value_by_hand():
    s = boundary_scores(8, 10, 10)
    assert (s["precision"], s["recall"], s["f1"], s["os"]) == pytest.approx((0.8, 0.8, 0.8, 0.0))
    assert s["r_value"] == pytest.approx(1 - (0.2 + 0.2 / math.sqrt(2)) / 2)
    assert boundary_scores(10, 10, 10)["r_value"] == pytest.approx(1.0)
    over = boundary_scores(10, 40, 10)  # every reference hit, but 4x too many boundaries
    assert over["recall"] == 1.0 and over["f1"] == pytest.approx(0.4)
    r1, r2 = 3.0, -3.0 / math.sqrt(2)
    assert over["r_value"] == pytest.approx(1 - (abs(r1) + abs(r2)) / 2) and over["r_value"] < 0
    assert boundary_scores(0, 0, 5)["f1"] is None
    counts = BoundaryCounts(0.05)
    counts.add(np.array([0.0, 0.5]), np.array([0.0, 0.2, 0.5]))
    counts.add(np.array([0.1]), np.array([0.3]))
    assert (counts.hits, counts.num_pred, counts.num_ref) == (2, 3, 4)


def test_syllables_from_espeak_and_arpabet_phones():
    assert all(map(is_nucleus, ["'a", "@L", "3:", ",eI", "n-", "ah0", "er"]))
    assert not any(map(is_nucleus, ["k", "t#", "D", "?", "hh", "sil"]))
    words = [("capital", 0.0, 0.6), ("of", 0.8, 1.0)]
    phones = [("k", 0.0, 0.1), ("'a", 0.1, 0.2), ("p", 0.2, 0.3), ("I", 0.3, 0.4), ("t", 0.4, 0.5),
              ("@L", 0.5, 0.6), ("V", 0.8, 0.9), ("v", 0.9, 1.0)]
    assert syllable_spans(words, phones) == [("k'a", 0.0, 0.2), ("pI", 0.2, 0.4), ("t@L", 0.4, 0.6),
                                             ("Vv", 0.8, 1.0)]
    arpa = syllable_spans([("create", 0.0, 0.5)], [("k", 0.0, 0.1), ("r", 0.1, 0.2), ("iy0", 0.2, 0.3),
                                                   ("ey1", 0.3, 0.4), ("t", 0.4, 0.5)])
    assert arpa == [("kriy0", 0.0, 0.3), ("ey1t", 0.3, 0.5)]  # vowel hiatus: cut at the second nucleus
    assert span_boundaries(words).tolist() == [0.0, 0.6, 0.8, 1.0]


def test_normalized_edit_distance_and_same_text_pairs():
    assert normalized_edit_distance(list("kitten"), list("sitting")) == pytest.approx(3 / 7)
    assert normalized_edit_distance([1, 2, 3], [1, 2, 3]) == 0.0
    assert normalized_edit_distance([], []) == 0.0 and normalized_edit_distance([1], []) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(20):  # against the textbook O(nm) table
        a, b = rng.integers(0, 3, rng.integers(1, 9)), rng.integers(0, 3, rng.integers(1, 9))
        table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
        table[:, 0], table[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                substitute = table[i - 1, j - 1] + (a[i - 1] != b[j - 1])
                table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1, substitute)
        assert normalized_edit_distance(a, b) == pytest.approx(table[-1, -1] / max(len(a), len(b)))
    texts = ["The cat.", "the cat", "a dog", "the cat", None]
    assert same_text_pairs(texts, ["s1", "s2", "s1", "s1", "s2"], 10, 0) == [(0, 1), (1, 3)]
    inv = speaker_invariance([np.array([1, 2]), np.array([1, 2]), np.array([7, 8]), np.array([1, 2]), np.zeros(0)],
                             texts, ["s1", "s2", "s1", "s1", "s2"])
    assert inv["pairs"] == 2 and inv["same_text_ned"] == 0.0 and inv["different_text_ned"] == 1.0


def test_shards_keep_segments_and_refuse_a_mix(tmp_path):
    recs = [UnitRecord("a", [1, 1], [5, 7], [[2, 5], [5, 9]]), UnitRecord("b", [0], [3], [[0, 3]])]
    write_unit_shard(tmp_path / "s.npz", recs)
    back = list(read_unit_shard(tmp_path / "s.npz"))
    assert back[0].segments.tolist() == [[2, 5], [5, 9]] and back[1].segments.tolist() == [[0, 3]]
    with pytest.raises(ValueError, match="some records have segments"):
        write_unit_shard(tmp_path / "t.npz", [recs[0], UnitRecord("c", [1], [2])])
    with pytest.raises(ValueError, match="segments"):
        UnitRecord("d", [1, 2], [1, 1], [[0, 1]])


def test_frame_tokenizer_directories_of_before_still_load(tmp_path):
    """A directory written before syllable units existed: same JSON, same content hash, no segmentation key."""
    from koe.units.features import MFCC_PARAMS

    spec = {"features": {"backend": "mfcc", "frame_rate_hz": 100.0, "dim": 39, "source": None, "layer": None,
                         "sample_rate_hz": 16000, "params": dict(MFCC_PARAMS)},
            "num_units": 4, "dedup": True, "bpe": None, "fit": {"seed": 0}, "content_hash": "7c432f51b78a048e",
            "schema_version": 1}
    (tmp_path / "unit_tokenizer.json").write_text(json.dumps(spec))
    np.save(tmp_path / "centroids.npy", np.arange(4 * 39, dtype=np.float32).reshape(4, 39) / 10)
    tok = UnitTokenizer.load(tmp_path)  # raises if the hash of the old files changed
    assert tok.segment_params is None and "segmentation" not in tok.spec.to_dict()
    meta = {k: v for k, v in UnitsMeta("h", "d", 4, 100.0, "m", 1, 1).to_dict().items()}
    assert "segmentation" not in meta and UnitsMeta.from_dict(meta).segmentation is None


def test_fit_config_checks_syllable_options():
    with pytest.raises(ConfigError, match="reduce_to=50 needs a segmentation"):
        load_config(FitConfig, overrides=["manifest=m", "out_dir=o", "reduce_to=50"])
    with pytest.raises(ConfigError, match="segmentation"):
        load_config(FitConfig, overrides=["manifest=m", "out_dir=o", "segmentation=wavelet"])
    cfg = load_config(FitConfig, overrides=["manifest=m", "out_dir=o", "segmentation=greedy", "k=100",
                                            "reduce_to=50", "syllables.merge_threshold=0.7"])
    assert cfg.validate() == [] and cfg.syllables.merge_threshold == 0.7


PITCHES = {"low": 220.0, "mid": 440.0, "high": 880.0, "top": 1760.0}


@pytest.fixture(scope="module")
def tone_words(tmp_path_factory):
    """Utterances of 4-6 tones (0.25 s, adjacent pitches differ, 0.15 s pauses after some, 0.1 s of silence at
    either end); each tone is a word."""
    root = tmp_path_factory.mktemp("tone_words")
    rng = np.random.default_rng(3)
    sr, names = 16000, list(PITCHES)
    utts = []
    for i in range(10):
        seq = [names[int(rng.integers(4))]]
        while len(seq) < 4 + i % 3:
            seq.append(rng.choice([n for n in names if n != seq[-1]]))
        parts, words, t = [np.zeros(int(0.1 * sr))], [], 0.1
        for j, name in enumerate(seq):
            tone = 0.5 * np.sin(2 * np.pi * PITCHES[name] * np.arange(int(0.25 * sr)) / sr)
            parts.append(tone)
            words.append([name, round(t, 4), round(t + 0.25, 4)])
            t += 0.25
            if j % 2 and j < len(seq) - 1:
                parts.append(np.zeros(int(0.15 * sr)))
                t += 0.15
        parts.append(np.zeros(int(0.1 * sr)))
        wav = np.concatenate(parts) + 0.003 * rng.standard_normal(sum(map(len, parts)))
        sf.write(root / f"t{i}.wav", wav.astype(np.float32), sr)
        utts.append(Utterance(id=f"t{i}", audio_path=f"t{i}.wav", sample_rate_hz=sr, duration_s=len(wav) / sr,
                              speaker=f"s{i % 2}", text=" ".join(seq), words=words,
                              split="valid" if i == 0 else "train"))
    write_manifest(root / "manifest.jsonl", utts)
    write_text_items(root / "text.jsonl", [TextItem(id=f"x{i}", text=" ".join(rng.choice(names, 8)))
                                           for i in range(100)])
    return root


@pytest.mark.parametrize(("method", "extra"), [("mincut", []), ("greedy", ["k=6", "reduce_to=4"])])
def test_fit_encode_stats_and_data_build_on_tone_syllables(tone_words, tmp_path, method, extra):
    from koe.cli import run_command

    manifest = tone_words / "manifest.jsonl"
    tok, units = tmp_path / "tok", tmp_path / "units"
    assert run_command("units fit", [str(manifest), f"out_dir={tok}", "features=mfcc", f"segmentation={method}",
                                     "k=4", "split=null", "device=cpu", *extra]) == 0
    spec = json.loads((tok / "unit_tokenizer.json").read_text())
    assert spec["segmentation"]["method"] == method and spec["dedup"] is False and spec["num_units"] == 4
    assert run_command("units encode", [str(manifest), f"tokenizer={tok}", f"out_dir={units}", "device=cpu"]) == 0
    meta = json.loads((units / "meta.json").read_text())
    assert meta["segmentation"] == method and meta["dedup"] is False
    recs = {r.id: r for r in read_unit_shards(units)}
    tok_loaded = UnitTokenizer.load(tok)
    for r in recs.values():
        assert r.segments is not None and len(r.segments) == len(r.units)
        assert r.durations.sum() == tok_loaded.extractor.num_frames(sf.info(tone_words / f"{r.id}.wav").frames)
    assert run_command("units stats", [str(units), f"manifest={manifest}"]) == 0
    stats = json.loads((units / "stats.json").read_text())
    words = stats["boundaries"]["words"]
    assert words["f1"] > 0.8 and words["r_value"] > 0.7, words  # each tone found, pauses left out
    assert 2.0 < stats["token_rate_hz"] < 4.0  # 4-6 tones in 1.5-2.3 s
    inv = stats["speaker_invariance"]
    assert inv is None or inv["same_text_ned"] <= inv["different_text_ned"]
    args = [f"units_dir={units}", f"manifest={manifest}", f"text=[{tone_words / 'text.jsonl'}]",
            "text_tokenizer=train:300", f"out_dir={tmp_path / 'data'}", "max_seq_len=256"]
    assert run_command("data build", args) == 0
    summary = json.loads((tmp_path / "data" / "data_build_summary.json").read_text())
    assert summary["num_failures"] == 0 and summary["train_tokens_by_kind"]["interleaved"] > 0
    # the contract data build relies on: through cumulative durations each token lands on the word it was cut from
    utts = {u.id: u for u in read_manifest(manifest)}
    for r in recs.values():
        words = align_units(r.durations, utts[r.id].words, meta["frame_rate_hz"], "attach")
        owner = np.repeat(np.arange(len(words.words)), words.unit_end - words.unit_start)
        mids = r.segments.mean(1) / meta["frame_rate_hz"]
        truth = [next((w for w, (_, s, e) in enumerate(utts[r.id].words) if s <= m < e), -1) for m in mids]
        agree = np.mean(owner == np.array(truth))
        assert agree >= 0.8, (r.id, owner, truth)


def test_syllable_tokenizer_runs_on_hf_encoder_features(tone_words, tiny_hubert, tmp_path):
    """Any backend: a (random) HuBERT layer, 50 Hz, speech mask from the feature norm."""
    from koe.units.config import EncodeConfig
    from koe.units.encode import run_encode
    from koe.units.fit import run_fit

    manifest = tone_words / "manifest.jsonl"
    cfg = load_config(FitConfig, overrides=[f"manifest={manifest}", f"out_dir={tmp_path / 'tok'}",
                                            f"features=hf:{tiny_hubert}@2", "segmentation=mincut", "k=4",
                                            "split=null", "device=cpu"])
    assert run_fit(cfg).exit_code == 0
    assert run_encode(EncodeConfig(manifest=manifest, tokenizer=tmp_path / "tok", out_dir=tmp_path / "u",
                                   device="cpu")).exit_code == 0
    tok = UnitTokenizer.load(tmp_path / "tok")
    for r in read_unit_shards(tmp_path / "u"):
        assert tok.frame_rate_hz == 50.0 and len(r.units) >= 1 and r.segments is not None
        assert r.durations.sum() == tok.extractor.num_frames(sf.info(tone_words / f"{r.id}.wav").frames)
