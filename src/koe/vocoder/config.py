"""Options of `koe vocoder train` (kept free of heavy imports so `koe --help` stays instant).

    koe vocoder train manifest=synth/manifest.jsonl units_dir=units out_dir=vocoder              # baseline
    koe vocoder train src/koe/configs/vocoder/hifigan_gpu.yaml manifest=... units_dir=... out_dir=...
    koe vocoder train kind=hifigan hifigan.upsample_initial_channel=64 steps=2000 exclude_speakers=[en+f5]
    koe vocoder train kind=c2f c2f.codec=runs/codec manifest=... units_dir=... out_dir=runs/c2f steps=1500
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from koe.training.config import OptimConfig, small_net_optim


@dataclasses.dataclass
class HifiGanConfig:
    """The neural vocoder (kind=hifigan): HiFi-GAN generator + multi-period/multi-scale discriminators.

    Defaults are a small HiFi-GAN (V2-like width) that trains on CPU in the tiny budget; the GPU config in
    src/koe/configs/vocoder/hifigan_gpu.yaml widens it. Loss weights are HiFi-GAN V1's (FIELD.md).
    """

    unit_embed_dim: int = dataclasses.field(default=128, metadata={"help": "unit (and speaker) embedding width"})
    prenet_layers: int = dataclasses.field(default=2, metadata={"help": "residual conv blocks before upsampling"})
    upsample_initial_channel: int = dataclasses.field(default=64, metadata={"help": "channels before upsampling"})
    upsample_rates: list[int] = dataclasses.field(
        default_factory=lambda: [5, 4, 4, 2], metadata={"help": "product must equal the mel hop (160 samples)"})
    resblock_kernel_sizes: list[int] = dataclasses.field(
        default_factory=lambda: [3, 7, 11], metadata={"help": "multi-receptive-field fusion kernels"})
    resblock_dilations: list[int] = dataclasses.field(
        default_factory=lambda: [1, 3, 5], metadata={"help": "dilations inside each MRF residual block"})
    disc_width: int = dataclasses.field(
        default=8, metadata={"help": "discriminator base channels (HiFi-GAN V1: 32; MSD uses 4x this)"})
    periods: list[int] = dataclasses.field(
        default_factory=lambda: [2, 3, 5, 7, 11], metadata={"help": "multi-period discriminator periods"})
    msd_scales: int = dataclasses.field(default=3, metadata={"help": "multi-scale discriminator scales (0 = off)"})
    segment_frames: int = dataclasses.field(default=32, metadata={"help": "training crop in mel frames (10 ms)"})
    lr: float = dataclasses.field(default=2e-4, metadata={"help": "AdamW lr of generator and discriminators"})
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.8, 0.99], metadata={"help": "AdamW betas"})
    schedule: Literal["constant", "cosine"] = dataclasses.field(
        default="cosine", metadata={"help": "lr schedule over `steps` (cosine ends at 10% of lr)"})
    warmup_steps: int = dataclasses.field(default=50, metadata={"help": "linear lr warmup"})
    mel_weight: float = dataclasses.field(default=45.0, metadata={"help": "weight of the mel L1 loss"})
    fm_weight: float = dataclasses.field(default=2.0, metadata={"help": "weight of the feature-matching loss"})
    duration_weight: float = dataclasses.field(default=1.0, metadata={"help": "weight of the duration MSE"})
    adversarial_start_step: int = dataclasses.field(
        default=0, metadata={"help": "steps of mel-only training before the discriminators join (speeds early "
                                     "convergence on short budgets)"})
    grad_clip: float = dataclasses.field(default=100.0, metadata={"help": "max gradient norm per network (0 = off)"})
    save_every: int = dataclasses.field(default=500, metadata={"help": "checkpoint every N steps (resume point)"})
    keep_checkpoints: int = dataclasses.field(default=2, metadata={"help": "newest checkpoints kept"})
    log_every: int = dataclasses.field(default=25, metadata={"help": "metrics.jsonl line every N steps"})
    time_budget_s: float = dataclasses.field(
        default=0.0, metadata={"help": "stop training (and save) after this many seconds (0 = no limit)"})


@dataclasses.dataclass
class C2FConfig:
    """Coarse-to-fine (kind=c2f): phonetic units + speaker -> codes of every level of a codec -> the codec's decoder
    (koe.vocoder.coarse_to_fine). The optimiser is the shared koe.training one."""

    codec: str = dataclasses.field(default="", metadata={
        "help": "codec folder or hub id (CodecTokenizer.load: `koe units train-codec` output, EnCodec, DAC, Mimi)"})
    hidden_size: int = dataclasses.field(default=192, metadata={"help": "channels of trunk and level blocks"})
    num_layers: int = dataclasses.field(default=4, metadata={"help": "dilated residual conv blocks of the trunk"})
    segment_frames: int = dataclasses.field(default=100, metadata={"help": "training crop in codec frames"})
    optim: OptimConfig = dataclasses.field(default_factory=small_net_optim)
    log_every: int = dataclasses.field(default=25, metadata={"help": "metrics.jsonl line every N steps"})
    time_budget_s: float = dataclasses.field(
        default=0.0, metadata={"help": "stop training (and save) after this many seconds (0 = no limit)"})


@dataclasses.dataclass
class VocoderConfig:
    """Train a unit vocoder. kind=baseline: unit embeddings -> convolutions -> log-mel, inverted by Griffin-Lim
    (fast, robotic, one voice). kind=hifigan: a HiFi-GAN generator from units + speaker to waveform, with a duration
    predictor for deduplicated units (koe.vocoder.hifigan). kind=c2f: units + speaker -> the codes of every level of
    a codec (`c2f.codec`, e.g. from `koe units train-codec`) -> the codec's decoder (koe.vocoder.coarse_to_fine).
    The saved folder is what `koe generate` loads as `vocoder=`; `UnitVocoder.load` picks the class from its
    vocoder.json.
    """

    manifest: Path | None = dataclasses.field(
        default=None, metadata={"help": "utterances with audio", "required": True})
    units_dir: Path | None = dataclasses.field(
        default=None, metadata={"help": "unit shards of the same manifest", "required": True})
    out_dir: Path = dataclasses.field(default=Path("vocoder"), metadata={"help": "where the vocoder folder goes"})
    kind: Literal["baseline", "hifigan", "c2f"] = dataclasses.field(
        default="baseline", metadata={"help": "baseline (units->mel + Griffin-Lim), hifigan (neural) or c2f "
                                              "(units -> codec tokens -> codec decoder)"})
    hidden_size: int = dataclasses.field(default=256, metadata={"help": "baseline: channels of the convolution stack"})
    num_layers: int = dataclasses.field(default=4, metadata={"help": "baseline: residual convolution blocks"})
    kernel_size: int = dataclasses.field(default=5, metadata={"help": "convolution width in unit frames"})
    steps: int = dataclasses.field(default=600, metadata={"help": "optimiser steps"})
    batch_size: int = dataclasses.field(default=16, metadata={"help": "utterances per step"})
    max_frames: int = dataclasses.field(default=400, metadata={"help": "baseline: random crop length in mel frames"})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "baseline: AdamW learning rate"})
    max_utterances: int = dataclasses.field(default=2000, metadata={"help": "cap on training utterances"})
    exclude_speakers: list[str] = dataclasses.field(
        default_factory=list, metadata={"help": "speakers left out of training (held-out voices for benchmarks)"})
    resume: bool = dataclasses.field(
        default=True, metadata={"help": "hifigan: continue from the newest complete checkpoint in out_dir"})
    hifigan: HifiGanConfig = dataclasses.field(default_factory=HifiGanConfig)
    c2f: C2FConfig = dataclasses.field(default_factory=C2FConfig)
    seed: int = dataclasses.field(default=0, metadata={"help": "seeds init, crops and batches"})
    device: str = dataclasses.field(default="auto", metadata={"help": "cpu, cuda or auto"})

    def validate(self) -> list[str]:
        problems = [f"{k} must be positive" for k in ("steps", "batch_size", "hidden_size") if getattr(self, k) <= 0]
        if self.kernel_size % 2 == 0:
            problems.append("kernel_size must be odd so frames stay aligned")
        h = self.hifigan
        product = 1
        for rate in h.upsample_rates:
            product *= rate
        if self.kind == "hifigan" and product != 160:
            problems.append(f"hifigan.upsample_rates={h.upsample_rates} multiply to {product}, not the mel hop 160")
        if any(p < 2 for p in h.periods):
            problems.append(f"hifigan.periods={h.periods} must all be >= 2")
        if len(h.betas) != 2:
            problems.append(f"hifigan.betas={h.betas} must be two numbers")
        for name in ("segment_frames", "save_every", "log_every", "upsample_initial_channel", "disc_width"):
            if getattr(h, name) <= 0:
                problems.append(f"hifigan.{name} must be positive")
        if h.upsample_initial_channel % (2 ** len(h.upsample_rates)):
            problems.append("hifigan.upsample_initial_channel must halve cleanly at every upsampling layer")
        if self.kind == "c2f":
            if not self.c2f.codec:
                problems.append("c2f.codec is required for kind=c2f (a codec folder or hub id)")
            problems += [f"c2f.{k} must be positive" for k in ("hidden_size", "num_layers", "segment_frames",
                                                                "log_every") if getattr(self.c2f, k) <= 0]
            problems += self.c2f.optim.problems("c2f.optim.")
        return problems
