"""Options of `koe vocoder train` (kept free of heavy imports so `koe --help` stays instant)."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass
class VocoderConfig:
    """Train the baseline vocoder: unit embeddings -> convolution stack -> log-mel frames, inverted by Griffin-Lim.

    A baseline, not a neural vocoder: speech comes out intelligible-ish and robotic, since Griffin-Lim
    estimates phase from magnitudes alone. The saved folder is what `koe generate` loads as `vocoder=`.
    """

    manifest: Path | None = dataclasses.field(
        default=None, metadata={"help": "utterances with audio", "required": True})
    units_dir: Path | None = dataclasses.field(
        default=None, metadata={"help": "unit shards of the same manifest", "required": True})
    out_dir: Path = dataclasses.field(default=Path("vocoder"), metadata={"help": "where the vocoder folder goes"})
    hidden_size: int = dataclasses.field(default=256, metadata={"help": "channels of the convolution stack"})
    num_layers: int = dataclasses.field(default=4, metadata={"help": "residual convolution blocks"})
    kernel_size: int = dataclasses.field(default=5, metadata={"help": "convolution width in unit frames"})
    steps: int = dataclasses.field(default=600, metadata={"help": "optimiser steps"})
    batch_size: int = dataclasses.field(default=16, metadata={"help": "utterances per step"})
    max_frames: int = dataclasses.field(default=400, metadata={"help": "random crop length in mel frames"})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "AdamW learning rate"})
    max_utterances: int = dataclasses.field(default=2000, metadata={"help": "cap on training utterances"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seeds init, crops and batches"})
    device: str = dataclasses.field(default="auto", metadata={"help": "cpu, cuda or auto"})

    def validate(self) -> list[str]:
        problems = [f"{k} must be positive" for k in ("steps", "batch_size", "hidden_size") if getattr(self, k) <= 0]
        if self.kernel_size % 2 == 0:
            problems.append("kernel_size must be odd so frames stay aligned")
        return problems
