"""The config of `koe train`: model init, optimiser, schedule, batch, budget, checkpoints and logging.

    koe train src/koe/configs/train/tiny_speech.yaml data_dir=runs/data out_dir=runs/train
    koe train model.name_or_path=Qwen/Qwen2.5-0.5B data_dir=data max_tokens=2e9 micro_batch_size=8 \
        grad_accum_steps=4 max_seq_len=2048 optim.lr=1e-3 optim.frozen_text_steps=200

No heavy imports here, so `koe train --help` is instant. `validate()` lists every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from koe.config import at_least
from koe.model.config import LoraConfig, ModelConfig
from koe.training.config import OptimConfig as SharedOptimConfig


@dataclass
class OptimConfig(SharedOptimConfig):
    """The shared AdamW + schedule options (koe.training.config) plus the frozen-text warm-up of a pretrained LM."""

    frozen_text_steps: int = field(default=0, metadata={
        "help": "first N steps train only the new token rows (embeddings and output rows); then all weights"})


@dataclass
class TrainConfig:
    """Continued pretraining of a causal LM on packed koe token shards (see docs/training.md)."""

    data_dir: Path | None = field(default=None, metadata={"help": "output of `koe data build`", "required": True})
    out_dir: Path = field(default=Path("runs/train"), metadata={"help": "logs, checkpoints and final/ model"})
    train_split: str = field(default="train", metadata={"help": "split to train on"})
    valid_split: str | None = field(default="valid", metadata={"help": "split for eval loss (null = none)"})
    seed: int = field(default=0, metadata={"help": "seeds init, data order and dropout"})
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    max_seq_len: int = field(default=256, metadata={"help": "packed row length in tokens"})
    micro_batch_size: int = field(default=8, metadata={"help": "rows per forward pass per process"})
    grad_accum_steps: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    max_steps: int | None = field(default=None, metadata={"help": "optimiser steps (default: from max_tokens or "
                                                                   "epochs)"})
    max_tokens: float | None = field(default=None, metadata={"help": "token budget (rows x max_seq_len, all "
                                                                      "processes); sets the step count"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the data when no steps/tokens are given"})
    max_time_s: float | None = field(default=None, metadata={"help": "wall-time budget: stop cleanly with a "
                                                                      "checkpoint"})
    precision: Literal["auto", "bf16", "fp32"] = field(default="auto", metadata={
        "help": "auto = bf16 autocast on CUDA, fp32 on CPU (weights stay fp32 either way)"})
    tf32: bool = field(default=True, metadata={"help": "allow TF32 matmuls on CUDA"})
    compile: bool | None = field(default=None, metadata={
        "help": "torch.compile the model and loss (null = on CUDA, off on CPU)"})
    fused_loss: bool = field(default=False, metadata={
        "help": "chunked output projection + cross-entropy that never holds the logits (koe.train.fused): less "
                "memory without compile; under compile the plain loss is faster (docs/performance.md)"})
    grad_reduce_dtype: Literal["fp32", "bf16"] = field(default="fp32", metadata={
        "help": "DDP gradient all-reduce dtype; bf16 halves the bytes for slow links but was slower over NVLink "
                "(koe.train.distributed, docs/performance.md)"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute activations in backward"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps (0 = only at the end)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept on disk"})
    resume_from: str | None = field(default=None, metadata={"help": "checkpoint dir, or 'auto' = newest in "
                                                                     "out_dir/checkpoints"})
    overwrite: bool = field(default=False, metadata={
        "help": "a fresh run (no resume_from) into an out_dir that holds another run's checkpoints or final/ model "
                "is refused unless true; true deletes them first"})
    log_every: int = field(default=10, metadata={"help": "log metrics every N steps"})
    eval_every: int = field(default=0, metadata={"help": "eval loss every N steps (0 = only at the end)"})
    eval_batches: int = field(default=8, metadata={"help": "micro-batches per eval"})
    tensorboard: bool = field(default=True, metadata={"help": "write TensorBoard events to out_dir/tb"})
    peak_tflops: float = field(default=989.0, metadata={"help": "per-device peak for MFU (H100 SXM bf16 dense = "
                                                                 "989)"})
    save_final: bool = field(default=True, metadata={"help": "write the HF model dir out_dir/final"})

    def validate(self) -> list[str]:
        problems = at_least(self, ("max_seq_len", "micro_batch_size", "grad_accum_steps", "log_every", "eval_batches"),
                            1)
        problems += at_least(self, ("save_every", "eval_every", "keep_checkpoints"), 0)
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps={self.max_steps} must be >= 1")
        if self.max_tokens is not None and self.max_tokens <= 0:
            problems.append(f"max_tokens={self.max_tokens} must be > 0")
        if self.epochs <= 0:
            problems.append(f"epochs={self.epochs} must be > 0")
        o = self.optim
        problems += o.problems()
        if o.frozen_text_steps < 0:
            problems.append(f"optim.frozen_text_steps={o.frozen_text_steps} must be >= 0")
        if o.frozen_text_steps and self.model.name_or_path is None:
            problems.append("optim.frozen_text_steps needs a pretrained model (model.name_or_path): a scratch model "
                            "has no text rows to keep")
        if self.lora.enabled and self.model.name_or_path is None:
            problems.append("lora.enabled needs a pretrained model (model.name_or_path)")
        if self.lora.enabled and o.frozen_text_steps:
            problems.append("lora.enabled and optim.frozen_text_steps together are not supported")
        m = self.model
        if m.num_heads < 1 or m.hidden_size % m.num_heads or m.num_heads % max(m.num_kv_heads, 1):
            problems.append(f"model: hidden_size={m.hidden_size} must divide by num_heads={m.num_heads}, "
                            f"which must divide by num_kv_heads={m.num_kv_heads}")
        return problems
