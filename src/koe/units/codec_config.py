"""Configs of `koe units train-codec` and `koe units encode-codec` (no heavy imports: `koe --help` stays fast).

    koe units train-codec runs/tiny/synth/manifest.jsonl out_dir=runs/codec steps=1500 levels=4 codebook_size=256
    koe units encode-codec runs/tiny/synth/manifest.jsonl codec=runs/codec out_dir=runs/codes
    koe units encode-codec ... codec=facebook/encodec_24khz              # any CodecTokenizer
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from koe.training.config import OptimConfig, small_net_optim


@dataclass
class CodecTrainConfig:
    """Train koe's own mel codec (conv encoder -> EMA residual VQ -> conv decoder, koe.units.codec_model) end to end
    on a manifest's audio with a log-mel L1 loss. The folder it writes loads with CodecTokenizer.load(out_dir)."""

    manifest: Path = field(metadata={"help": "utterances with audio (16 kHz after loading)"})
    out_dir: Path = field(default=Path("codec"), metadata={"help": "codec folder (config.json, model.safetensors)"})
    levels: int = field(default=4, metadata={"help": "RVQ levels (codebooks)"})
    codebook_size: int = field(default=256, metadata={"help": "codes per level"})
    latent_dim: int = field(default=64, metadata={"help": "width of the quantised latent"})
    hidden_size: int = field(default=128, metadata={"help": "channels of encoder and decoder"})
    num_blocks: int = field(default=2, metadata={"help": "residual conv blocks on each side of the stride (1-3)"})
    stride: int = field(default=2, metadata={"help": "mel frames per code frame: 2 -> 50 Hz, 4 -> 25 Hz (even)"})
    steps: int = field(default=1500, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=16, metadata={"help": "crops per step"})
    segment_frames: int = field(default=128, metadata={"help": "crop length in mel frames (10 ms)"})
    commitment_weight: float = field(default=0.25, metadata={"help": "weight of the encoder commitment loss"})
    quantizer_dropout: float = field(default=0.5, metadata={
        "help": "share of steps trained on a random number of levels (SoundStream), so coarse levels decode alone"})
    kmeans_frames: int = field(default=20000, metadata={"help": "encoder frames the k-means initialisation fits"})
    ema_decay: float = field(default=0.99, metadata={"help": "codebook EMA decay"})
    dead_threshold: float = field(default=0.05, metadata={"help": "EMA use below which a code is restarted"})
    exclude_speakers: list[str] = field(default_factory=list, metadata={"help": "speakers left out of training"})
    max_utterances: int = field(default=2000, metadata={"help": "cap on training utterances"})
    optim: OptimConfig = field(default_factory=small_net_optim)
    log_every: int = field(default=25, metadata={"help": "metrics.jsonl line every N steps"})
    save_every: int = field(default=500, metadata={"help": "checkpoint every N steps (koe.training.checkpoint)"})
    resume_from: str | None = field(default="auto", metadata={"help": "auto | a checkpoint dir | null (fresh)"})
    overwrite: bool = field(default=False, metadata={"help": "a fresh run may delete another run's checkpoints"})
    time_budget_s: float = field(default=0.0, metadata={"help": "stop (and save) after this many seconds; 0 = none"})
    seed: int = field(default=0, metadata={"help": "seeds init, k-means and batches"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})

    def validate(self) -> list[str]:
        problems = [f"{k} must be positive" for k in ("levels", "codebook_size", "latent_dim", "hidden_size", "steps",
                                                      "batch_size", "segment_frames", "log_every", "save_every")
                    if getattr(self, k) <= 0]
        if self.stride < 2 or self.stride % 2:
            problems.append(f"stride={self.stride} must be even and >= 2")
        elif self.segment_frames % self.stride:
            problems.append(f"segment_frames={self.segment_frames} must be a multiple of stride={self.stride}")
        if not 1 <= self.num_blocks <= 3:
            problems.append(f"num_blocks={self.num_blocks} must be 1, 2 or 3")
        if not 0 <= self.quantizer_dropout <= 1 or not 0 < self.ema_decay < 1:
            problems.append("quantizer_dropout must be in [0, 1] and ema_decay in (0, 1)")
        if self.kmeans_frames < self.codebook_size:
            problems.append(f"kmeans_frames={self.kmeans_frames} must be >= codebook_size={self.codebook_size}")
        return problems + self.optim.problems()


@dataclass
class CodecEncodeConfig:
    """Encode a manifest's audio into multi-level codec codes (any CodecTokenizer: koe's own, EnCodec, DAC, Mimi).
    `koe units stats` reads the folder and reports bitrate, usage and perplexity per level."""

    manifest: Path = field(metadata={"help": "utterances with audio"})
    codec: str = field(default="", metadata={"help": "codec folder or hub id", "required": True})
    out_dir: Path = field(default=Path("codes"), metadata={"help": "meta.json + codes.npz"})
    device: str = field(default="cpu", metadata={"help": "cpu | cuda"})
    max_utterances: int = field(default=0, metadata={"help": "0 = all"})

    def validate(self) -> list[str]:
        return [] if self.codec else ["codec is required (a codec folder or hub id)"]
