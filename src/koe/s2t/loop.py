"""The training loop of `koe s2t train`, `koe echox t2c` and `koe echox echo`, on koe.training.

    accelerator = make_accelerator(cfg.device, cfg.precision)       # koe.training.device: CPU, or a GPU with bf16
    model.to(accelerator.device)                                    # before anything runs the model (pseudo labels)
    result = fit(accelerator, cfg, model, step_fn, out_dir, "s2t align", panels={"loss": ["loss", "ce", "ctc"]})
    result.model                                                    # the trained module, unwrapped

`step_fn(step, module)` draws the batch of `step` (a pure function of the seed and the step, so a resumed run sees
the batches an uninterrupted one would have) and returns `(loss, parts)` from the prepared module's forward, which
accelerate runs under bf16 autocast on a bf16 GPU. Everything else is koe.training's: AdamW over the trainable
parameters (`build_adamw`), the lr schedule (`build_scheduler`), clipping and the update (`optimizer_step`),
metrics.jsonl + loss curve (`MetricsLogger`) and checkpoints with `save_every` / `resume_from=auto`
(`koe.training.checkpoint`). The three stages differ only in their model and step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from koe.config import at_least
from koe.stage import progress
from koe.training.config import OptimConfig

StepFn = Callable[[int, torch.nn.Module], tuple[torch.Tensor, dict[str, Any]]]


def default_optim(lr: float = 1e-3) -> OptimConfig:
    """What these loops did before koe.training: AdamW(0.9, 0.999) without weight decay, linear warm-up over the
    first 10% of the steps, then a constant lr; gradients clipped at norm 1."""
    return OptimConfig(lr=lr, beta2=0.999, weight_decay=0.0, schedule="constant", warmup_steps=0.1, grad_clip=1.0)


@dataclasses.dataclass
class LoopConfig:
    """Options every s2t/echox training stage shares (its own config subclasses this one)."""

    optim: OptimConfig = dataclasses.field(default_factory=default_optim)
    steps: int = dataclasses.field(default=200, metadata={"help": "optimiser steps"})
    device: str = dataclasses.field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda:N"})
    precision: str = dataclasses.field(default="auto", metadata={
        "help": "auto (bf16 autocast on a bf16 GPU, fp32 on the CPU), bf16 or fp32"})
    log_every: int = dataclasses.field(default=20, metadata={"help": "steps between metric lines"})
    save_every: int = dataclasses.field(default=0, metadata={"help": "checkpoint every N steps (0 = none)"})
    keep_checkpoints: int = dataclasses.field(default=2, metadata={"help": "newest checkpoints kept"})
    resume_from: str | None = dataclasses.field(default=None, metadata={
        "help": "checkpoint dir or 'auto' (newest in out_dir/checkpoints)"})
    tensorboard: bool = dataclasses.field(default=False, metadata={"help": "write TensorBoard events to out_dir/tb"})
    torch_threads: int = dataclasses.field(default=1, metadata={
        "help": "torch CPU threads (1: these small models ran 300x faster than with 2 on a loaded 2-core machine)"})

    def loop_problems(self) -> list[str]:
        problems = self.optim.problems()
        problems += at_least(self, ("steps", "log_every", "torch_threads"), 1)
        problems += at_least(self, ("save_every", "keep_checkpoints"), 0)
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision={self.precision!r} must be auto, bf16 or fp32")
        return problems


@dataclasses.dataclass
class FitResult:
    model: torch.nn.Module
    first: dict[str, Any] | None
    last: dict[str, Any] | None
    steps: int
    train_time_s: float
    resumed_from: str | None


def fit(accelerator, cfg: LoopConfig, model: torch.nn.Module, step_fn: StepFn, out_dir: Path, desc: str,
        panels: dict[str, list[str]] | None = None) -> FitResult:
    """Train `model` for cfg.steps optimiser steps of `step_fn`; resumable; returns the unwrapped model."""
    from koe.training.checkpoint import check_resume_step, load_checkpoint, resolve_resume, save_checkpoint
    from koe.training.logger import MetricsLogger
    from koe.training.optim import build_adamw, optimizer_step
    from koe.training.schedule import build_scheduler

    # ---------------------------------------------------------------- setup
    optimizer, frozen = build_adamw({"all": model.parameters()}, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.steps, frozen)
    module, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    main = accelerator.is_main_process
    start, time_before = 0, 0.0
    resume = resolve_resume(cfg.resume_from, out_dir)
    if resume is not None:
        state = load_checkpoint(accelerator, resume)
        check_resume_step(state["step"], cfg.steps, resume)
        start, time_before = state["step"], state.get("train_time_s", 0.0)
        print(f"[{desc}] resumed from {resume} at step {start}")
    log = MetricsLogger(out_dir, cfg.tensorboard, enabled=main, resume_step=start,
                        panels=panels or {"loss": ["loss"]})

    # ---------------------------------------------------------------- loop
    t0, first, last, done = time.perf_counter(), None, None, start
    for step in progress(range(start, cfg.steps), desc=desc):
        loss, parts = step_fn(step, module)
        accelerator.backward(loss)
        grad_norm, lr = optimizer_step(accelerator, module, optimizer, scheduler, cfg.optim.grad_clip)
        done = step + 1
        last = {"step": done, "loss": round(float(loss.detach()), 4),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in parts.items()},
                "lr": lr, "grad_norm": None if grad_norm is None else round(float(grad_norm), 4)}
        first = first or last
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.write(done, {k: v for k, v in last.items() if k != "step"})
        if cfg.save_every and done % cfg.save_every == 0:
            save_checkpoint(accelerator, out_dir, done,
                            {"step": done, "train_time_s": time_before + time.perf_counter() - t0},
                            cfg.keep_checkpoints)

    # ---------------------------------------------------------------- cleanup
    log.close()
    train_time = time_before + time.perf_counter() - t0
    unwrapped = accelerator.unwrap_model(module)
    return FitResult(unwrapped, first, last, done, round(train_time, 2), str(resume) if resume else None)


def step_rng(seed: int, step: int):
    """The random.Random of one step: batches are a function of (seed, step), so resuming replays them exactly."""
    import random

    return random.Random(seed * 1_000_003 + step)
