"""The one optimiser config shape of every koe training loop: AdamW and its learning-rate schedule.

    koe train CONFIG.yaml optim.lr=1e-3 optim.warmup_steps=100        # 100 steps of warm-up
    koe ssl pretrain data/manifest.jsonl optim.warmup_steps=0.08      # a value below 1: 8% of the steps

`koe train` (koe.train.config.OptimConfig adds the frozen-text warm-up) and `koe ssl` (other defaults, HuBERT's)
subclass it, so the option names, their meaning and their checks are the same everywhere. `warmup_steps` follows
transformers' TrainingArguments: a whole number >= 1 counts steps, a value in [0, 1) is a fraction of the run's
steps (the LM loop only knows its step count once the data is read, the SSL loops scale their warm-up with
`steps=`). The SSL configs used to spell the fraction `warmup_fraction`; that key now fails with a message that
says what to write instead. No heavy imports here: `--help` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RENAMED_WARMUP = ("optim.warmup_fraction was folded into optim.warmup_steps: write optim.warmup_steps={value} (a "
                  "value below 1 is a fraction of the steps, a whole number >= 1 a step count)")


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule (koe.training.schedule)."""

    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    min_lr_ratio: float = field(default=0.05, metadata={"help": "final lr as a fraction of the peak"})
    weight_decay: float = field(default=0.1, metadata={
        "help": "AdamW decoupled decay (matrices only; koe train also spares embeddings)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.95, metadata={"help": "AdamW beta2"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})
    grad_clip: float = field(default=1.0, metadata={"help": "max global gradient norm (0 = off)"})
    schedule: Literal["wsd", "cosine", "constant"] = field(default="wsd", metadata={
        "help": "wsd = warmup, stable, then decay over the last decay_fraction of steps; cosine; constant"})
    warmup_steps: float = field(default=10, metadata={
        "help": "linear warm-up: a whole number >= 1 = steps, a value in [0, 1) = fraction of the steps"})
    decay_fraction: float = field(default=0.1, metadata={"help": "wsd: fraction of steps spent decaying"})
    warmup_fraction: float | None = field(default=None, metadata={
        "help": "removed: use warmup_steps (a value below 1 is a fraction of the steps)"})

    def problems(self, prefix: str = "optim.") -> list[str]:
        """Every range problem of these options, named with `prefix`."""
        out = []
        if self.warmup_fraction is not None:  # a fraction of 1 (the whole run) has to be written as a step count
            value = self.warmup_fraction if self.warmup_fraction < 1 else "<the run's steps>"
            out.append(RENAMED_WARMUP.format(value=value))
        if self.lr <= 0 or self.eps <= 0:
            out.append(f"{prefix}lr and {prefix}eps must be > 0")
        for name in ("min_lr_ratio", "decay_fraction", "beta1", "beta2"):
            if not 0 <= getattr(self, name) <= 1:
                out.append(f"{prefix}{name}={getattr(self, name)} must be in [0, 1]")
        if self.weight_decay < 0 or self.grad_clip < 0:
            out.append(f"{prefix}weight_decay and {prefix}grad_clip must be >= 0")
        w = self.warmup_steps
        if w < 0 or (w >= 1 and w != int(w)):
            out.append(f"{prefix}warmup_steps={w} must be a whole number of steps >= 1 or a fraction in [0, 1)")
        return out


def small_net_optim() -> OptimConfig:
    """Defaults for koe's small convolutional nets (codec, coarse-to-fine): lr 2e-3, light decay, 5% warm-up, cosine.
    A `default_factory` for their `optim` field; options given on the command line apply on top."""
    return OptimConfig(lr=2e-3, weight_decay=0.01, schedule="cosine", warmup_steps=0.05)


def warmup_steps(cfg: OptimConfig, total_steps: int) -> int:
    """The warm-up in steps: `warmup_steps` itself when >= 1, else that fraction of `total_steps` (rounded)."""
    w = cfg.warmup_steps
    return int(w) if w >= 1 else round(w * total_steps)
