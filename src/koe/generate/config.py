"""Options of `koe generate` (no heavy imports here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal


@dataclasses.dataclass
class GenerateConfig:
    """Generate text and speech from a trained koe model.

    Tasks: `continue` (audio prompt -> more speech), `speech_to_text` (audio prompt -> text), `text_to_speech`
    (text prompt -> speech), `think_then_speak` (text prompt -> text answer, then the answer spoken), `text` (text
    prompt -> text), `spoken_answer` (audio question -> the answer of a `koe sft` model's strategy, see
    docs/dialogue.md). Each generated span is constrained to its modality's tokens (plus eos). The model's own unit
    tokenizer (model/unit_tokenizer) encodes audio prompts and undoes unit BPE before the vocoder.
    """

    model: Path = dataclasses.field(default=Path("model"), metadata={"help": "HF model directory with koe tokens"})
    task: Literal["continue", "speech_to_text", "text_to_speech", "think_then_speak", "text",
                  "spoken_answer"] = dataclasses.field(
        default="continue", metadata={"help": "what to generate from what"})
    prompts: list[str] = dataclasses.field(default_factory=list, metadata={
        "help": "audio paths (continue, speech_to_text) or texts (others); or one .txt/.jsonl file of them"})
    unit_tokenizer: Path | None = dataclasses.field(default=None, metadata={
        "help": "unit tokenizer dir; default: the model's own (model/unit_tokenizer); must match its hash"})
    vocoder: Path | None = dataclasses.field(default=None, metadata={"help": "vocoder folder; no WAV without it"})
    out_dir: Path = dataclasses.field(default=Path("generated"), metadata={"help": "one folder per sample"})
    max_new_tokens: int = dataclasses.field(default=200, metadata={"help": "per generated span"})
    prompt_seconds: float | None = dataclasses.field(default=None, metadata={
        "help": "keep only this much of an audio prompt"})
    temperature: float = dataclasses.field(default=0.8, metadata={"help": "0 means greedy"})
    top_k: int = dataclasses.field(default=50, metadata={"help": "0 disables"})
    top_p: float = dataclasses.field(default=0.95, metadata={"help": "1.0 disables"})
    seed: int = dataclasses.field(default=0, metadata={"help": "sampling seed (per prompt: seed + index)"})
    device: str = dataclasses.field(default="auto", metadata={"help": "cpu, cuda or auto"})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = dataclasses.field(default="auto", metadata={
        "help": "model dtype (auto = bfloat16 on CUDA, float32 on CPU), as koe eval"})

    def validate(self) -> list[str]:
        problems = []
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if self.top_k < 0:
            problems.append("top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        return problems
