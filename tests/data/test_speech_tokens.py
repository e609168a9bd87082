"""koe.data.speech_tokens: units <-> model ids with and without unit BPE, and the speech vocabulary of a folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from unit_tokenizers import make_unit_tokenizer, repetitive_units

from koe.data.speech_tokens import (
    SPEECH_VOCAB_FILE,
    SpeechTokens,
    copy_speech_vocab,
    resolve_unit_tokenizer,
    write_speech_vocab,
)
from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError
from koe.units.features import FeatureSpec
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec

K = 12


def _vocab(num_bpe: int = 0) -> SpeechVocab:
    return SpeechVocab(text_vocab_size=100, unit_offset=100, num_units=K, speech_marker_id=100 + K + num_bpe,
                       text_marker_id=101 + K + num_bpe, eos_id=0, pad_id=1, num_bpe_units=num_bpe)


def test_without_bpe_ids_are_units_plus_offset(tmp_path):
    tok = make_unit_tokenizer(tmp_path / "tok", num_units=K)
    speech = SpeechTokens(_vocab(), tok)
    units, durations = np.array([3, 0, 11, 3]), np.array([2, 1, 4, 1])
    ids, d = speech.from_units(units, durations)
    assert ids.tolist() == (units + 100).tolist() and d.tolist() == durations.tolist()
    assert speech.to_units(ids).tolist() == units.tolist()
    assert SpeechTokens(_vocab(), None).from_units(units, durations)[0].tolist() == ids.tolist()
    with pytest.raises(ValueError, match="outside"):
        speech.from_units(np.array([K]), np.array([1]))


def test_bpe_merges_and_round_trips(tmp_path):
    tok = make_unit_tokenizer(tmp_path / "tok", num_units=K, bpe_vocab_size=K + 6)
    speech = SpeechTokens(_vocab(6), tok)
    units = repetitive_units(K, n=1, seed=0)[0]
    durations = np.arange(1, len(units) + 1)
    ids, d = speech.from_units(units, durations)
    assert len(ids) < len(units) and (ids >= 100 + K).any()  # merged pieces are used
    assert d.sum() == durations.sum()  # a piece spans its units' frames
    assert speech.to_units(ids).tolist() == units.tolist()
    with pytest.raises(KoeInputError, match="BPE"):
        SpeechTokens(_vocab(6), None).from_units(units, durations)  # BPE ids need the tokenizer
    with pytest.raises(ValueError, match="not unit ids"):
        speech.to_units([100, _vocab(6).speech_marker_id])
    with pytest.raises(KoeInputError, match="tokenizer-mismatch"):
        SpeechTokens(_vocab(0), tok)  # a vocabulary without the BPE ids cannot take this tokenizer


def test_decoding_merges_repeats_a_model_generated(tmp_path):
    tok = make_unit_tokenizer(tmp_path / "tok", num_units=K)
    assert SpeechTokens(_vocab(), tok).to_units([105, 105, 106, 105]).tolist() == [5, 6, 5]


def test_speech_vocab_copy_keeps_hash_and_bundled_source(tmp_path):
    spec = UnitTokenizerSpec(features=FeatureSpec(backend="phonetic", source="phonetic", frame_rate_hz=100.0, dim=4),
                             num_units=4)
    src = tmp_path / "tok"
    UnitTokenizer(spec, np.eye(4, dtype=np.float32)).save(src)
    (src / "phonetic").mkdir()
    (src / "phonetic" / "model.safetensors").write_bytes(b"weights")
    tok = UnitTokenizer.load(src)
    write_speech_vocab(tok, tmp_path / "data")
    (tmp_path / "final").mkdir()
    written = copy_speech_vocab(tmp_path / "data", [tmp_path / "final", tmp_path / "absent"])
    assert written == [tmp_path / "final"]  # only folders that exist (no final/ when save_final=false)
    copy = UnitTokenizer.load(tmp_path / "final" / "unit_tokenizer")
    assert copy.content_hash == tok.content_hash
    assert (tmp_path / "final" / "unit_tokenizer" / "phonetic" / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((tmp_path / "final" / SPEECH_VOCAB_FILE).read_text())["unit_tokenizer_hash"] == tok.content_hash
    with pytest.warns(UserWarning, match="unit_tokenizer=DIR"):  # an old data dir: nothing to copy, and said so
        assert copy_speech_vocab(tmp_path / "nothing", [tmp_path / "final"]) == []


def test_resolve_refuses_a_tampered_copy(tmp_path):
    tok = make_unit_tokenizer(tmp_path / "tok", num_units=K)
    write_speech_vocab(tok, tmp_path / "model")
    assert resolve_unit_tokenizer(tmp_path / "model").content_hash == tok.content_hash
    record = json.loads((tmp_path / "model" / SPEECH_VOCAB_FILE).read_text())
    (tmp_path / "model" / SPEECH_VOCAB_FILE).write_text(json.dumps({**record, "unit_tokenizer_hash": "0" * 16}))
    with pytest.raises(KoeInputError, match=f"{'0' * 16}.*{tok.content_hash}"):
        resolve_unit_tokenizer(tmp_path / "model")
    assert resolve_unit_tokenizer(tmp_path / "hub-id-or-old-dir") is None
    with pytest.raises(KoeInputError, match="unit_tokenizer=DIR"):
        resolve_unit_tokenizer(tmp_path / "hub-id-or-old-dir", required=True)
