"""Config of `koe dialogue build` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DialogueBuildConfig:
    """Spoken QA examples from TinySpeech facts (and WebQuestions/TriviaQA): docs/dialogue.md.

    `koe dialogue build out_dir=runs/dialogue/data unit_tokenizer=runs/tiny/tokenizer`
    """

    out_dir: Path = field(default=Path("dialogue"), metadata={"help": "wav/, examples.jsonl, config and summary"})
    unit_tokenizer: Path | None = field(default=None, metadata={
        "help": "unit tokenizer dir: units of every spoken side (without it examples have audio only)"})
    tinyspeech: bool = field(default=True, metadata={"help": "examples from TinySpeech's facts"})
    num_facts: int = field(default=0, metadata={"help": "use only the first N facts of each split (0 = all 210)"})
    fact_seed: int = field(default=0, metadata={"help": "seed of TinySpeech's facts (tiny's recipe uses 0)"})
    webquestions: Path | None = field(default=None, metadata={"help": "WebQuestions JSON (real-English path)"})
    triviaqa: Path | None = field(default=None, metadata={"help": "TriviaQA subset JSONL (real-English path)"})
    real_num: int = field(default=100, metadata={"help": "questions drawn from each real source (0 = all)"})
    real_eval_fraction: float = field(default=0.2, metadata={"help": "share of real questions held out for eval"})
    question_voices: list[str] = field(default_factory=lambda: [
        "en-us", "en+m3", "en-us+f3", "en-gb-scotland+m1", "en-gb-x-rp+f2", "en-029+m5"], metadata={
        "help": "voices asking training questions (tiny's synth voices, so seen)"})
    heldout_voices: list[str] = field(default_factory=lambda: ["en-gb-x-rp+m2", "en-us+f4"], metadata={
        "help": "voices asking evaluation questions, never heard in training"})
    answer_voice: str = field(default="en+f5", metadata={"help": "the voice every spoken answer is said in"})
    voices_per_fact: int = field(default=2, metadata={"help": "training questions per heard fact (distinct voices)"})
    eval_seen_voice: bool = field(default=False, metadata={
        "help": "also evaluate every fact asked by a seen voice (besides the held-out voice)"})
    rate_wpm: int = field(default=170, metadata={"help": "speaking rate of every side"})
    max_seq_len: int = field(default=256, metadata={
        "help": "the model context: an example whose question and answer tokens cannot fit is listed"})
    seed: int = field(default=0, metadata={"help": "seeds voice picks and real-question sampling"})

    def validate(self) -> list[str]:
        problems = []
        if not self.tinyspeech and self.webquestions is None and self.triviaqa is None:
            problems.append("no source: tinyspeech=false and neither webquestions= nor triviaqa=")
        if not self.question_voices or not self.heldout_voices:
            problems.append("question_voices and heldout_voices must each name a voice")
        overlap = set(self.question_voices) & set(self.heldout_voices)
        if overlap:
            problems.append(f"heldout_voices {sorted(overlap)} are also question_voices")
        if self.answer_voice in set(self.question_voices) | set(self.heldout_voices):
            problems.append(f"answer_voice={self.answer_voice} must differ from every question voice")
        if not 1 <= self.voices_per_fact <= len(self.question_voices):
            problems.append(f"voices_per_fact={self.voices_per_fact} must be in [1, {len(self.question_voices)}]")
        if not 0 < self.real_eval_fraction < 1:
            problems.append(f"real_eval_fraction={self.real_eval_fraction} must be in (0, 1)")
        if self.max_seq_len < 8 or self.real_num < 0 or self.num_facts < 0:
            problems.append("max_seq_len must be >= 8, real_num and num_facts >= 0")
        return problems
