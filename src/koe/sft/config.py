"""Config of `koe sft` (no heavy imports: `koe sft --help` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from koe.config import at_least
from koe.model.config import LoraConfig
from koe.strategies.options import StrategyOptions
from koe.training.config import OptimConfig


def _optim() -> OptimConfig:
    return OptimConfig(lr=1e-3, warmup_steps=10, schedule="cosine", weight_decay=0.0)


@dataclass
class SftConfig:
    """Fine-tune a koe model (HF dir with koe's speech vocabulary) to answer spoken questions (docs/dialogue.md).

    `koe sft model=runs/tiny/interleaved/final examples=runs/dialogue/data strategy.name=parallel out_dir=sft/par`
    """

    model: str = field(default="", metadata={"help": "HF causal-LM dir (or hub id) with koe's extended tokenizer"})
    examples: Path = field(default=Path("dialogue"), metadata={
        "help": "examples.jsonl of `koe dialogue build`, or the folder holding it"})
    out_dir: Path = field(default=Path("sft"), metadata={"help": "metrics, checkpoints/, final/ (HF dir + strategy)"})
    strategy: StrategyOptions = field(default_factory=StrategyOptions)
    text_ratio: float = field(default=0.25, metadata={
        "help": "share of every batch that is text-only instruction rows (keeps text QA from being forgotten)"})
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=_optim)
    micro_batch_size: int = field(default=16, metadata={"help": "rows per optimiser step"})
    epochs: float = field(default=10.0, metadata={"help": "passes over the cross-modal rows (when no max_steps)"})
    max_steps: int | None = field(default=None, metadata={"help": "optimiser steps (overrides epochs)"})
    max_seq_len: int = field(default=256, metadata={"help": "longest row; a longer example is listed, not cut"})
    seed: int = field(default=0, metadata={"help": "seeds the extra heads' init and the row draw of every step"})
    log_every: int = field(default=10, metadata={"help": "log metrics every N steps"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps (0 = only at the end)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept"})
    resume_from: str | None = field(default=None, metadata={"help": "checkpoint dir or 'auto' (newest in out_dir)"})
    tensorboard: bool = field(default=False, metadata={"help": "write TensorBoard events to out_dir/tb"})

    def validate(self) -> list[str]:
        problems = [] if self.model else ["model: required (a koe model directory)"]
        problems += at_least(self, ("micro_batch_size", "max_seq_len", "log_every"), 1)
        problems += at_least(self, ("save_every", "keep_checkpoints"), 0)
        if not 0 <= self.text_ratio < 1:
            problems.append(f"text_ratio={self.text_ratio} must be in [0, 1)")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps={self.max_steps} must be >= 1")
        if self.epochs <= 0:
            problems.append(f"epochs={self.epochs} must be > 0")
        return problems + self.strategy.validate()

    @property
    def examples_file(self) -> Path:
        from koe.dialogue.examples import EXAMPLES_FILE

        return self.examples / EXAMPLES_FILE if self.examples.is_dir() else self.examples
