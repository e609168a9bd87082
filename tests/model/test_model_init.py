"""Model init: a pretrained text LM (given by path, as a hub id would be) gets rows for the unit tokens initialised
from the text rows' mean, keeps every old weight, and saves as a plain HF directory that loads without koe."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from koe.data.vocab import SpeechVocab, extend_tokenizer, units_only_tokenizer
from koe.model.config import ModelConfig
from koe.model.init import init_model, save_model

WORDS = ["<unk>", "</s>", "<pad>", "hello", "world", "cat", "dog", "."]


def _tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>", pad_token="<pad>")


def _pretrained(path, arch: str, tie: bool):
    torch.manual_seed(0)
    kwargs = dict(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, tie_word_embeddings=tie)
    config = Qwen2Config(**kwargs) if arch == "qwen2" else LlamaConfig(**kwargs)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize(("arch", "tie"), [("llama", True), ("llama", False)])
def test_extend_pretrained_and_round_trip(tmp_path, arch, tie):
    base = _pretrained(tmp_path / "base", arch, tie)
    tok = _tokenizer()
    vocab = extend_tokenizer(tok, num_units=10)
    model, first_new = init_model(ModelConfig(name_or_path=str(tmp_path / "base"), pad_vocab_multiple=8), tok, vocab,
                                  max_seq_len=64, seed=0)
    assert first_new == len(WORDS) == vocab.text_vocab_size
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows >= vocab.vocab_size and rows % 8 == 0
    matrices = [(model.get_input_embeddings().weight, base.get_input_embeddings().weight)]
    if not tie:
        matrices.append((model.get_output_embeddings().weight, base.get_output_embeddings().weight))
        assert model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    for new, old in matrices:
        torch.testing.assert_close(new[:first_new], old)  # text rows untouched
        mean, std = old.mean(0), old.std(0)
        added = new[first_new:]
        assert torch.all((added - mean).abs() <= 0.1 * std * 6 + 1e-6)  # mean + 0.1 std noise
        assert added.std(0).mean() > 0  # but not all identical
    for (n, p), (_, q) in zip(model.model.layers.named_parameters(), base.model.layers.named_parameters(),
                              strict=True):
        torch.testing.assert_close(p, q, msg=n)

    out = save_model(model, tok, tmp_path / "final")
    config = json.loads((out / "config.json").read_text())
    assert "auto_map" not in config and config["vocab_size"] == rows  # no custom code: plain transformers loads it
    loaded = AutoModelForCausalLM.from_pretrained(out)
    loaded_tok = AutoTokenizer.from_pretrained(out)
    assert SpeechVocab.from_tokenizer(loaded_tok) == vocab
    ids = loaded_tok("hello <u3> <u9> world", return_tensors="pt").input_ids
    assert ids[0].tolist() == [3, vocab.unit_token_id(3), vocab.unit_token_id(9), 4]
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_qwen2_directory_with_a_custom_tokenizer_warns(tmp_path):
    """transformers 5 reloads any qwen2 directory with Qwen2Tokenizer; save_model must say so, not stay silent."""
    _pretrained(tmp_path / "base", "qwen2", True)
    tok = _tokenizer()
    vocab = extend_tokenizer(tok, num_units=4)
    model, _ = init_model(ModelConfig(name_or_path=str(tmp_path / "base")), tok, vocab, max_seq_len=64)
    with pytest.warns(UserWarning, match="encodes differently"):
        save_model(model, tok, tmp_path / "final")


def test_scratch_model_and_units_only_vocab():
    tok = units_only_tokenizer(num_units=20)
    vocab = SpeechVocab.from_tokenizer(tok)
    cfg = ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                      pad_vocab_multiple=16)
    model, first_new = init_model(cfg, tok, vocab, max_seq_len=128, seed=0)
    assert first_new == 0 and model.config.model_type == "llama" and model.config.vocab_size == 32
    assert model.config.num_hidden_layers == 2 and model.config.eos_token_id == vocab.eos_id
    again, _ = init_model(cfg, tok, vocab, max_seq_len=128, seed=0)
    torch.testing.assert_close(again.get_input_embeddings().weight, model.get_input_embeddings().weight)
