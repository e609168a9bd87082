"""Reruns of `koe data build`: the done key covers the unit shards, the manifest and the text corpora, not only the
config; a skipped rerun leaves the earlier summary as it was (issue 12, item 2)."""

from __future__ import annotations

import json

import numpy as np
from test_build import FRAME_RATE, VOCAB_WORDS, K, _utterance
from unit_tokenizers import make_unit_tokenizer

from koe.cli import run_command
from koe.corpus.manifest import write_manifest
from koe.corpus.text import TextItem, write_text_items
from koe.data.shards import load_data_meta
from koe.data.words import read_text_vocab
from koe.units.shards import UnitsMeta, write_unit_shard, write_units_meta


def _write_corpus(root, num_utts: int, num_texts: int) -> None:
    rng = np.random.default_rng(0)
    pairs = [_utterance(i, rng, "train") for i in range(num_utts)]
    write_manifest(root / "manifest.jsonl", [u for u, _ in pairs])
    write_unit_shard(root / "units" / "shard-00000.npz", [r for _, r in pairs])
    tok = make_unit_tokenizer(root / "tok", num_units=K)
    write_units_meta(root / "units", UnitsMeta(tokenizer_hash=tok.content_hash, tokenizer_dir=str(root / "tok"),
                                               num_units=K,
                                               frame_rate_hz=FRAME_RATE, manifest="manifest.jsonl", num_shards=1,
                                               num_utterances=num_utts))
    write_text_items(root / "text.jsonl", [TextItem(f"t{i}", " ".join(rng.choice(VOCAB_WORDS, size=8)))
                                           for i in range(num_texts)])


def test_rebuild_follows_every_input_and_a_skip_keeps_the_summary(tmp_path):
    root, out = tmp_path / "in", tmp_path / "data"
    _write_corpus(root, num_utts=10, num_texts=40)
    args = [f"units_dir={root / 'units'}", f"manifest={root / 'manifest.jsonl'}", f"text=[{root / 'text.jsonl'}]",
            "text_tokenizer=train:300", f"out_dir={out}", "text_valid_fraction=0"]
    assert run_command("data build", args) == 0
    summary = json.loads((out / "data_build_summary.json").read_text())
    assert summary["items_in"] == 10 + 40  # utterances and text items
    assert set(read_text_vocab(out)) == set(VOCAB_WORDS)  # the training words eval's OOV share is measured against

    assert run_command("data build", args) == 0  # nothing changed: skipped, and the summary is the first run's
    assert json.loads((out / "data_build_summary.json").read_text()) == summary

    _write_corpus(root, num_utts=11, num_texts=40)  # a corpus of 11 utterances instead of 10, same paths
    assert run_command("data build", args) == 0
    assert json.loads((out / "data_build_summary.json").read_text())["items_in"] == 11 + 40

    _write_corpus(root, num_utts=11, num_texts=80)  # only the text corpus changed
    assert run_command("data build", args) == 0
    assert json.loads((out / "data_build_summary.json").read_text())["items_in"] == 11 + 80
    assert load_data_meta(out).config["text"] == [str(root / "text.jsonl")]
