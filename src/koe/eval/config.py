"""Config of `koe eval` (no heavy imports: `koe eval --help` must stay instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class EvalConfig:
    """Zero-shot evaluation: pair accuracy, cloze, spoken QA and per-modality perplexity, in one run.

    `bench` takes benchmark directories (each with items.jsonl) and/or folders holding several of them:
    `koe eval runs/tiny/interleaved/final bench=[bench]` (the model's own unit tokenizer encodes the speech).
    Results go to out_dir/results.json and out_dir/results.md; docs/evaluation.md specifies every rule.
    """

    model: str = field(default="", metadata={"help": "HF causal-LM directory (or hub id) with the extended tokenizer"})
    bench: list[str] | str = field(default_factory=list,
                                   metadata={"help": "benchmark dirs, or folders of them (a list or one path)"})
    out_dir: Path = field(default=Path("eval"), metadata={"help": "where results.json and results.md go"})
    unit_tokenizer: Path | None = field(default=None, metadata={
        "help": "unit tokenizer dir; default: the model's own (model/unit_tokenizer); must match its hash"})
    reduce: Literal["mean", "sum"] = field(default="mean",
                                           metadata={"help": "side score: mean (default) or sum of token log-probs"})
    modalities: list[str] = field(default_factory=lambda: ["speech", "text"],
                                  metadata={"help": "modalities scored; cross-modal conditions need both"})
    cross_modal: bool = field(default=True, metadata={"help": "also score cloze/QA with prompt and answer in "
                                                              "different modalities"})
    mask_modality: bool = field(default=True, metadata={"help": "log-softmax over the scored side's modality only"})
    qa_generate: bool = field(default=True, metadata={"help": "also answer QA greedily and score exact match"})
    max_new_tokens: int = field(default=16, metadata={"help": "greedy answer length limit (tokens)"})
    max_groups: int = field(default=0, metadata={"help": "evaluate only the first N groups per benchmark (0 = all)"})
    ppl_data: Path | None = field(default=None, metadata={"help": "token-shard dir (koe data build) for perplexity"})
    ppl_split: str = field(default="valid", metadata={"help": "split of ppl_data to read"})
    ppl_max_docs: int = field(default=200, metadata={"help": "documents read for perplexity (0 = all)"})
    bootstrap: int = field(default=1000, metadata={"help": "bootstrap resamples for confidence intervals"})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of the intervals"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap"})
    batch_tokens: int = field(default=0, metadata={
        "help": "padded tokens per forward batch (0 = 16384 on CUDA, 4096 on CPU)"})
    max_length: int = field(default=0, metadata={"help": "longest sequence scored (0 = the model's max positions)"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda, cuda:1 ..."})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(default="auto", metadata={
        "help": "model dtype (auto = bfloat16 on CUDA, float32 on CPU)"})
    oov_warn_share: float = field(default=0.1, metadata={
        "help": "warn when more than this share of a benchmark's word types is absent from the training text"})
    train_text_vocab: Path | None = field(default=None, metadata={
        "help": "data dir (or text_vocab.json) of the training text; default: found from the model's train config"})

    def validate(self) -> list[str]:
        problems = []
        if not self.model:
            problems.append("model: required (a model directory or hub id)")
        if not self.bench and self.ppl_data is None:
            problems.append("bench: give at least one benchmark directory (or ppl_data)")
        bad = [m for m in self.modalities if m not in ("speech", "text")]
        if bad or not self.modalities:
            problems.append(f"modalities={self.modalities}: each must be 'speech' or 'text', at least one")
        for name in ("max_new_tokens", "bootstrap"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if self.batch_tokens < 0:
            problems.append(f"batch_tokens={self.batch_tokens} must be >= 0 (0 = by device)")
        if not 0 <= self.oov_warn_share <= 1:
            problems.append(f"oov_warn_share={self.oov_warn_share} must be in [0, 1]")
        if not 0 < self.confidence < 1:
            problems.append(f"confidence={self.confidence} must be in (0, 1)")
        return problems

    @property
    def bench_list(self) -> list[str]:
        return [self.bench] if isinstance(self.bench, str) else list(self.bench)
