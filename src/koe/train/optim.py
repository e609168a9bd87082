"""The LM's AdamW parameter groups and the frozen-text warm-up's gradient mask.

    optimizer, frozen_steps = build_optimizer(model, cfg.optim, fused=torch.cuda.is_available())
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps, frozen_steps)       # koe.training.schedule
    freeze = TextRowFreeze(embedding_weights(model), first_new=32000, steps=200)   # hooks on the row gradients
    ...
    freeze.update(step)        # removes the hooks once the warm-up is over

Groups: embedding matrices (no weight decay), other matrices (decay), vectors such as norms and biases (no decay).
Embeddings get no decay so that rows a step does not touch, in particular the old text rows during the warm-up,
stay exactly as they were. The warm-up cannot freeze rows with `requires_grad` (the embedding is one matrix), so it
zeroes the old rows' gradient in a hook; the rest of the body sits the warm-up out with a learning-rate factor of 0
(koe.training.schedule), which also keeps AdamW's decoupled weight decay off it.
"""

from __future__ import annotations

import torch

from koe.train.config import OptimConfig
from koe.training.optim import adamw


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig, fused: bool) -> tuple[torch.optim.AdamW, list[int]]:
    """AdamW over the trainable parameters; returns it and, per group, the steps it sits out (the frozen-text
    warm-up freezes every group but the embeddings)."""
    emb_ids = {id(model.get_input_embeddings().weight)}
    out = model.get_output_embeddings()
    if out is not None:
        emb_ids.add(id(out.weight))
    groups: dict[str, list[torch.nn.Parameter]] = {"embeddings": [], "decay": [], "no_decay": []}
    seen = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in emb_ids or "trainable_tokens" in name:
            groups["embeddings"].append(p)
        elif p.ndim >= 2:
            groups["decay"].append(p)
        else:
            groups["no_decay"].append(p)
    decay = {"embeddings": 0.0, "decay": cfg.weight_decay, "no_decay": 0.0}
    param_groups = [{"params": ps, "weight_decay": decay[k], "name": k} for k, ps in groups.items() if ps]
    frozen = [cfg.frozen_text_steps if g["name"] != "embeddings" else 0 for g in param_groups]
    return adamw(param_groups, cfg, fused), frozen


class TextRowFreeze:
    """Zero the gradient of token rows below `first_new` for the first `steps` optimiser steps."""

    def __init__(self, weights: list[torch.Tensor], first_new: int, steps: int):
        self.first_new = first_new
        self.steps = steps
        self._handles = [w.register_hook(self._mask) for w in weights] if steps > 0 and first_new > 0 else []

    def _mask(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[: self.first_new] = 0
        return grad

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def update(self, step: int) -> None:
        """Call before each step; from step `steps` on, the hooks are removed and every row learns."""
        if self._handles and step >= self.steps:
            for h in self._handles:
                h.remove()
            self._handles = []
