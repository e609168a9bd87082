"""AdamW over named parameter groups and the update after each backward, shared by every koe training loop.

    optimizer, frozen = build_adamw({"body": body.parameters(), "head": head.parameters()}, cfg.optim,
                                    frozen_steps={"body": 200})
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps, frozen)       # koe.training.schedule
    ...
    accelerator.backward(loss)
    grad_norm, lr = optimizer_step(accelerator, model, optimizer, scheduler, cfg.optim.grad_clip)

Matrices get weight decay, vectors (norms, biases) do not. `optimizer_step` is the one implementation of clip, step,
advance the schedule, clear the gradients: the LM, SSL, phone-classifier and vocoder loops all call it, so a change
to the update (or to what is logged about it) reaches every trainer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from koe.training.config import OptimConfig


def adamw(param_groups: list[dict], cfg: OptimConfig, fused: bool = False) -> torch.optim.AdamW:
    """torch's AdamW with the betas, eps and peak lr of `cfg` (each group carries its own weight decay)."""
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                             fused=fused or None)


def build_adamw(groups: dict[str, Iterable[torch.nn.Parameter]], cfg: OptimConfig,
                frozen_steps: dict[str, int] | None = None, fused: bool = False
                ) -> tuple[torch.optim.AdamW, list[int]]:
    """AdamW over the trainable parameters of each named group (matrices decay, vectors do not).

    Returns the optimiser and, per parameter group, how many steps it sits out (`frozen_steps[name]`, default 0),
    which is what koe.training.schedule.build_scheduler takes.
    """
    param_groups, frozen = [], []
    for name, params in groups.items():
        trainable = [p for p in params if p.requires_grad]
        for decay, ps in ((cfg.weight_decay, [p for p in trainable if p.ndim >= 2]),
                          (0.0, [p for p in trainable if p.ndim < 2])):
            if ps:
                param_groups.append({"params": ps, "weight_decay": decay, "name": name})
                frozen.append((frozen_steps or {}).get(name, 0))
    return adamw(param_groups, cfg, fused), frozen


def optimizer_step(accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, grad_clip: float) -> tuple[Any, float]:
    """Clip (when grad_clip > 0), step, advance the schedule, clear the gradients.

    Returns (the gradient norm before clipping, or None without clipping; the lr this step used, of the first
    parameter group).
    """
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip else None
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm, lr
