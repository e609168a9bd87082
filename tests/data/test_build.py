"""`koe data build` end to end on hand-made unit shards, manifest and text: files, kinds, mixture, gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer
from unit_tokenizers import make_unit_tokenizer

from koe.cli import run_command
from koe.config import load_config
from koe.corpus.manifest import Utterance, write_manifest
from koe.corpus.text import TextItem, write_text_items
from koe.data.build import run_build
from koe.data.config import BuildConfig
from koe.data.shards import MARKER, SPEECH, TEXT, TokenDataset, load_data_meta, read_token_shards
from koe.data.vocab import SpeechVocab
from koe.units.shards import UnitRecord, UnitsMeta, write_unit_shard, write_units_meta

K = 20
FRAME_RATE = 50.0
VOCAB_WORDS = ["the", "red", "dog", "runs", "to", "a", "small", "old", "fox", "and", "sees", "big", "river", "cat"]


def _utterance(i: int, rng: np.random.Generator, split: str, aligned: bool = True):
    words = [str(w) for w in rng.choice(VOCAB_WORDS, size=int(rng.integers(4, 14)))]
    spans, t = [], 0.1
    for w in words:
        d = float(rng.uniform(0.15, 0.4))
        spans.append([w, round(t, 3), round(t + d, 3)])
        t += d + 0.05
    frames = int((t + 0.1) * FRAME_RATE)
    durations = []
    while sum(durations) < frames:
        durations.append(int(rng.integers(1, 4)))
    units = rng.integers(0, K, size=len(durations))
    utt = Utterance(id=f"utt{i:03d}", audio_path=f"wav/{i}.wav", sample_rate_hz=16000, duration_s=t + 0.1,
                    speaker=f"spk{i % 3}", text=" ".join(words), words=spans if aligned else None, split=split)
    return utt, UnitRecord(utt.id, units, durations)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    utts, recs = [], []
    for i in range(60):
        split = "valid" if i % 10 == 0 else ("test" if i == 7 else "train")
        utt, rec = _utterance(i, rng, split, aligned=(i != 5))
        utts.append(utt)
        recs.append(rec)
    write_manifest(root / "manifest.jsonl", utts)
    write_unit_shard(root / "units" / "shard-00000.npz", recs[:35])
    write_unit_shard(root / "units" / "shard-00001.npz", recs[35:])
    tok = make_unit_tokenizer(root / "tok", num_units=K)
    write_units_meta(root / "units", UnitsMeta(tokenizer_hash=tok.content_hash, tokenizer_dir=str(root / "tok"),
                                               num_units=K, frame_rate_hz=FRAME_RATE, manifest="manifest.jsonl",
                                               num_shards=2, num_utterances=60))
    items = [TextItem(id=f"t{i}", text=" ".join(rng.choice(VOCAB_WORDS, size=int(rng.integers(5, 30)))))
             for i in range(300)]
    write_text_items(root / "text.jsonl", items)
    return root, utts, recs


def _cfg(root, out, **kw) -> BuildConfig:
    args = {"units_dir": str(root / "units"), "manifest": str(root / "manifest.jsonl"),
            "text": [str(root / "text.jsonl")], "text_tokenizer": "train:300", "out_dir": str(out),
            "max_seq_len": 512, **kw}
    return load_config(BuildConfig, overrides=[f"{k}={json.dumps(v)}" for k, v in args.items()])


def test_cli_build_writes_documented_files(inputs, tmp_path):
    root, _utts, _recs = inputs
    out = tmp_path / "data"
    args = [f"units_dir={root / 'units'}", f"manifest={root / 'manifest.jsonl'}", f"text=[{root / 'text.jsonl'}]",
            "text_tokenizer=train:300", f"out_dir={out}", "num_epochs_variants=2"]
    assert run_command("data build", args) == 0
    for name in ("meta.json", "config.yaml", "data_build_summary.json", "data_build_failures.jsonl",
                 "token_stats.png", "tokenizer/tokenizer.json", "train/shard-00000.npz", "valid/shard-00000.npz",
                 "speech_vocab.json", "unit_tokenizer/unit_tokenizer.json"):
        assert (out / name).exists(), name
    meta = load_data_meta(out)
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    assert SpeechVocab.from_tokenizer(tok) == meta.vocab
    recorded = json.loads((root / "units" / "meta.json").read_text())["tokenizer_hash"]
    assert meta.vocab.num_units == K and meta.unit_tokenizer_hash == recorded
    summary = json.loads((out / "data_build_summary.json").read_text())
    assert summary["utterances_unaligned"] == 1 and summary["utterances_test_excluded"] == 1
    # interleaved is the scarcest kind for its weight, so all 52 aligned train utterances appear, drawn twice
    docs = list(read_token_shards(out, "train"))
    assert sum(d.kind == 2 for d in docs) == 52 * 2
    assert summary["train_mixture"]["repeated_documents"] == {"text": 0, "interleaved": 0, "speech": 0}
    stats = meta.splits["train"]
    assert stats.num_documents == len(docs) == len(TokenDataset(out, "train"))
    assert stats.num_tokens == sum(len(d.tokens) for d in docs)
    # a rerun of the same config and inputs is skipped, leaving the summary as it was
    assert run_command("data build", args) == 0
    assert json.loads((out / "data_build_summary.json").read_text()) == summary


def test_documents_are_well_formed(inputs, tmp_path):
    root, _, _ = inputs
    run_build(_cfg(root, tmp_path / "d"))
    vocab = load_data_meta(tmp_path / "d").vocab
    tok = AutoTokenizer.from_pretrained(tmp_path / "d" / "tokenizer")
    for split in ("train", "valid"):
        for doc in read_token_shards(tmp_path / "d", split):
            t, m = doc.tokens.astype(np.int64), doc.modality
            assert t[-1] == vocab.eos_id and m[0] == MARKER and len(t) <= 512
            is_unit = (t >= vocab.unit_offset) & (t < vocab.unit_offset + K)
            assert np.array_equal(is_unit, m == SPEECH)
            markers = np.isin(t, [vocab.speech_marker_id, vocab.text_marker_id])
            assert np.array_equal(markers | (np.arange(len(t)) == len(t) - 1), m == MARKER)
            expected_kind = {frozenset({TEXT}): 0, frozenset({SPEECH}): 1}.get(frozenset(m[m != MARKER]), 2)
            assert doc.kind == expected_kind or doc.kind == 2  # an interleaving may draw no speech word
            if doc.kind == 0:
                assert tok.decode(t[1:-1]).startswith(" ")


def test_interleaved_words_match_the_manifest(inputs, tmp_path):
    """Every interleaved train document re-reads as its utterance: text words plus speech units, in order."""
    root, utts, recs = inputs
    run_build(_cfg(root, tmp_path / "d", mixture={"text": 0, "speech": 0, "interleaved": 1},
                   num_epochs_variants=3))
    vocab = load_data_meta(tmp_path / "d").vocab
    tok = AutoTokenizer.from_pretrained(tmp_path / "d" / "tokenizer")
    by_units = {tuple(r.units.tolist()): u for u, r in zip(utts, recs, strict=True)}
    docs = list(read_token_shards(tmp_path / "d", "train"))
    assert len(docs) == 52 * 3  # 60 - 6 valid - 1 test - 1 unaligned
    speech_words = total_words = 0
    for doc in docs:
        t, m = doc.tokens.astype(np.int64), doc.modality
        units = tuple((t[m == SPEECH] - vocab.unit_offset).tolist())
        text = tok.decode(t[m == TEXT])
        # find the utterance whose words contain this text and whose units contain these units
        candidates = [u for key, u in by_units.items() if _is_subsequence(units, key)]
        match = [u for u in candidates if set(text.split()) <= set(u.text.split())]
        assert match
        words = match[0].text.split()
        text_words = len(text.split())
        total_words += len(words)
        speech_words += len(words) - text_words
    assert abs(speech_words / total_words - 0.3) < 0.05


def test_paired_documents_are_an_utterance_then_its_transcript(inputs, tmp_path):
    root, utts, recs = inputs
    run_build(_cfg(root, tmp_path / "d", mixture={"text": 0, "speech": 0, "interleaved": 0, "paired": 1}))
    vocab = load_data_meta(tmp_path / "d").vocab
    tok = AutoTokenizer.from_pretrained(tmp_path / "d" / "tokenizer")
    by_id = {u.id: (u, r) for u, r in zip(utts, recs, strict=True)}
    docs = list(read_token_shards(tmp_path / "d", "train"))
    assert len(docs) == 53 and all(d.kind == 3 for d in docs)  # the unaligned one too: pairs need no word times
    expected = {tuple(r.units.tolist()): u.text for u, r in by_id.values() if u.split == "train"}
    for doc in docs:
        t, m = doc.tokens.astype(np.int64), doc.modality
        assert t[0] == vocab.speech_marker_id and m[-1] == MARKER
        switch = int(np.flatnonzero(t == vocab.text_marker_id)[0])
        assert (m[1:switch] == SPEECH).all() and (m[switch + 1:-1] == TEXT).all()
        assert tok.decode(t[switch + 1:-1]) == " " + expected[tuple((t[1:switch] - vocab.unit_offset).tolist())]
    summary = json.loads((tmp_path / "d" / "data_build_summary.json").read_text())
    assert summary["paired_without_words"] == 0 and summary["train_tokens_by_kind"]["paired"] == summary["train_tokens"]


def _is_subsequence(part: tuple, whole: tuple) -> bool:
    it = iter(whole)
    return all(x in it for x in part)


def test_mixture_realises_token_weights(inputs, tmp_path):
    root, _, _ = inputs
    weights = {"text": 0.2, "interleaved": 0.5, "speech": 0.3}
    report = run_build(_cfg(root, tmp_path / "d", mixture={**weights, "budget_tokens": 20000}))
    realised = report.extra["train_realised_weights"]
    for kind, w in weights.items():
        assert abs(realised[kind] - w) < 0.03, (kind, realised)
    assert abs(report.extra["train_tokens"] - 20000) < 600
    meta = load_data_meta(tmp_path / "d")
    by_kind = {k: sum(v.values()) for k, v in meta.splits["train"].tokens_by_kind.items()}
    assert by_kind == report.extra["train_tokens_by_kind"]


def test_downsample_uses_the_scarcest_kind_whole(inputs, tmp_path):
    root, _, _ = inputs
    report = run_build(_cfg(root, tmp_path / "d", mixture={"text": 0.5, "interleaved": 0, "speech": 0.5}))
    mix = report.extra["train_mixture"]
    assert mix["repeated_documents"] == {"text": 0, "speech": 0}
    realised = report.extra["train_realised_weights"]
    assert abs(realised["text"] - 0.5) < 0.05


def test_unaligned_utterances_can_fail_and_units_can_be_dropped(inputs, tmp_path):
    root, _, _ = inputs
    report = run_build(_cfg(root, tmp_path / "d", no_alignment="fail", unaligned_units="drop"))
    assert report.exit_code == 1
    assert [f.item for f in report.failures] == ["utt005"]
    assert report.extra["units_dropped"] > 0
    assert report.extra["units_dropped"] == (report.extra["units_leading"] + report.extra["units_inner"]
                                             + report.extra["units_trailing"])


def test_units_only_vocabulary(inputs, tmp_path):
    root, utts, _ = inputs
    run_build(_cfg(root, tmp_path / "d", text_tokenizer="units", text=[],
                   mixture={"text": 0, "interleaved": 0, "speech": 1}, speech_utts_per_doc=4))
    meta = load_data_meta(tmp_path / "d")
    assert meta.vocab.unit_offset == 0 and meta.vocab.vocab_size == K + 4
    docs = list(read_token_shards(tmp_path / "d", "train"))
    per_speaker = [sum(1 for u in utts if u.split == "train" and u.speaker == f"spk{s}") for s in range(3)]
    assert all(d.kind == 1 for d in docs) and len(docs) == sum(-(-n // 4) for n in per_speaker)
    assert max(int(d.tokens.max()) for d in docs) < meta.vocab.vocab_size


def test_config_validation_names_the_options():
    from koe.config import ConfigError

    with pytest.raises(ConfigError, match=r"mixture\.text"):
        load_config(BuildConfig, overrides=["units_dir=u", "manifest=m"])
    with pytest.raises(ConfigError, match="text_tokenizer=units"):
        load_config(BuildConfig, overrides=["units_dir=u", "manifest=m", "text=[a]", "text_tokenizer=units"])


def test_the_unit_tokenizer_is_the_one_the_shards_record(inputs, tmp_path):
    """No guessing: a missing recorded tokenizer, or one with another hash, is refused naming the hashes."""
    from koe.stage import KoeInputError

    root, _, _ = inputs
    meta = json.loads((root / "units" / "meta.json").read_text())
    units = tmp_path / "units"
    units.mkdir()
    for name in ("shard-00000.npz", "shard-00001.npz"):
        (units / name).write_bytes((root / "units" / name).read_bytes())
    (units / "meta.json").write_text(json.dumps({**meta, "tokenizer_dir": str(tmp_path / "gone")}))
    with pytest.raises(KoeInputError, match=f"no-unit-tokenizer.*{meta['tokenizer_hash']}.*unit_tokenizer=DIR"):
        run_build(_cfg(root, tmp_path / "d1", units_dir=str(units)))
    other = make_unit_tokenizer(tmp_path / "other", num_units=K, seed=1)
    with pytest.raises(KoeInputError, match=f"{meta['tokenizer_hash']}.*{other.content_hash}"):
        run_build(_cfg(root, tmp_path / "d2", units_dir=str(units), unit_tokenizer=str(tmp_path / "other")))
    report = run_build(_cfg(root, tmp_path / "d3", units_dir=str(units), unit_tokenizer=str(root / "tok")))
    assert report.exit_code == 0
    vocab = json.loads((tmp_path / "d3" / "speech_vocab.json").read_text())
    assert vocab["unit_tokenizer_hash"] == meta["tokenizer_hash"]
    assert (tmp_path / "d3" / "unit_tokenizer" / "unit_tokenizer.json").exists()
