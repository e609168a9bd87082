"""Config of `koe bench build` (no heavy imports: `koe bench build --help` must stay instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("lexical", "syntactic", "semantic", "qa")


@dataclass
class BenchBuildConfig:
    """Build spoken benchmarks: one directory per (kind, source) under out_dir, each with items.jsonl and WAVs.

    Sources left unset are skipped; TinySpeech sources are on by default, so `koe bench build` alone builds the
    four TinySpeech benchmarks. The default voices are espeak-ng voices that may also be training voices: pass
    other voices to test generalisation to unseen speakers.
    """

    out_dir: Path = field(default=Path("bench"), metadata={"help": "folder that receives one dir per benchmark"})
    kinds: list[str] = field(default_factory=lambda: list(KINDS),
                             metadata={"help": f"benchmark kinds to build, of {list(KINDS)}"})
    voices: list[str] = field(default_factory=lambda: ["en-us", "en+m3", "en-us+f3"],
                              metadata={"help": "espeak-ng voices; every side is spoken by each"})
    rate_wpm: int = field(default=160, metadata={"help": "espeak-ng speaking rate, words per minute"})
    pitch: int = field(default=50, metadata={"help": "espeak-ng pitch, 0-99"})
    seed: int = field(default=0, metadata={"help": "seed of every sample, distractor and pseudo-word"})
    tinyspeech: bool = field(default=True, metadata={"help": "build the TinySpeech benchmark of each kind"})
    tiny_num: int = field(default=200, metadata={"help": "TinySpeech pairs per kind (lexical/syntactic/semantic)"})
    wordlist: Path | None = field(default=None, metadata={"help": "lexicon (`word [count]` lines) for sWUGGY-style"})
    wordlist_num: int = field(default=200, metadata={"help": "words sampled from the lexicon (0 = all)"})
    blimp: Path | None = field(default=None, metadata={"help": "BLiMP jsonl file or folder (sBLIMP-style)"})
    blimp_per_paradigm: int = field(default=20, metadata={"help": "pairs sampled per BLiMP paradigm (0 = all)"})
    storycloze: Path | None = field(default=None, metadata={"help": "StoryCloze CSV (sStoryCloze + tStoryCloze)"})
    storycloze_num: int = field(default=0, metadata={"help": "stories sampled (0 = all)"})
    webquestions: Path | None = field(default=None, metadata={"help": "WebQuestions JSON array file"})
    triviaqa: Path | None = field(default=None, metadata={"help": "TriviaQA jsonl ({context, answer, aliases})"})
    qa_num: int = field(default=200, metadata={"help": "questions sampled per QA source (0 = all)"})
    qa_num_candidates: int = field(default=4, metadata={"help": "answers ranked per question (1 right + distractors)"})
    unit_tokenizer: Path | None = field(default=None,
                                        metadata={"help": "unit tokenizer dir: also tokenize the audio into the cache"})
    model: Path | None = field(default=None, metadata={
        "help": "model dir: tokenize the audio with its own unit tokenizer (unit_tokenizer= must then match it)"})
    force: bool = field(default=False, metadata={"help": "rebuild benchmarks already built with this config"})

    def validate(self) -> list[str]:
        problems = [f"kinds: unknown kind {k!r} (known: {list(KINDS)})" for k in self.kinds if k not in KINDS]
        if not self.voices:
            problems.append("voices: at least one voice is needed")
        if len(set(self.voices)) != len(self.voices):
            problems.append(f"voices: duplicates in {self.voices}")
        for name in ("tiny_num", "wordlist_num", "blimp_per_paradigm", "storycloze_num", "qa_num"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must be >= 0")
        if self.qa_num_candidates < 2:
            problems.append(f"qa_num_candidates={self.qa_num_candidates} must be >= 2")
        if not 0 <= self.pitch <= 99:
            problems.append(f"pitch={self.pitch} must be in 0..99")
        if self.rate_wpm < 80:
            problems.append(f"rate_wpm={self.rate_wpm} must be >= 80")
        return problems
