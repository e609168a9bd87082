"""Text corpora: plain text, text items, `datasets` folders; the train/valid split; a tokenizer on real text."""

from __future__ import annotations

import pytest

from koe.corpus.text import TextItem, write_text_items
from koe.data.sources import read_text_corpus, text_split
from koe.data.text_tokenizer import train_text_tokenizer
from koe.stage import KoeInputError


def test_text_items_and_plain_text(tmp_path):
    write_text_items(tmp_path / "a.jsonl", [TextItem("x", "hello there", split="valid")])
    (tmp_path / "b.txt").write_text("one line\n\nanother line\n")
    assert [(i.id, i.split) for i in read_text_corpus(str(tmp_path / "a.jsonl"))] == [("x", "valid")]
    assert [i.text for i in read_text_corpus(str(tmp_path / "b.txt"))] == ["one line", "another line"]
    with pytest.raises(KoeInputError, match="not found"):
        read_text_corpus(str(tmp_path / "missing.txt"))


def test_datasets_folder_keeps_its_splits(tmp_path):
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["a b", "", "c d"]}),
                               "validation": datasets.Dataset.from_dict({"body": ["e f"]})})
    dd.save_to_disk(str(tmp_path / "ds"))
    items = read_text_corpus(str(tmp_path / "ds"), text_column="body")
    assert [(i.text, i.split) for i in items] == [("a b", "train"), ("c d", "train"), ("e f", "valid")]
    with pytest.raises(KoeInputError, match="no column 'text'"):
        read_text_corpus(str(tmp_path / "ds"))


def test_text_split_is_seeded_and_near_the_fraction():
    items = [TextItem(f"id{i}", "x") for i in range(4000)]
    valid = [text_split(i, 0.1, seed=3) == "valid" for i in items]
    assert abs(sum(valid) / len(items) - 0.1) < 0.02
    assert valid == [text_split(i, 0.1, seed=3) == "valid" for i in items]
    assert valid != [text_split(i, 0.1, seed=4) == "valid" for i in items]
    assert text_split(TextItem("t", "x", split="test"), 0.1, 0) is None


def test_tokenizer_on_real_text_compresses(shared_data, tmp_path):
    lines = [i.text for i in read_text_corpus(str(shared_data / "pd_text/misc/tinyshakespeare.txt"))]
    tok = train_text_tokenizer(lines[:4000], 1000, tmp_path)
    held_out = " ".join(lines[20000:20500])
    ids = tok(held_out, add_special_tokens=False).input_ids
    assert tok.decode(ids) == held_out
    assert len(held_out.encode()) / len(ids) > 2.0  # bytes per token (2.3 measured; 1.0 = no merges)


def test_tinyspeech_text_source_includes_text_only_facts():
    from koe.data.sources import read_text_corpus

    items = read_text_corpus("tinyspeech:1200:3")
    assert len(items) == 1200
    assert any(i.meta.get("fact_split") == "text_only" for i in items)
