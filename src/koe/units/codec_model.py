"""koe's own small codec: log-mel -> conv encoder -> residual VQ (EMA codebooks) -> conv decoder -> log-mel -> audio.

    codec = CodecTokenizer.load("runs/codec")          # a folder written by `koe units train-codec`
    codes = codec.encode(wav16k)                        # int64 [levels, frames] at 50 Hz
    wav = codec.decode(codes)                           # float32 16 kHz audio (Griffin-Lim of the decoded mel)

The same CodecTokenizer API as EnCodec/DAC/Mimi: the folder is HF-like (config.json with model_type "koe_codec",
model.safetensors) and this module's `KoeCodec` answers `encode(x).audio_codes` / `decode(codes).audio_values` as
transformers' codecs do. It is a *mel* codec: encoder input and decoder output are 80-bin log-mel frames (100 Hz),
the latent runs at 100 / `stride` Hz, and the waveform comes from fast Griffin-Lim (koe.audio.mel), so the
phase is not coded; on CPU budgets that trains in minutes where a waveform decoder with discriminators does not.

The quantiser (`EmaResidualVQ`) is SoundStream/EnCodec's: per level the nearest codeword of the residual, a
straight-through gradient to the encoder, a commitment loss, codebooks updated as exponential moving averages of
their assigned vectors (not by the optimiser), k-means initialisation from real encoder features (koe.units.rvq) and
dead-code restart (a code whose average use falls below `dead_threshold` is moved onto a random residual of the
batch). Quantiser dropout (train on a random number of levels) makes the first levels a usable coarse code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from koe.audio.mel import MelSpec, griffin_lim

MODEL_TYPE = "koe_codec"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


@dataclasses.dataclass
class CodecShape:
    """Architecture numbers saved in config.json."""

    num_quantizers: int = 4
    codebook_size: int = 256
    latent_dim: int = 64
    hidden_size: int = 128
    num_blocks: int = 2  # residual blocks before and after the stride
    stride: int = 2  # latent frame = stride mel frames (100 Hz / 2 = 50 Hz)
    ema_decay: float = 0.99
    dead_threshold: float = 0.05  # EMA count below which a code is restarted


class ConvBlock(nn.Module):
    def __init__(self, channels: int, kernel: int = 5, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(nn.functional.gelu(self.conv(nn.functional.gelu(x))))


class EmaResidualVQ(nn.Module):
    """[B, T, D] -> (straight-through quantised [B, T, D], codes [levels, B, T], commitment loss)."""

    def __init__(self, levels: int, codebook_size: int, dim: int, decay: float, dead_threshold: float):
        super().__init__()
        self.decay, self.dead_threshold = decay, dead_threshold
        self.register_buffer("codebooks", torch.randn(levels, codebook_size, dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(levels, codebook_size))
        self.register_buffer("ema_sum", self.codebooks.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarts", torch.zeros(levels, dtype=torch.long))

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    @torch.no_grad()
    def init_kmeans(self, features: np.ndarray, seed: int = 0, iterations: int = 10) -> None:
        """Codebooks from koe's k-means RVQ of real encoder outputs [N, D] (not random: no dead start)."""
        from koe.units.rvq import ResidualVQ

        rvq = ResidualVQ.fit(features, self.levels, self.codebooks.shape[1], seed=seed, iterations=iterations)
        self.codebooks.copy_(torch.from_numpy(rvq.codebooks))
        self.ema_sum.copy_(self.codebooks)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    def forward(self, z: torch.Tensor, num_levels: int | None = None):
        flat = z.reshape(-1, z.shape[-1])
        residual, quantised, codes, commit = flat, torch.zeros_like(flat), [], flat.new_zeros(())
        for level in range(num_levels or self.levels):
            book = self.codebooks[level]
            idx = torch.cdist(residual.detach(), book).argmin(1)
            chosen = book[idx]
            if self.training:
                self._ema_update(level, residual.detach(), idx)
            commit = commit + nn.functional.mse_loss(residual, chosen.detach())
            quantised = quantised + chosen
            residual = residual - chosen.detach()
            codes.append(idx.view(z.shape[:-1]))
        out = flat + (quantised - flat).detach()  # straight-through: decoder gradient flows to the encoder
        return out.view_as(z), torch.stack(codes), commit

    @torch.no_grad()
    def _ema_update(self, level: int, x: torch.Tensor, idx: torch.Tensor) -> None:
        k = self.codebooks.shape[1]
        onehot_count = torch.bincount(idx, minlength=k).float()
        sums = torch.zeros_like(self.ema_sum[level]).index_add_(0, idx, x)
        self.ema_count[level].mul_(self.decay).add_(onehot_count, alpha=1 - self.decay)
        self.ema_sum[level].mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count[level].sum()
        count = (self.ema_count[level] + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing
        self.codebooks[level].copy_(self.ema_sum[level] / count[:, None])
        dead = torch.nonzero(self.ema_count[level] < self.dead_threshold).flatten()
        if dead.numel():  # restart on random vectors of this batch's residual
            pick = x[torch.randint(0, len(x), (dead.numel(),), device=x.device)]
            self.codebooks[level, dead] = pick
            self.ema_sum[level, dead] = pick
            self.ema_count[level, dead] = 1.0
            self.restarts[level] += dead.numel()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [levels, B, T] -> [B, T, D]: the sum of one codeword per level."""
        return sum(self.codebooks[level][codes[level]] for level in range(codes.shape[0]))


class KoeCodec(nn.Module):
    """Mel encoder + EMA RVQ + mel decoder; `encode`/`decode` mirror transformers' codec outputs."""

    def __init__(self, shape: CodecShape, mel: MelSpec | None = None):
        super().__init__()
        self.shape, self.mel = shape, mel or MelSpec()
        h, d, s = shape.hidden_size, shape.latent_dim, shape.stride
        blocks = lambda: [ConvBlock(h, 5, dil) for dil in (1, 2, 4)[: shape.num_blocks] or [1]]  # noqa: E731
        self.encoder = nn.Sequential(nn.Conv1d(self.mel.n_mels, h, 3, padding=1), *blocks(),
                                     nn.Conv1d(h, h, 2 * s, stride=s, padding=s // 2), *blocks(), nn.Conv1d(h, d, 1))
        self.quantizer = EmaResidualVQ(shape.num_quantizers, shape.codebook_size, d, shape.ema_decay,
                                       shape.dead_threshold)
        self.decoder = nn.Sequential(nn.Conv1d(d, h, 3, padding=1), *blocks(),
                                     nn.ConvTranspose1d(h, h, 2 * s, stride=s, padding=s // 2), *blocks(),
                                     nn.Conv1d(h, self.mel.n_mels, 3, padding=1))
        self.register_buffer("mel_mean", torch.zeros(self.mel.n_mels))
        self.register_buffer("mel_std", torch.ones(self.mel.n_mels))
        self.source = "<unsaved>"
        self.config = SimpleNamespace(model_type=MODEL_TYPE, sampling_rate=self.mel.sample_rate_hz,
                                      codebook_size=shape.codebook_size, num_quantizers=shape.num_quantizers,
                                      frame_rate=self.mel.frame_rate_hz / s)

    # --- tensors ---------------------------------------------------------------------------------------------
    def latents(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, T, n_mels] log-mel (T a multiple of stride) -> [B, T / stride, latent_dim]."""
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        return self.encoder(x).transpose(1, 2)

    def reconstruct(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, frames, latent_dim] -> [B, frames * stride, n_mels] log-mel."""
        return self.decoder(latents.transpose(1, 2)).transpose(1, 2) * self.mel_std + self.mel_mean

    def forward(self, mel: torch.Tensor, num_levels: int | None = None):
        """(reconstructed log-mel, codes [levels, B, frames], commitment loss)."""
        q, codes, commit = self.quantizer(self.latents(mel), num_levels)
        return self.reconstruct(q), codes, commit

    def wav_to_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """[samples] -> [T, n_mels] log-mel, T padded (edge) to a multiple of the stride."""
        from koe.audio.mel import log_mel

        mel = log_mel(wav.float(), self.mel)
        pad = (-len(mel)) % self.shape.stride
        return torch.cat([mel, mel[-1:].expand(pad, -1)]) if pad else mel

    # --- the transformers-like codec surface -----------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> SimpleNamespace:
        """[1, 1, samples] at 16 kHz -> audio_codes [1, levels, frames]."""
        mel = self.wav_to_mel(x.reshape(-1))[None]
        _, codes, _ = self.quantizer(self.latents(mel))
        return SimpleNamespace(audio_codes=codes.permute(1, 0, 2))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, iterations: int = 48) -> SimpleNamespace:
        """[1, levels, frames] -> audio_values [1, 1, samples] (Griffin-Lim of the decoded log-mel)."""
        return SimpleNamespace(audio_values=self.decode_mel(codes, iterations))

    @torch.no_grad()
    def decode_mel(self, codes: torch.Tensor, iterations: int = 48) -> torch.Tensor:
        mel = self.reconstruct(self.quantizer.decode(codes.permute(1, 0, 2)))
        return torch.stack([griffin_lim(m.cpu(), self.mel, iterations) for m in mel])[:, None]

    # --- folder --------------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path, extra: dict | None = None) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg = {"model_type": MODEL_TYPE, "schema_version": 1, "sampling_rate": self.mel.sample_rate_hz,
               "codebook_size": self.shape.codebook_size, "num_quantizers": self.shape.num_quantizers,
               "frame_rate": self.config.frame_rate,
               "bitrate_bps": self.config.frame_rate * self.shape.num_quantizers * math.log2(self.shape.codebook_size),
               "shape": dataclasses.asdict(self.shape), "mel": vars(self.mel), **(extra or {})}
        (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(out / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> KoeCodec:
        path = Path(path)
        cfg = json.loads((path / CONFIG_FILE).read_text())
        model = cls(CodecShape(**cfg["shape"]), MelSpec(**cfg["mel"]))
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device="cpu"))
        model.source = str(path)
        return model.eval()


def is_koe_codec(path: str | Path) -> bool:
    """True for a folder whose config.json says model_type koe_codec (checked before transformers' AutoConfig)."""
    f = Path(path) / CONFIG_FILE
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False
