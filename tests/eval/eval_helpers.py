"""Tiny models and tokenizers for eval tests: a byte-level BPE text tokenizer extended with units and markers, a
2-layer random Qwen2, a units-only variant, a mel-feature unit tokenizer with random centroids, a StoryCloze CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import extend_tokenizer, units_only_tokenizer
from koe.units.features import FeatureSpec
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec

TEXTS = ["the red dog runs", "a cat sleeps on the mat", "who is the king of the hill", "paris is in france",
         "the old fox sees a river", "what colour is the sky", "blue", "green", "lawyer", "onion"] * 4


def tiny_model(out: Path, num_units: int = 16, units_only: bool = False, seed: int = 0) -> Path:
    """Save a random 2-layer Qwen2 and its extended tokenizer to `out`; return `out`."""
    if units_only:
        tok = units_only_tokenizer(num_units)
    else:
        tok = train_text_tokenizer(TEXTS, vocab_size=300)
        extend_tokenizer(tok, num_units)
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # a wider logit spread than the default init, so candidates rarely tie
        model.lm_head.weight.normal_(0, 0.5)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_unit_tokenizer(out: Path, num_units: int = 16, seed: int = 0) -> Path:
    spec = UnitTokenizerSpec(features=FeatureSpec(backend="mel", frame_rate_hz=100.0, dim=80), num_units=num_units)
    centroids = np.random.default_rng(seed).normal(-5, 3, size=(num_units, 80)).astype(np.float32)
    return UnitTokenizer(spec, centroids).save(out)


def write_stories(path: Path, n: int) -> Path:
    """A StoryCloze-format CSV of `n` stories; the right ending is 1, 2, 1, ..."""
    head = ("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
            "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n")
    rows = [f"s{i},Tom had a dog {i}.,It was brown.,He fed it.,It slept.,The dog was happy.,The sky fell.,1"
            for i in range(n)]
    path.write_text(head + "\n".join(rows) + "\n")
    return path
