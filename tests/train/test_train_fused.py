"""The fast training path computes what the plain path computes: chunked linear cross-entropy against
F.cross_entropy on full logits, varlen attention against each document run alone, and the LossModel against the
HF model's own logits, losses and gradients."""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, Qwen2Config

from koe.model.attention import cu_seqlens, register_varlen, varlen_kwargs
from koe.train.fused import linear_cross_entropy
from koe.train.loss import LossModel, modality_sums, token_losses
from koe.train.packing import IGNORE

CONFIG = Qwen2Config(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                     intermediate_size=64, tie_word_embeddings=True)
POSITIONS = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 0]])


def _model(attn: str, seed: int = 0):
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(copy.deepcopy(CONFIG), attn_implementation=attn, dtype=torch.float32)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, CONFIG.vocab_size, POSITIONS.shape, generator=torch.Generator().manual_seed(seed))
    labels = torch.where(POSITIONS == 0, IGNORE, ids)
    return ids, labels


def test_linear_cross_entropy_matches_full_logits_in_value_and_gradient():
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(23, 16, generator=g, requires_grad=True)
    weight = torch.randn(40, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 40, (23,), generator=g)
    targets[[0, 7, 22]] = IGNORE
    ref = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=IGNORE, reduction="none")
    ref_grads = torch.autograd.grad(ref.sum() * 0.3, (hidden, weight))
    loss_sum, losses = linear_cross_entropy(hidden, weight, targets, chunk=5)  # 5 chunks, the last one short
    grads = torch.autograd.grad(loss_sum * 0.3, (hidden, weight))
    torch.testing.assert_close(losses, ref.detach())
    assert losses[[0, 7, 22]].eq(0).all()
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_cu_seqlens_marks_document_and_row_starts():
    cu, max_len = cu_seqlens(POSITIONS)
    assert cu.tolist() == [0, 4, 7, 12, 19, 23, 24]
    assert max_len == 12
    cu, _ = cu_seqlens(torch.tensor([[3, 4, 0, 1], [5, 6, 7, 8]]))  # rows continuing a document still start anew
    assert cu.tolist() == [0, 2, 4, 8]


def test_varlen_attention_equals_each_document_alone():
    ref_model, model = _model("sdpa"), _model(register_varlen())
    ids, _ = _batch()
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=POSITIONS, use_cache=False, **varlen_kwargs(*cu_seqlens(POSITIONS)))
        for b in range(ids.shape[0]):
            starts = [*(POSITIONS[b] == 0).nonzero().flatten().tolist(), ids.shape[1]]
            for s, e in itertools.pairwise(starts):
                alone = ref_model(input_ids=ids[b:b + 1, s:e], use_cache=False).logits[0]
                torch.testing.assert_close(out.logits[b, s:e], alone, atol=1e-5, rtol=1e-5)


def test_loss_model_fused_and_plain_paths_match_the_hf_logits():
    """Same per-token losses and gradients from the chunked path, the plain path and model(...).logits."""
    ids, labels = _batch(seed=2)
    ref_model = _model("sdpa")
    logits = ref_model(input_ids=ids, position_ids=POSITIONS, use_cache=False).logits
    ref = token_losses(logits, labels)
    ref.sum().backward()
    ref_grads = {n: p.grad for n, p in ref_model.named_parameters()}
    for fused in (True, False):
        loss_model = LossModel(_model(register_varlen()), fused=fused)
        assert loss_model.fused == fused and loss_model.needs_boundaries
        loss_sum, losses = loss_model(ids, POSITIONS, labels, **varlen_kwargs(*cu_seqlens(POSITIONS)))
        loss_sum.backward()
        torch.testing.assert_close(losses, ref.detach(), atol=1e-5, rtol=1e-5)
        for n, p in loss_model.model.named_parameters():
            torch.testing.assert_close(p.grad, ref_grads[n], atol=1e-5, rtol=1e-4, msg=n)


def test_a_biased_head_falls_back_to_the_plain_path():
    model = _model("sdpa")
    model.lm_head = torch.nn.Linear(32, 96, bias=True)
    assert not LossModel(model, fused=True).fused


def test_modality_sums_count_each_target_once():
    losses = torch.tensor([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    labels = torch.tensor([[5, 5, IGNORE, 5], [5, 5, 5, 5]])
    modality = torch.tensor([[0, 1, 1, 2], [0, 0, 2, 1]])
    sums = modality_sums(losses, labels, modality)
    assert sums.tolist() == [[8.0, 1.0 + 32.0, 4.0 + 16.0], [1.0, 2.0, 2.0]]  # the ignored 2.0 is left out
