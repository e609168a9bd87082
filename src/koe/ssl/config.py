"""Configs of `koe ssl pretrain` and `koe ssl disentangle` (no heavy imports: `koe ssl pretrain --help` stays fast).

    koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert steps=2000
    koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert-base model.hidden_size=768 model.num_layers=12 \
        model.num_heads=12 model.intermediate_size=3072 model.conv_dim=512 steps=400000 batch_size=16 max_crop_s=15
    koe ssl disentangle data/manifest.jsonl init=runs/hubert/final out_dir=runs/sd-hubert steps=5000
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from koe.config import at_least
from koe.training.config import OptimConfig


@dataclass
class EncoderArch:
    """A HuBERT trained from scratch. The conv stack keeps HuBERT's kernels and strides (50 Hz frames, 400-sample
    receptive field) and only narrows its channels; HuBERT base is hidden 768, 12 layers, 12 heads, 3072, conv 512."""

    hidden_size: int = field(default=256, metadata={"help": "transformer width"})
    num_layers: int = field(default=4, metadata={"help": "transformer layers"})
    num_heads: int = field(default=4, metadata={"help": "attention heads"})
    intermediate_size: int = field(default=1024, metadata={"help": "feed-forward width"})
    conv_dim: int = field(default=128, metadata={"help": "channels of each of the 7 conv feature-encoder layers"})
    conv_pos_kernel: int = field(default=128, metadata={"help": "width of the convolutional position embedding"})
    conv_pos_groups: int = field(default=16, metadata={"help": "groups of the convolutional position embedding"})
    dropout: float = field(default=0.1, metadata={"help": "dropout of hidden states and attention weights"})


@dataclass
class SSLOptim(OptimConfig):
    """The shared AdamW + schedule options (koe.training.config) with HuBERT's defaults; warm-up 8% of the steps."""

    lr: float = field(default=5e-4, metadata={"help": "peak learning rate (HuBERT base: 5e-4)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decoupled decay on matrices"})
    beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (HuBERT: 0.98)"})
    eps: float = field(default=1e-6, metadata={"help": "AdamW epsilon"})
    schedule: Literal["wsd", "cosine", "constant"] = field(default="cosine", metadata={
        "help": "after warm-up: cosine to min_lr_ratio, wsd (flat, then linear decay over decay_fraction), constant"})
    warmup_steps: float = field(default=0.08, metadata={
        "help": "linear warm-up: a fraction of the steps when < 1, else a step count"})
    decay_fraction: float = field(default=0.5, metadata={"help": "wsd: fraction of steps spent decaying"})


@dataclass
class DisentangleOptim(SSLOptim):
    """Komatsu et al.'s optimiser: AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.01, tri-stage schedule (3%
    warm-up, 47% hold, 50% decay to lr/10), which is wsd with decay_fraction 0.5. They do not clip gradients."""

    lr: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final lr as a fraction of the peak"})
    schedule: Literal["wsd", "cosine", "constant"] = field(default="wsd", metadata={
        "help": "after warm-up: wsd (flat, then linear decay over decay_fraction), cosine, constant"})
    warmup_steps: float = field(default=0.03, metadata={
        "help": "warm-up (fraction of the steps when < 1, else steps); only the re-initialised layers and heads "
                "learn during it"})
    beta2: float = field(default=0.999, metadata={"help": "AdamW beta2"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})


@dataclass
class PerturbConfig:
    """Speaker perturbation of the student's input (Komatsu et al.'s NANSY/ContentVec recipe): Praat "Change gender"
    moves a low voice up and a high voice down, then a random 10-band EQ colours the spectrum."""

    f0_threshold_hz: float = field(default=155.0, metadata={
        "help": "median f0 above this counts as a high voice (moved down), else low (moved up)"})
    low_pitch_hz: float = field(default=100.0, metadata={"help": "new median f0 of a high voice"})
    high_pitch_hz: float = field(default=300.0, metadata={"help": "new median f0 of a low voice"})
    formant_ratio: float = field(default=1.1, metadata={"help": "formant shift of a low voice (1/ratio for a high)"})
    pitch_range_ratio: float = field(default=1.2, metadata={"help": "pitch range factor of a low voice (1/r high)"})
    eq_gain_db: float = field(default=12.0, metadata={"help": "EQ band gains are uniform in [-g, g] dB"})
    eq_q_range: list[float] = field(default_factory=lambda: [2.0, 5.0], metadata={
        "help": "EQ band Q is log-uniform in [lo, hi]"})

    def problems(self) -> list[str]:
        out = []
        if min(self.f0_threshold_hz, self.low_pitch_hz, self.high_pitch_hz, self.formant_ratio,
               self.pitch_range_ratio) <= 0:
            out.append("perturb: pitches and ratios must be > 0")
        if len(self.eq_q_range) != 2 or not 0 < self.eq_q_range[0] <= self.eq_q_range[1]:
            out.append(f"perturb.eq_q_range={self.eq_q_range} must be [lo, hi] with 0 < lo <= hi")
        if self.eq_gain_db < 0:
            out.append("perturb.eq_gain_db must be >= 0")
        return out


@dataclass
class _Common:
    """Options both commands share: data, batches, budget, device and logging."""

    manifest: Path = field(metadata={"help": "manifest (JSON Lines) of audio; other rates are resampled to 16 kHz"})
    out_dir: Path = field(default=Path("runs/ssl"), metadata={
        "help": "run folder: config.yaml, metrics.jsonl, loss_curve.png, summary; the HF encoder in out_dir/final"})
    split: str | None = field(default="train", metadata={"help": "manifest split to train on; null = all"})
    eval_utterances: int = field(default=32, metadata={
        "help": "held-out utterances for evaluation: the valid split if it has any, else taken out of training"})
    valid_split: str = field(default="valid", metadata={"help": "split the held-out utterances come from"})
    steps: int = field(default=1000, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=8, metadata={"help": "utterances per step per process"})
    max_crop_s: float = field(default=5.0, metadata={
        "help": "a batch is cropped (random offsets) to its shortest utterance, at most this long"})
    min_duration_s: float = field(default=1.0, metadata={"help": "shorter utterances are not trained on (counted)"})
    max_duration_s: float | None = field(default=600.0, metadata={"help": "longer utterances are listed as failed"})
    num_workers: int = field(default=2, metadata={"help": "data-loader processes (0 = in the training process)"})
    log_every: int = field(default=10, metadata={"help": "log metrics every N steps"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps (0 = only at the start and end)"})
    seed: int = field(default=0, metadata={"help": "seeds init, batches, crops, masks and perturbations"})
    device: str = field(default="auto", metadata={
        "help": "auto (cuda if available) | cpu | cuda; several GPUs: accelerate launch -m koe ssl ..."})
    precision: Literal["auto", "bf16", "fp32"] = field(default="auto", metadata={
        "help": "auto = bf16 autocast on CUDA, fp32 on CPU (weights stay fp32 either way)"})
    tensorboard: bool = field(default=True, metadata={"help": "write TensorBoard events to out_dir/tb"})

    def common_problems(self) -> list[str]:
        out = at_least(self, ("steps", "batch_size", "log_every"), 1)
        out += at_least(self, ("eval_utterances", "num_workers", "eval_every"), 0)
        if self.min_duration_s < 0.05:
            out.append(f"min_duration_s={self.min_duration_s} must be >= 0.05 (one 25 ms encoder frame and more)")
        if self.max_crop_s < self.min_duration_s:
            out.append(f"max_crop_s={self.max_crop_s} must be >= min_duration_s={self.min_duration_s}")
        if self.device not in ("auto", "cpu", "cuda"):
            out.append(f"device={self.device!r} must be auto, cpu or cuda (pick GPUs with CUDA_VISIBLE_DEVICES)")
        return out


@dataclass
class PretrainConfig(_Common):
    """HuBERT iteration 1 from scratch: masked prediction of k-means labels (MFCC k=100 unless `tokenizer=` names a
    fitted koe unit tokenizer, e.g. one on this model's own layer for iteration 2). Writes a plain HF HuBERT
    directory (out_dir/final) that `koe units fit features=hf:<out_dir>/final@<layer>` loads."""

    out_dir: Path = field(default=Path("runs/ssl/hubert"), metadata={
        "help": "run folder: config.yaml, metrics.jsonl, loss_curve.png, summary; the HF encoder in out_dir/final"})
    tokenizer: Path | None = field(default=None, metadata={
        "help": "koe unit tokenizer whose frame labels are the targets; null = fit MFCC k-means into out_dir/targets"})
    num_clusters: int = field(default=100, metadata={"help": "k of the MFCC k-means fitted when tokenizer=null"})
    model: EncoderArch = field(default_factory=EncoderArch)
    optim: SSLOptim = field(default_factory=SSLOptim)
    mask_prob: float = field(default=0.08, metadata={
        "help": "fraction of frames that start a masked span (HuBERT's p; ~50% of frames end up masked)"})
    mask_length: int = field(default=10, metadata={"help": "frames per masked span (HuBERT's l)"})
    final_dim: int = field(default=256, metadata={"help": "projection and label-embedding size of the target head"})
    logit_temp: float = field(default=0.1, metadata={"help": "logits = cosine(projection, label embedding) / temp"})

    def validate(self) -> list[str]:
        problems = self.common_problems() + self.optim.problems()
        m = self.model
        if min(m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size, m.conv_dim, m.conv_pos_kernel,
               m.conv_pos_groups) < 1:
            problems.append("model: sizes must be >= 1")
        elif m.hidden_size % m.num_heads or m.hidden_size % m.conv_pos_groups:
            problems.append(f"model.hidden_size={m.hidden_size} must divide by num_heads={m.num_heads} and "
                            f"conv_pos_groups={m.conv_pos_groups}")
        if not 0 <= m.dropout < 1:
            problems.append(f"model.dropout={m.dropout} must be in [0, 1)")
        if not 0 < self.mask_prob < 1:
            problems.append(f"mask_prob={self.mask_prob} must be in (0, 1)")
        if self.mask_length < 1:
            problems.append(f"mask_length={self.mask_length} must be >= 1")
        if self.tokenizer is None and self.num_clusters < 2:
            problems.append(f"num_clusters={self.num_clusters} must be >= 2")
        if self.final_dim < 1 or self.logit_temp <= 0:
            problems.append("final_dim must be >= 1 and logit_temp > 0")
        return problems


@dataclass
class DisentangleConfig(_Common):
    """Speaker-disentangled fine-tuning (Komatsu et al., SLT 2024): a student HuBERT hears a speaker-perturbed copy,
    its EMA teacher the original; frame-level MSE between L2-normalised projections. The last `reinit_layers`
    layers start afresh. During the warm-up only they and the heads learn; the conv feature encoder, feature
    projection, positional convolution and input layer norm stay frozen throughout. Writes the student as a plain
    HF HuBERT directory (out_dir/final)."""

    init: str = field(default="", metadata={"help": "HF HuBERT directory or hub id to start from (required)"})
    out_dir: Path = field(default=Path("runs/ssl/disentangled"), metadata={
        "help": "run folder: config.yaml, metrics.jsonl, loss_curve.png, summary; the HF student in out_dir/final"})
    reinit_layers: int = field(default=3, metadata={"help": "last transformer layers re-initialised"})
    ema_decay: float = field(default=0.999, metadata={"help": "teacher = EMA of the student with this decay"})
    proj_hidden: int = field(default=2048, metadata={"help": "hidden width of the projector and predictor MLPs"})
    proj_dim: int = field(default=256, metadata={"help": "output size of the projector and predictor"})
    optim: DisentangleOptim = field(default_factory=DisentangleOptim)
    perturb: PerturbConfig = field(default_factory=PerturbConfig)

    def validate(self) -> list[str]:
        problems = self.common_problems() + self.optim.problems() + self.perturb.problems()
        if not self.init:
            problems.append("init is required: an HF HuBERT directory (e.g. out_dir/final of `koe ssl pretrain`)")
        if self.reinit_layers < 0:
            problems.append(f"reinit_layers={self.reinit_layers} must be >= 0")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay={self.ema_decay} must be in [0, 1)")
        if self.proj_hidden < 1 or self.proj_dim < 1:
            problems.append("proj_hidden and proj_dim must be >= 1")
        return problems
