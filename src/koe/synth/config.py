"""Config of `koe synth` (no heavy imports, so `koe --help` stays instant).

    koe synth out_dir=data/synth num_items=2000                       # TinySpeech text, 12 voices
    koe synth source=texts.jsonl out_dir=data/mine voices=[en-us,en+m3] voices_per_item=2
    koe synth source=lines.txt out_dir=data/lines rate_wpm_range=[140,200] num_workers=4

See docs/synth.md for how word and phone timings are derived and which voices exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Base voices and variants mixed so that neighbouring voices differ in accent, sex and synthesis method.
DEFAULT_VOICES = [
    "en-us", "en+m3", "en-us+f3", "en-gb-scotland+m1", "en-gb-x-rp+f2", "en-029+m5",
    "en-us-nyc+m7", "en+f5", "en-gb-scotland+klatt", "en-us+klatt2", "en-gb-x-rp+m8", "en-029+f4",
]


@dataclass
class SynthConfig:
    """Synthesize text items with espeak-ng voices; every utterance gets exact word and phone timings."""

    out_dir: Path = field(default=Path("synth"), metadata={"help": "where wav/, manifest.jsonl, config and summary go"})
    source: str = field(
        default="tinyspeech",
        metadata={"help": "'tinyspeech' (generated sentences, stories, facts) or a .txt (one item per line) or "
                          ".jsonl (TextItem per line) file"},
    )
    num_items: int = field(default=1000, metadata={"help": "source=tinyspeech: number of text items to generate"})
    voices: list[str] = field(
        default_factory=lambda: list(DEFAULT_VOICES),
        metadata={"help": "espeak voices, 'base' or 'base+variant' (en-us+f3); each item draws from these"},
    )
    skip_fact_splits: list[str] = field(
        default_factory=lambda: ["text_only"],
        metadata={"help": "items whose meta.fact_split is listed are not spoken (TinySpeech's text-only facts must "
                          "reach the model in text alone, so that speech QA on them measures transfer)"},
    )
    voices_per_item: int = field(
        default=1, metadata={"help": "distinct voices per text item (one utterance each, ids end in the voice)"}
    )
    rate_wpm_range: list[int] = field(
        default_factory=lambda: [145, 205], metadata={"help": "speaking rate, words/minute, drawn uniformly [lo, hi]"}
    )
    pitch_range: list[int] = field(
        default_factory=lambda: [35, 65], metadata={"help": "espeak base pitch 0-100, drawn uniformly [lo, hi]"}
    )
    seed: int = field(default=0, metadata={"help": "seed of TinySpeech and of every item's voice/rate/pitch draw"})
    num_workers: int = field(default=2, metadata={"help": "worker processes (output does not depend on it)"})
    force: bool = field(default=False, metadata={"help": "redo a finished run with the same config"})

    def validate(self) -> list[str]:
        problems = []
        if self.source != "tinyspeech" and not self.source.endswith((".txt", ".jsonl")):
            problems.append(f"source={self.source!r} must be 'tinyspeech' or a .txt/.jsonl file")
        if self.num_items < 1:
            problems.append(f"num_items={self.num_items} must be >= 1")
        if not self.voices:
            problems.append("voices must name at least one voice")
        if len(set(self.voices)) != len(self.voices):
            problems.append(f"voices={self.voices} has duplicates")
        if not 1 <= self.voices_per_item <= max(1, len(set(self.voices))):
            problems.append(f"voices_per_item={self.voices_per_item} must be between 1 and the number of voices")
        for name, (lo, hi), (low, high) in (("rate_wpm_range", self._pair(self.rate_wpm_range), (80, 450)),
                                            ("pitch_range", self._pair(self.pitch_range), (0, 100))):
            if not low <= lo <= hi <= high:
                problems.append(f"{name}={[lo, hi]} must be [lo, hi] with {low} <= lo <= hi <= {high}")
        if self.num_workers < 1:
            problems.append(f"num_workers={self.num_workers} must be >= 1")
        return problems

    @staticmethod
    def _pair(values: list[int]) -> tuple[int, int]:
        return (values[0], values[1]) if len(values) == 2 else (1, 0)  # (1, 0) fails the range check
