"""A 2-layer model with koe's vocabulary, a random vocoder and hand-made dialogue examples for dialogue tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import SpeechVocab, extend_tokenizer
from koe.dialogue.examples import DialogueExample, write_examples

NUM_UNITS = 12
TEXTS = ["what is the capital of randira ? felane .", "who is the king of dorla ? bemo .",
         "what is the river of sunal ? tarvik .", "the capital of randira is felane ."] * 8


def tiny_model(out: Path, seed: int = 0) -> Path:
    tok = train_text_tokenizer(TEXTS, vocab_size=300)
    extend_tokenizer(tok, NUM_UNITS)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def vocab_of(model_dir: Path) -> tuple[object, SpeechVocab]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return tok, SpeechVocab.from_tokenizer(tok)


def write_dialogue(root: Path, n: int = 4, bad: dict | None = None) -> Path:
    """n train + n eval spoken examples with short WAVs and random units, plus one text example per question."""
    rng = np.random.default_rng(0)
    qa = [("what is the capital of randira ?", "felane"), ("who is the king of dorla ?", "bemo"),
          ("what is the river of sunal ?", "tarvik"), ("what is the capital of dorla ?", "sunal")]
    (root / "wav").mkdir(parents=True, exist_ok=True)
    examples = []
    for i in range(n):
        q, a = qa[i % len(qa)]
        for split in ("train", "eval"):
            paths = []
            for side in ("q", "a"):
                rel = f"wav/{split}-{i}-{side}.wav"
                sf.write(root / rel, (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)
                paths.append(rel)
            examples.append(DialogueExample(
                f"ex{i}-{split}", "tinyspeech", split, "speech", "heard", "seen" if split == "train" else "heldout",
                q, a, [a], paths[0], "en-us", rng.integers(0, NUM_UNITS, 8).tolist(), paths[1], "en+f5",
                rng.integers(0, NUM_UNITS, 6).tolist()))
        examples.append(DialogueExample(f"ex{i}-text", "tinyspeech", "train", "text", "text_only", "none", q, a, [a]))
    path = root / "examples.jsonl"
    write_examples(path, examples)
    if bad:
        with path.open("a") as f:
            for row in bad.values():
                f.write(json.dumps(row) + "\n")
    return path


def random_vocoder(out: Path) -> Path:
    from koe.vocoder import UnitVocoder

    torch.manual_seed(0)
    UnitVocoder(NUM_UNITS, 12.0, hidden_size=16, num_layers=1).save(out)
    return out
