"""Config of `koe eval s2s` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class S2SEvalConfig:
    """Spoken QA, speech to speech: answer each evaluation question with the model's strategy, vocode, transcribe.

    `koe eval s2s model=runs/dialogue/sft/interleaved/final examples=runs/dialogue/data vocoder=runs/tiny/vocoder`
    Writes results.json, answers.jsonl, wav/ and eval_s2s_failures.jsonl to out_dir (docs/dialogue.md#evaluation).
    """

    model: str = field(default="", metadata={"help": "a `koe sft` final/ dir (or a plain model with strategy.name)"})
    examples: Path = field(default=Path("dialogue"), metadata={"help": "examples.jsonl or its folder"})
    out_dir: Path = field(default=Path("eval_s2s"), metadata={"help": "results.json, answers.jsonl, wav/"})
    vocoder: Path | None = field(default=None, metadata={"help": "koe vocoder dir: units -> audio (needed unless "
                                                                  "the strategy speaks itself: cascade)"})
    strategy: str | None = field(default=None, metadata={
        "help": "strategy of a model without koe_strategy.json (e.g. cascade on a text LM)"})
    split: str = field(default="eval", metadata={"help": "which examples to answer"})
    answer_asr: Literal["auto", "closed", "open"] = field(default="auto", metadata={
        "help": "how spoken answers are transcribed: closed = pick one of every reference answer of the examples "
                "(TinySpeech's invented names), open = pocketsphinx's en-us LM; auto = closed for tinyspeech"})
    max_new_tokens: int = field(default=160, metadata={"help": "per answer (text and units together)"})
    max_examples: int = field(default=0, metadata={"help": "answer N examples evenly spaced over the split (0 = all)"})
    first_chunk_units: int = field(default=10, metadata={
        "help": "units vocoded for the first audio (its time is added to first-audio ms)"})
    save_wavs: int = field(default=40, metadata={"help": "keep the WAVs of the first N answers (-1 = all)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    num_workers: int = field(default=1, metadata={
        "help": "processes answering examples at once, each with its own copy of the model (vocoding and "
                "pocketsphinx are CPU-bound); the rows are the same for any number"})

    def validate(self) -> list[str]:
        problems = [] if self.model else ["model: required"]
        if self.max_new_tokens < 1 or self.first_chunk_units < 1:
            problems.append("max_new_tokens and first_chunk_units must be >= 1")
        if self.max_examples < 0:
            problems.append(f"max_examples={self.max_examples} must be >= 0")
        if self.num_workers < 1:
            problems.append(f"num_workers={self.num_workers} must be >= 1")
        return problems
