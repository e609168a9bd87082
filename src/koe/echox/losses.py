"""EchoX stage-III losses, exactly as FIELD.md ("EchoX") states them.

    den = denoising_loss(adapter(H), text_embed(x_prime), mask)      # sum_t (1 - cos), response positions only
    w = dynamic_weight(l_unit, den)                                   # min(1, 0.2 * L_unit / L_den), no gradient
    l_t2c = l_unit + w * den
    total = total_loss(l_s2t, l_t2c)                                  # 0.2 L_S2T + 2 L_T2C when L_S2T < 1

The sum runs over an item's response text positions and the batch mean is taken over items (FIELD.md gives the
per-item sum; docs/echox.md records the batch mean).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenoisingAdapter(nn.Module):
    """Linear-ReLU-Dropout(0.1)-Linear: maps the LLM's hidden states into the text-embedding space."""

    def __init__(self, hidden_size: int, embed_size: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_size, embed_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def denoising_loss(mapped: torch.Tensor, target_embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_den = sum_t (1 - cos(adapter(h_t), Emb(x'_t))) over positions where mask is True, averaged over items.

    mapped, target_embeds: [batch, T, dim]; mask: [batch, T] bool.
    """
    cos = F.cosine_similarity(mapped, target_embeds, dim=-1)
    per_item = ((1.0 - cos) * mask.to(cos.dtype)).sum(-1)
    return per_item.mean()


def dynamic_weight(l_unit: torch.Tensor, l_den: torch.Tensor) -> torch.Tensor:
    """w = min(1, 0.2 * L_unit / L_den), detached so it scales L_den without steering either loss."""
    ratio = 0.2 * l_unit.detach() / l_den.detach().clamp_min(1e-8)
    return ratio.clamp(max=1.0)


def t2c_loss(l_unit: torch.Tensor, l_den: torch.Tensor | None) -> tuple[torch.Tensor, float]:
    """L_T2C = L_unit + w * L_den (L_unit alone without the denoising adapter); returns the loss and w."""
    if l_den is None:
        return l_unit, 0.0
    w = dynamic_weight(l_unit, l_den)
    return l_unit + w * l_den, float(w)


def total_loss(l_s2t: torch.Tensor, l_t2c: torch.Tensor) -> torch.Tensor:
    """0.2 * L_S2T + 2 * L_T2C while L_S2T < 1 (the text side is learnt: lean on echo), else L_S2T + L_T2C."""
    if float(l_s2t.detach()) < 1.0:
        return 0.2 * l_s2t + 2.0 * l_t2c
    return l_s2t + l_t2c
