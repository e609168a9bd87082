"""Vocabulary extension, the units-only tokenizer and text tokenizer training."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import SpeechVocab, extend_tokenizer, units_only_tokenizer

TEXTS = ["the red dog runs fast", "a cat sees the old fox", "the fox runs to the river"] * 20


@pytest.fixture(scope="module")
def text_tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_text_tokenizer(TEXTS, 300, out)
    return out


def test_text_tokenizer_trains_and_reloads(text_tok_dir):
    tok = AutoTokenizer.from_pretrained(text_tok_dir)
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>"
    assert 259 < len(tok) <= 300
    ids = tok(" the red dog", add_special_tokens=False).input_ids
    assert len(ids) == 3  # frequent words became single merges
    assert tok.decode(ids) == " the red dog"
    assert tok.decode(tok("zebra Ω").input_ids) == "zebra Ω"  # byte level: nothing is unknown


def test_text_tokenizer_rejects_tiny_vocab(tmp_path):
    with pytest.raises(ValueError, match="at least 256"):
        train_text_tokenizer(TEXTS, 100, tmp_path)


def test_extend_round_trip_through_save_pretrained(text_tok_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(text_tok_dir)
    text_size = len(tok)
    vocab = extend_tokenizer(tok, num_units=10, num_bpe_units=3)
    assert vocab.text_vocab_size == vocab.unit_offset == text_size
    assert vocab.total_units == 13 and vocab.vocab_size == len(tok) == text_size + 15
    assert [vocab.unit_token_id(u) for u in range(13)] == tok.convert_tokens_to_ids(
        [f"<u{u}>" for u in range(10)] + [f"<ub{j}>" for j in range(3)])
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert SpeechVocab.from_tokenizer(again) == vocab
    assert SpeechVocab.from_dict(vocab.to_dict()) == vocab
    ids = again("<speech><u3><u9><ub2><text> the dog</s>", add_special_tokens=False).input_ids
    assert ids[:5] == [vocab.speech_marker_id, vocab.unit_token_id(3), vocab.unit_token_id(9),
                       vocab.unit_token_id(12), vocab.text_marker_id]
    assert ids[-1] == vocab.eos_id
    assert "<speech>" not in again.decode(ids, skip_special_tokens=True)


def test_extend_twice_is_refused(text_tok_dir):
    tok = AutoTokenizer.from_pretrained(text_tok_dir)
    extend_tokenizer(tok, 4)
    with pytest.raises(ValueError, match="already has unit tokens"):
        extend_tokenizer(tok, 4)


def test_plain_tokenizer_is_not_a_speech_vocab(text_tok_dir):
    with pytest.raises(ValueError, match="not a koe speech vocabulary"):
        SpeechVocab.from_tokenizer(AutoTokenizer.from_pretrained(text_tok_dir))


def test_units_only_tokenizer(tmp_path):
    units_only_tokenizer(6, num_bpe_units=2).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    vocab = SpeechVocab.from_tokenizer(tok)
    assert (vocab.unit_offset, vocab.num_units, vocab.num_bpe_units) == (0, 6, 2)
    assert len(tok) == vocab.vocab_size == 12
    assert tok("<speech><u5><ub1></s>").input_ids == [vocab.speech_marker_id, 5, 7, vocab.eos_id]
    with pytest.raises(Exception, match="UNK"):
        tok("hello")
