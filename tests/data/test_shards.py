"""Token shard round trip: writer, iterator, random access and meta.json."""

from __future__ import annotations

import numpy as np
import pytest

from koe.data.shards import (
    INTERLEAVED,
    MARKER,
    SPEECH,
    SPEECH_ONLY,
    TEXT,
    TEXT_ONLY,
    DataMeta,
    TokenDataset,
    TokenShardWriter,
    load_data_meta,
    read_token_shards,
    write_data_meta,
)
from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError

VOCAB = SpeechVocab(text_vocab_size=100, unit_offset=100, num_units=50, speech_marker_id=150, text_marker_id=151,
                    eos_id=0, pad_id=1)


def _docs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        length = int(rng.integers(2, 40))
        tokens = rng.integers(2, 152, size=length).astype(np.uint32)
        tokens[-1] = VOCAB.eos_id
        modality = rng.integers(0, 3, size=length).astype(np.uint8)
        yield tokens, modality, (TEXT_ONLY, SPEECH_ONLY, INTERLEAVED)[i % 3]


def test_round_trip_over_several_shards(tmp_path):
    docs = list(_docs(50))
    with TokenShardWriter(tmp_path, "train", eos_id=VOCAB.eos_id, shard_tokens=100) as w:
        for d in docs:
            w.add(*d)
    assert w.stats.num_shards == len(list((tmp_path / "train").glob("shard-*.npz"))) > 3
    read = list(read_token_shards(tmp_path, "train"))
    assert len(read) == 50
    for (tokens, modality, kind), doc in zip(docs, read, strict=True):
        assert doc.tokens.dtype == np.uint32 and doc.modality.dtype == np.uint8
        np.testing.assert_array_equal(doc.tokens, tokens)
        np.testing.assert_array_equal(doc.modality, modality)
        assert doc.kind == kind
    ds = TokenDataset(tmp_path, "train", cache_shards=2)
    assert len(ds) == 50
    for i in (0, 17, 49, -1):
        np.testing.assert_array_equal(ds[i].tokens, docs[i][0])
    with pytest.raises(IndexError):
        ds[50]
    stats = w.stats
    assert stats.num_tokens == sum(len(d[0]) for d in docs)
    assert stats.documents_by_kind == {"text": 17, "speech": 17, "interleaved": 16, "paired": 0}
    all_mod = np.concatenate([d[1] for d in docs])
    assert stats.tokens_by_modality == {"text": int((all_mod == TEXT).sum()), "speech": int((all_mod == SPEECH).sum()),
                                        "marker": int((all_mod == MARKER).sum())}


def test_writer_refuses_documents_without_eos(tmp_path):
    w = TokenShardWriter(tmp_path, "train", eos_id=0)
    with pytest.raises(ValueError, match="eos"):
        w.add([5, 6], [0, 0], TEXT_ONLY)
    with pytest.raises(ValueError, match="modality"):
        w.add([5, 0], [0], TEXT_ONLY)


def test_meta_round_trip(tmp_path):
    with TokenShardWriter(tmp_path, "valid", eos_id=0) as w:
        for d in _docs(5):
            w.add(*d)
    meta = DataMeta(vocab=VOCAB, splits={"valid": w.stats}, seed=7, unit_tokenizer_hash="abc", config={"k": 1})
    write_data_meta(tmp_path, meta)
    loaded = load_data_meta(tmp_path)
    assert loaded.vocab == VOCAB and loaded.seed == 7 and loaded.unit_tokenizer_hash == "abc"
    assert loaded.splits["valid"].to_dict() == w.stats.to_dict()


def test_missing_split_and_meta_are_input_errors(tmp_path):
    with pytest.raises(KoeInputError, match="no token shards"):
        list(read_token_shards(tmp_path, "train"))
    with pytest.raises(KoeInputError, match="meta not found"):
        load_data_meta(tmp_path)
