"""Modality-constrained decoding: a span of text may only produce text tokens, a span of speech only units.

    mask = modality_mask(vocab, "speech", size)    # bool [vocab_size]: units + eos
    ids = generate_span(model, prompt_ids, mask, vocab, sampling, max_new_tokens=200)
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from koe.data.vocab import SpeechVocab

Modality = Literal["text", "speech"]


def modality_mask(vocab: SpeechVocab, modality: Modality, size: int) -> torch.Tensor:
    """Tokens a span of `modality` may emit: its own tokens and eos (never markers or the other modality)."""
    mask = torch.zeros(size, dtype=torch.bool)
    if modality == "speech":
        mask[vocab.unit_offset: vocab.unit_offset + vocab.total_units] = True
    else:
        if vocab.text_vocab_size == 0:
            raise ValueError("this model has a units-only vocabulary: it cannot produce text")
        mask[: vocab.text_vocab_size] = True
        mask[[vocab.pad_id]] = False
    mask[vocab.eos_id] = True
    return mask


class AllowedTokens(LogitsProcessor):
    def __init__(self, mask: torch.Tensor):
        self.mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = self.mask.to(scores.device)[: scores.shape[-1]]
        return scores.masked_fill(~mask, float("-inf"))


@dataclasses.dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95


def generate_span(model, prompt_ids: list[int], mask: torch.Tensor, vocab: SpeechVocab, sampling: Sampling,
                  max_new_tokens: int) -> list[int]:
    """New tokens after `prompt_ids`, drawn from `mask` only; stops at eos (which is not returned)."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    greedy = sampling.temperature == 0
    out = model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
        do_sample=not greedy, temperature=None if greedy else sampling.temperature,
        top_k=None if greedy or sampling.top_k == 0 else sampling.top_k,
        top_p=None if greedy else sampling.top_p, logits_processor=LogitsProcessorList([AllowedTokens(mask)]),
        eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id,
    )
    new = out[0, input_ids.shape[1]:].tolist()
    return new[: new.index(vocab.eos_id)] if vocab.eos_id in new else new
