"""Multi-GPU scaling of koe's training step (DDP and FSDP2 through accelerate), one process per GPU.

    torchrun --nproc_per_node N benchmarks/multi_gpu.py --label ddp --out rows.jsonl            # DDP
    accelerate launch --config_file src/koe/configs/accelerate/fsdp.yaml --num_processes N \\
        benchmarks/multi_gpu.py --label fsdp --out rows.jsonl                                   # FSDP2
    python benchmarks/multi_gpu.py --report rows.jsonl                                          # the table

Each process runs koe's default step (benchmarks/train_throughput.py `koe`: LossModel, varlen attention,
torch.compile, fused AdamW) on its own packed rows of the text+units Qwen2.5-0.5B shape, 8 x 2048 tokens per GPU
(weak scaling: the global batch grows with the GPUs, as with a fixed grad_accum_steps). Scaling efficiency =
tokens/s on N GPUs / (N x tokens/s on 1 GPU of the same label).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import SHAPES, koe_step, make_batches


def worker(args) -> None:
    from accelerate import PartialState

    state = PartialState()
    torch.set_float32_matmul_precision("high")
    shape = SHAPES[args.shape]
    args.precision, args.seq_len = "bf16", 2048
    batches = make_batches(4, args.micro_batch, args.seq_len, shape["vocab_size"], seed=state.process_index)
    t_build = time.perf_counter()
    step, _ = koe_step(shape, args, state.device, "auto", compile_mode="default", fused=False)
    for i in range(args.warmup):
        step(batches[i % len(batches)])
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    warmup_s = t0 - t_build
    for i in range(args.steps):
        step(batches[i % len(batches)])
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / args.steps
    tokens = args.micro_batch * args.seq_len * state.num_processes
    if state.is_main_process:
        row = {"label": args.label, "gpus": state.num_processes, "rows": args.micro_batch,
               "grad_reduce": args.grad_reduce, "tokens_per_s": tokens / seconds,
               "step_ms": seconds * 1e3, "warmup_s": warmup_s, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
               "device": torch.cuda.get_device_name()}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


def report(path: str) -> None:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    one = {r["label"]: r["tokens_per_s"] for r in rows if r["gpus"] == 1}
    print(f"{'label':<12} {'GPUs':>4} {'rows':>4} {'reduce':>6} {'tokens/s':>10} {'per GPU':>9} {'efficiency':>10} "
          f"{'step ms':>8} {'peak GiB':>8}")
    for r in rows:
        base = one.get(r["label"]) or one.get("ddp")
        eff = r["tokens_per_s"] / (r["gpus"] * base) if base else float("nan")
        print(f"{r['label']:<12} {r['gpus']:>4} {r.get('rows', 8):>4} {r.get('grad_reduce', 'fp32'):>6} "
              f"{r['tokens_per_s']:>10.0f} {r['tokens_per_s'] / r['gpus']:>9.0f} "
              f"{eff:>10.1%} {r['step_ms']:>8.1f} {r['peak_gib']:>8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", default="ddp")
    p.add_argument("--out", default="multi_gpu.jsonl")
    p.add_argument("--report", default="", help="print the table of a rows file and exit")
    p.add_argument("--shape", default="text+units")
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--grad-reduce", default="fp32", choices=["fp32", "bf16"],
                   help="DDP gradient all-reduce dtype (koe train's grad_reduce_dtype)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=4)
    args = p.parse_args()
    if args.report:
        report(args.report)
    else:
        worker(args)


if __name__ == "__main__":
    main()
