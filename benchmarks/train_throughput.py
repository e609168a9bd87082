"""Training-step throughput: koe's step against a plain transformers loop, same model, same tokens, same process.

    python benchmarks/train_throughput.py                 # Qwen2.5-0.5B shape, packed seq 2048, bf16, on a GPU
    python benchmarks/train_throughput.py --small         # a tiny shape on CPU in a few seconds (a smoke test)

The model is a randomly initialised Qwen2Config with Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV
heads, MLP 4864, tied embeddings) and a vocabulary of 151,936 text ids + 500 units + 2 markers. Both loops train fp32
master weights under bf16 autocast with AdamW on the same packed rows:

- koe: koe.train.loss.forward_backward through accelerate, per-document position_ids (flash-attention 2 varlen
  when installed, else SDPA with transformers' block-causal mask), fused AdamW;
- plain: `model(input_ids, labels=input_ids)` with SDPA causal attention over the whole row, AdamW defaults.

Printed per loop: tokens/s, model TFLOP/s, MFU against --peak-tflops (PaLM-style 6N + attention FLOPs, see
koe.train.metrics; each loop is credited with the attention it actually computes) and peak GPU memory.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from koe.model.init import resolve_attn_implementation, round_up
from koe.train.config import OptimConfig
from koe.train.metrics import FlopCounter, segment_sq_sum
from koe.train.packing import pack_documents

QWEN_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                intermediate_size=4864, vocab_size=round_up(151_936 + 500 + 2, 64))
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, vocab_size=round_up(1000 + 500 + 2, 64))


def make_rows(n_rows: int, seq_len: int, vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random documents of 64..seq_len tokens, packed by koe into `n_rows` rows."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n_rows * seq_len:
        lengths.append(int(rng.integers(64, seq_len)))
    tokens = rng.integers(0, vocab, size=sum(lengths)).astype(np.uint32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    packed = pack_documents(tokens, np.zeros(len(tokens), np.uint8), offsets, seq_len, pad_id=0)
    return {k: torch.from_numpy(v[:n_rows].astype(np.int64)) for k, v in packed.items()}


def build_model(shape: dict, attn: str, seq_len: int) -> torch.nn.Module:
    torch.manual_seed(0)
    config = Qwen2Config(**shape, tie_word_embeddings=True, max_position_embeddings=max(seq_len, 128))
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=torch.float32)


def koe_loop(shape, rows, args, device) -> tuple[float, float, torch.nn.Module]:
    from accelerate import Accelerator

    from koe.train.loss import forward_backward
    from koe.train.optim import build_optimizer

    accelerator = Accelerator(mixed_precision=args.precision, cpu=device.type == "cpu")
    attn = resolve_attn_implementation(args.attn) if device.type == "cuda" else "sdpa"
    model = build_model(shape, attn, args.seq_len)
    optimizer, _ = build_optimizer(model, OptimConfig(lr=1e-4), fused=device.type == "cuda")
    flops = FlopCounter.from_model(model)
    if args.compile:
        model = torch.compile(model)
    model, optimizer = accelerator.prepare(model, optimizer)
    sq = segment_sq_sum(rows["position_ids"])

    def step():
        forward_backward(model, [rows], accelerator)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = _time(step, args, device)
    return seconds, flops.step_flops(rows["input_ids"].numel(), sq), model


def plain_loop(shape, rows, args, device) -> tuple[float, float, torch.nn.Module]:
    model = build_model(shape, "sdpa", args.seq_len).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    flops = FlopCounter.from_model(model)
    ids = rows["input_ids"].to(device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=args.precision == "bf16"):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = _time(step, args, device)
    return seconds, flops.step_flops(ids.numel(), ids.shape[0] * ids.shape[1] ** 2), model


def _time(step, args, device) -> float:
    for _ in range(args.warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / args.steps


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny shape on CPU, fp32")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="per-GPU peak (H100 SXM bf16 dense: 989)")
    p.add_argument("--compile", action="store_true", help="torch.compile koe's model")
    p.add_argument("--attn", default="auto", choices=["auto", "sdpa", "flex_attention", "flash_attention_2"],
                   help="koe's attention (auto: flash-attention 2 when installed, else SDPA)")
    p.add_argument("--skip-plain", action="store_true", help="time only koe's loop")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.small else "cpu")
    shape = QWEN_05B
    args.precision = "bf16"
    if args.small:
        shape, args.seq_len, args.micro_batch, args.steps, args.warmup, args.precision = SMALL, 256, 2, 3, 1, "no"
        torch.set_num_threads(1)
    elif device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    rows = make_rows(args.micro_batch, args.seq_len, shape["vocab_size"])
    tokens = rows["input_ids"].numel()
    print(f"device={device} shape={shape} seq_len={args.seq_len} micro_batch={args.micro_batch} "
          f"precision={args.precision} steps={args.steps} koe_attn={args.attn} compile={args.compile}")
    print(f"{'loop':<6} {'tokens/s':>10} {'TFLOP/s':>9} {'MFU':>7} {'peak GiB':>9}")
    loops = [("koe", koe_loop)] + ([] if args.skip_plain else [("plain", plain_loop)])
    for name, loop in loops:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds, step_flops, model = loop(shape, rows, args, device)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        tflops = step_flops / seconds / 1e12
        print(f"{name:<6} {tokens / seconds:>10.0f} {tflops:>9.2f} {tflops / args.peak_tflops:>7.1%} {peak:>9.2f}")
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
