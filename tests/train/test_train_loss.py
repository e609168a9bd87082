"""The step loss is normalised by the target tokens of the whole step: accumulating k micro-batches gives the
gradient of one big batch, even when the micro-batches hold different numbers of targets."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from transformers import AutoModelForCausalLM, Qwen2Config

from koe.data.shards import load_data_meta
from koe.train.loss import LossModel, forward_backward, summarise, token_losses
from koe.train.packing import IGNORE, PackedRows


def _grads(model, micro_batches, accum: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    accelerator = Accelerator(gradient_accumulation_steps=accum, cpu=True)
    model.zero_grad(set_to_none=True)
    sums = forward_backward(LossModel(model), micro_batches, accelerator)
    return {n: p.grad.clone() for n, p in model.named_parameters()}, sums


def test_accumulation_equals_one_big_batch(token_data):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    rows = PackedRows(token_data, "train", max_seq_len=32, seed=0, pad_id=load_data_meta(token_data).vocab.pad_id)
    big = rows.batch(range(6))
    big["labels"][0, 5:] = IGNORE  # uneven target counts: a mean of micro-batch means would differ
    big["labels"][3, 20:] = IGNORE
    micro = [{k: v[i:i + 2] for k, v in big.items()} for i in (0, 2, 4)]
    g_big, s_big = _grads(model, [big], accum=1)
    g_acc, s_acc = _grads(model, micro, accum=3)
    for name, g in g_big.items():
        torch.testing.assert_close(g_acc[name], g, atol=1e-6, rtol=1e-5, msg=name)
    torch.testing.assert_close(s_acc, s_big)
    # the logged loss is the token mean of the big batch
    with torch.no_grad():
        logits = model(input_ids=big["input_ids"], position_ids=big["position_ids"], use_cache=False).logits
    mask = big["labels"][:, 1:] != IGNORE
    expected = token_losses(logits, big["labels"])[mask].mean()
    assert abs(summarise(s_acc)["loss"] - float(expected)) < 1e-5
