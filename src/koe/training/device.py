"""The Accelerator of every koe training loop: CPU, one GPU, or DDP/FSDP/DeepSpeed under `accelerate launch`.

    accelerator = make_accelerator("auto", "auto")      # bf16 autocast on a bf16 GPU, fp32 on the CPU
    accelerator = make_accelerator("cuda:1", "fp32")     # one chosen GPU

`koe train` builds its own Accelerator (gradient accumulation, DDP kwargs) from `cpu_only()` and
`mixed_precision()`; the SSL, phone-classifier and vocoder loops take `make_accelerator`. On the CPU every loop is
the plain torch loop it would be without accelerate (no autocast, `accelerator.backward` is `loss.backward`).
"""

from __future__ import annotations

import os

import torch


def cpu_only() -> bool:
    """Without CUDA, accelerate must be told `cpu=True` or it ignores torchrun's WORLD_SIZE and every process trains
    alone; but `cpu=True` also switches DeepSpeed off, and DeepSpeed runs on CPU by itself (its CPU accelerator)."""
    return not torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() != "true"


def mixed_precision(precision: str, cpu: bool = False) -> str:
    """accelerate's mixed_precision for koe's `precision` option: auto = bf16 on a bf16-capable GPU, else fp32."""
    if precision == "auto":
        return "bf16" if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return "bf16" if precision == "bf16" else "no"


def allow_precision(mixed: str) -> None:
    """Let this process build an Accelerator of mixed precision `mixed` even if an earlier loop used another.

    accelerate keeps one AcceleratorState per process and refuses a second Accelerator of another mixed precision
    ("AcceleratorState has already been initialized"); `koe run` chains loops of different precisions in one process
    (the phone classifier and vocoder in fp32, the LM and the s2t/echox loops in bf16 on a GPU), so a single process
    drops the finished loop's state. A distributed run (WORLD_SIZE > 1) is one loop per process and keeps its own.
    """
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and int(os.environ.get("WORLD_SIZE", "1")) == 1 and state.get("_mixed_precision") != mixed:
        AcceleratorState._reset_state()


def make_accelerator(device: str, precision: str):
    """An Accelerator on the CPU or the GPU(s) (`cuda:N` picks one GPU of a single process); TF32 matmuls on CUDA."""
    from accelerate import Accelerator

    cpu = device == "cpu" or not torch.cuda.is_available()
    if not cpu and device.startswith("cuda:"):
        torch.cuda.set_device(torch.device(device))
    mixed = mixed_precision(precision, cpu)
    allow_precision(mixed)
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed)
    if accelerator.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    return accelerator
