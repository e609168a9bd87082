"""Learning-rate schedules as multipliers of the peak lr, one per parameter group, for every koe training loop.

    factor = lr_factor(step, total_steps=1000, schedule="wsd", warmup_steps=10, decay_fraction=0.1, min_ratio=0.05)
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps=1000, frozen_steps=[0, 200, 200])

WSD (warmup-stable-decay): linear warmup, a long flat stage at the peak, then a linear decay to `min_ratio` over
the last `decay_fraction` of the steps; a run can be extended from any checkpoint of its stable stage. Cosine decays
from the end of warmup to `min_ratio` at the last step. A group can sit out the first `frozen_steps` steps (the LM's
frozen-text warm-up, the re-initialised layers of `koe ssl disentangle`): it gets factor 0, so AdamW's decoupled
weight decay cannot move it either, and then warms up again from the step it unfreezes, so a pretrained body is not
hit by the full peak lr at once.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

from koe.training.config import OptimConfig, warmup_steps


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int, decay_fraction: float,
              min_ratio: float) -> float:
    """Multiplier of the peak lr at optimiser step `step` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay_steps = round(decay_fraction * total_steps)
        decay_start = total_steps - decay_steps
        if decay_steps == 0 or step < decay_start:
            return 1.0
        progress = min((step - decay_start + 1) / decay_steps, 1.0)
        return 1.0 - (1 - min_ratio) * progress
    raise ValueError(f"unknown schedule {schedule!r}")


def group_factor(step: int, total_steps: int, cfg: OptimConfig, frozen_steps: int) -> float:
    """The factor of a group that is frozen for `frozen_steps` and then warms up again from that step."""
    if step < frozen_steps:
        return 0.0
    warm = warmup_steps(cfg, total_steps)
    base = lr_factor(step, total_steps, cfg.schedule, warm, cfg.decay_fraction, cfg.min_lr_ratio)
    if frozen_steps and warm:
        base *= min(1.0, (step - frozen_steps + 1) / warm)
    return base


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int,
                    frozen_steps: list[int]) -> LambdaLR:
    """One LambdaLR with a factor per parameter group; group i sits out its first `frozen_steps[i]` steps."""
    if len(frozen_steps) != len(optimizer.param_groups):
        raise ValueError(f"frozen_steps has {len(frozen_steps)} entries for {len(optimizer.param_groups)} groups")
    lambdas = [partial(group_factor, total_steps=total_steps, cfg=cfg, frozen_steps=f) for f in frozen_steps]
    return LambdaLR(optimizer, lambdas)
