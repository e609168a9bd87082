"""HiFi-GAN's discriminators and losses (Kong et al., 2020; weights in FIELD.md).

    d = Discriminators(periods=[2, 3, 5, 7, 11], scales=3, width=32)     # V1 sizes at width=32
    real_out, real_feats = d(real_wav)                                     # one score map + feature list per sub-D
    loss_d = discriminator_loss(real_out, d(fake_wav.detach())[0])

The multi-period discriminator folds the waveform into [T / p, p] and runs 2-D convolutions over the first axis, so
each sub-discriminator sees every p-th sample (periodic structure: pitch); the multi-scale one runs 1-D grouped
convolutions on the raw, 2x and 4x average-pooled waveform (spectral envelope, longer context). Losses are least
squares GAN plus L1 feature matching over every intermediate map.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from koe.vocoder.hifigan import LRELU


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: int):
        super().__init__()
        self.period = period
        channels = [1, width, 4 * width, 16 * width, 32 * width]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
                                   for a, b in itertools.pairwise(channels))
        self.convs.append(weight_norm(nn.Conv2d(channels[-1], channels[-1], (5, 1), padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = wav[:, None]
        pad = (-x.shape[-1]) % self.period
        x = nn.functional.pad(x, (0, pad), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)
        feats = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), LRELU)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class ScaleDiscriminator(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        w = 4 * width  # 128 at V1's width 32
        layers = [(1, w, 15, 1, 1), (w, w, 41, 2, 4), (w, 2 * w, 41, 2, 16), (2 * w, 4 * w, 41, 4, 16),
                  (4 * w, 8 * w, 41, 4, 16), (8 * w, 8 * w, 41, 1, 16), (8 * w, 8 * w, 5, 1, 1)]
        self.convs = nn.ModuleList(weight_norm(nn.Conv1d(a, b, k, s, groups=min(g, a), padding=k // 2))
                                   for a, b, k, s, g in layers)
        self.post = weight_norm(nn.Conv1d(8 * w, 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, feats = wav[:, None], []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), LRELU)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class Discriminators(nn.Module):
    """All sub-discriminators: one per period, then one per scale (raw, /2, /4 ...)."""

    def __init__(self, periods: list[int], scales: int, width: int):
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(width) for _ in range(scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        outs, feats = [], []
        for d in self.periods:
            o, f = d(wav)
            outs.append(o)
            feats.append(f)
        x = wav
        for i, d in enumerate(self.scales):
            if i:
                x = self.pool(x[:, None]).squeeze(1)
            o, f = d(x)
            outs.append(o)
            feats.append(f)
        return outs, feats


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: real scores pushed to 1, fake to 0, summed over sub-discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for r, f in zip(real, fake, strict=True))


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f in fake)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminators' feature maps on real (fixed) and generated audio."""
    return sum(torch.mean(torch.abs(r.detach() - f)) for rs, fs in zip(real, fake, strict=True)
               for r, f in zip(rs, fs, strict=True))
