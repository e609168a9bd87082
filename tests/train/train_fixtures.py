"""Helpers for the training tests: tiny token shards and a tiny "pretrained" text LM, built without downloads.

The data mimics what `koe data build` writes: a word-level text tokenizer extended with 24 units and the markers,
text documents from a small grammar, speech documents where every word is spoken as a fixed unit sequence, and
interleaved documents that switch between the two with markers. The structure is learnable, so loss must fall.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

from koe.data.shards import (
    INTERLEAVED,
    MARKER,
    SPEECH,
    SPEECH_ONLY,
    TEXT,
    TEXT_ONLY,
    DataMeta,
    TokenShardWriter,
    write_data_meta,
)
from koe.data.vocab import extend_tokenizer

WORDS = ["the", "a", "cat", "dog", "bird", "sees", "likes", "chases", "big", "small", "red", "blue", "."]
NUM_UNITS = 24


def text_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<unk>", "</s>", "<pad>"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(specials + WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>", pad_token="<pad>")


def sentence(rng: np.random.Generator) -> list[str]:
    adj = ["big", "small", "red", "blue"]
    noun = ["cat", "dog", "bird"]
    def np_() -> list[str]:
        out = [str(rng.choice(["the", "a"]))]
        if rng.random() < 0.5:
            out.append(str(rng.choice(adj)))
        return [*out, str(rng.choice(noun))]
    return [*np_(), str(rng.choice(["sees", "likes", "chases"])), *np_(), "."]


def make_token_data(root: Path, num_docs: int = 120, seed: int = 0, shard_tokens: int = 1500) -> Path:
    """Write meta.json, tokenizer/ and train/valid shards under root; returns root."""
    rng = np.random.default_rng(seed)
    tok = text_tokenizer()
    vocab = extend_tokenizer(tok, num_units=NUM_UNITS)
    tok.save_pretrained(root / "tokenizer")
    word_units = {w: rng.integers(0, NUM_UNITS, size=int(rng.integers(2, 5))) for w in WORDS}
    word_ids = {w: tok.convert_tokens_to_ids(w) for w in WORDS}

    def document(kind: int) -> tuple[list[int], list[int]]:
        ids, mod = [], []
        words = [w for _ in range(int(rng.integers(1, 4))) for w in sentence(rng)]
        speech = kind == SPEECH_ONLY
        if kind != TEXT_ONLY:
            ids.append(vocab.speech_marker_id if speech else vocab.text_marker_id)
            mod.append(MARKER)
        for i, w in enumerate(words):
            if kind == INTERLEAVED and i % 5 == 0 and i:
                speech = not speech
                ids.append(vocab.speech_marker_id if speech else vocab.text_marker_id)
                mod.append(MARKER)
            if speech:
                units = [vocab.unit_token_id(int(u)) for u in word_units[w]]
                ids += units
                mod += [SPEECH] * len(units)
            else:
                ids.append(word_ids[w])
                mod.append(TEXT)
        return [*ids, vocab.eos_id], [*mod, MARKER]

    splits = {}
    for split, n in (("train", num_docs), ("valid", max(8, num_docs // 10))):
        with TokenShardWriter(root, split, eos_id=vocab.eos_id, shard_tokens=shard_tokens) as w:
            for i in range(n):
                kind = (TEXT_ONLY, SPEECH_ONLY, INTERLEAVED)[i % 3]
                w.add(*document(kind), kind)
        splits[split] = w.stats
    write_data_meta(root, DataMeta(vocab=vocab, splits=splits, seed=seed))
    return root


def make_pretrained(path: Path, vocab_size: int, tie: bool = True, arch: str = "llama") -> Path:
    """A tiny random text LM saved as a plain HF directory: what a hub id resolves to."""
    torch.manual_seed(1)
    kwargs = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                  tie_word_embeddings=tie)
    if arch == "llama":
        from transformers import LlamaConfig

        config = LlamaConfig(**kwargs)
    else:
        config = Qwen2Config(**kwargs)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path


def tiny_overrides(data: Path, out: Path, **extra) -> list[str]:
    """key=value overrides for a fast CPU run of a ~50k-parameter scratch model."""
    base = {"data_dir": str(data), "out_dir": str(out), "max_seq_len": 64, "micro_batch_size": 4,
            "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 4, "model.num_kv_heads": 2,
            "model.intermediate_size": 64, "model.pad_vocab_multiple": 8, "tensorboard": False, "log_every": 1,
            "optim.warmup_steps": 2, "eval_batches": 2}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
