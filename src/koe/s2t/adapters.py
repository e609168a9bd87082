"""Adapters from encoder frames into the LLM's embedding space, one class per entry of ADAPTERS.

    adapter = build_adapter("concat_transformer", encoder_dim=768, llm_dim=2048)
    embeds, lengths = adapter(frames, frame_lengths)      # half the frames: pairs are concatenated

`concat_transformer` is EchoX's stage-I adapter (FIELD.md): concatenate frame pairs, Linear, one Transformer layer,
LayerNorm. `mlp` is the plain two-layer MLP of SLAM-LLM/LLaVA-style projectors, for comparison. A Q-Former or any
other adapter is one more class with the same `(encoder_dim, llm_dim)` constructor and `forward(x, lengths)`.
"""

from __future__ import annotations

import torch
from torch import nn


def stack_pairs(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[batch, T, D] -> [batch, ceil(T/2), 2D]: each output frame is two neighbouring input frames side by side."""
    if x.shape[1] % 2:
        x = torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)
    return x.reshape(x.shape[0], x.shape[1] // 2, 2 * x.shape[2]), (lengths + 1) // 2


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """True where a frame is padding (the convention of nn.TransformerEncoderLayer's key_padding_mask)."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def _num_heads(dim: int, at_most: int = 8) -> int:
    return next(h for h in range(min(at_most, dim), 0, -1) if dim % h == 0)


class ConcatTransformerAdapter(nn.Module):
    """Frame pairs -> Linear -> one pre-norm Transformer layer -> LayerNorm (EchoX stage I)."""

    def __init__(self, encoder_dim: int, llm_dim: int, dropout: float = 0.1):
        super().__init__()
        self.proj = nn.Linear(2 * encoder_dim, llm_dim)
        self.layer = nn.TransformerEncoderLayer(llm_dim, _num_heads(llm_dim), 4 * llm_dim, dropout,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(llm_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = stack_pairs(x, lengths)
        h = self.layer(self.proj(x), src_key_padding_mask=padding_mask(lengths, x.shape[1]))
        return self.norm(h), lengths


class MLPAdapter(nn.Module):
    """Frame pairs -> Linear -> GELU -> Linear: no attention across frames."""

    def __init__(self, encoder_dim: int, llm_dim: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * encoder_dim, llm_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(llm_dim, llm_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = stack_pairs(x, lengths)
        return self.net(x), lengths


ADAPTERS: dict[str, type[nn.Module]] = {"concat_transformer": ConcatTransformerAdapter, "mlp": MLPAdapter}


def build_adapter(name: str, encoder_dim: int, llm_dim: int) -> nn.Module:
    if name not in ADAPTERS:
        raise ValueError(f"adapter={name!r}: known adapters are {sorted(ADAPTERS)}")
    return ADAPTERS[name](encoder_dim, llm_dim)
