"""Learning-rate schedules and the frozen-text warm-up, as multipliers of the peak lr per parameter group.

    factor = lr_factor(step, total_steps=1000, schedule="wsd", warmup_steps=10, decay_fraction=0.1, min_ratio=0.05)

WSD (warmup-stable-decay): linear warmup, a long flat stage at the peak, then a linear decay to `min_ratio` over
the last `decay_fraction` of the steps; a run can be extended from any checkpoint of its stable stage. Cosine decays
from the end of warmup to `min_ratio` at the last step. During the frozen-text warm-up only the embedding group
learns; the other groups get factor 0 (so AdamW's decoupled weight decay cannot move them either) and then warm up
again from the step they unfreeze, so the pretrained body is not hit by the full peak lr at once.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

from koe.train.config import OptimConfig


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
    base = lr_factor(step, total_steps, cfg.schedule, cfg.warmup_steps, cfg.decay_fraction, cfg.min_lr_ratio)
    if frozen_steps and cfg.warmup_steps:
        base *= min(1.0, (step - frozen_steps + 1) / cfg.warmup_steps)
    return base


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int,
                    frozen_groups: list[bool]) -> LambdaLR:
    """One LambdaLR with a factor per group; groups flagged in `frozen_groups` sit out the frozen-text warm-up."""
    lambdas = [partial(group_factor, total_steps=total_steps, cfg=cfg, frozen_steps=cfg.frozen_text_steps if f else 0)
               for f in frozen_groups]
    return LambdaLR(optimizer, lambdas)
