"""Options of `koe align` (no heavy imports here, so `koe align --help` is instant)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

METHODS = ("pocketsphinx", "textgrid", "ctm", "whisperx")


@dataclasses.dataclass
class AlignConfig:
    """Add word and phone times to a manifest: forced alignment with pocketsphinx, or import another tool's.

    koe align data/manifest.jsonl                                   # -> data/manifest.aligned.jsonl
    koe align data/manifest.jsonl method=textgrid alignments=mfa_out/
    """

    manifest: Path = dataclasses.field(metadata={"help": "input manifest (JSON Lines)"})
    out: Path | None = dataclasses.field(
        default=None,
        metadata={"help": "output manifest; default <input dir>/<input stem>.aligned.jsonl. align_summary.json, "
                          "align_failures.jsonl, align_config.yaml and align_oov.dict are written beside it"},
    )
    method: Literal["pocketsphinx", "textgrid", "ctm", "whisperx"] = dataclasses.field(
        default="pocketsphinx", metadata={"help": "pocketsphinx aligns the audio; the others import alignments"}
    )
    alignments: Path | None = dataclasses.field(
        default=None, metadata={"help": "file or folder of TextGrid / CTM / WhisperX JSON files (importers only)"}
    )
    num_workers: int = dataclasses.field(default=1, metadata={"help": "aligner processes (pocketsphinx)"})
    voice: str = dataclasses.field(
        default="en-us", metadata={"help": "espeak-ng voice that pronounces words missing from the CMU dictionary"}
    )
    beam: float = dataclasses.field(default=1e-300, metadata={"help": "pocketsphinx HMM beam (wide: see docs)"})
    wbeam: float = dataclasses.field(default=1e-300, metadata={"help": "pocketsphinx word-exit beam"})
    pbeam: float = dataclasses.field(default=1e-300, metadata={"help": "pocketsphinx phone-transition beam"})
    lpbeam: float = dataclasses.field(default=1e-300, metadata={"help": "pocketsphinx last-phone beam"})
    lponlybeam: float = dataclasses.field(default=1e-300, metadata={"help": "pocketsphinx last-phone-only beam"})
    min_pause_s: float = dataclasses.field(
        default=0.1, metadata={"help": "shorter silences between words (mostly stop closures) join the word before"}
    )
    max_duration_s: float = dataclasses.field(
        default=60.0, metadata={"help": "longer utterances fail as 'too long' (alignment cost grows with length)"}
    )
    max_fit_deficit: float = dataclasses.field(
        default=30.0, metadata={"help": "mismatch when the free phone-loop decode scores this much better per frame "
                                        "than the forced alignment (see docs/align.md)"}
    )
    max_score_drop: float = dataclasses.field(
        default=22.0, metadata={"help": "mismatch when the fit deficit is this far above its speaker's (or the run's) "
                                        "median"}
    )
    max_edge_speech_s: float = dataclasses.field(
        default=0.03, metadata={"help": "mismatch when more loud audio than this lies before the first or after the "
                                        "last aligned word (words missing from the transcript)"}
    )
    max_edge_gain_start: float = dataclasses.field(
        default=400.0, metadata={"help": "mismatch when free phones allowed before the first word raise the path score "
                                         "by more than this (missing first words; 0: off; see docs/align.md)"}
    )
    max_edge_gain_end: float = dataclasses.field(
        default=1000.0, metadata={"help": "the same after the last word (missing last words; 0: off)"}
    )
    min_corpus_size: int = dataclasses.field(
        default=20, metadata={"help": "utterances a speaker (or the run) needs before its median is trusted"}
    )
    max_squeezed_fraction: float = dataclasses.field(
        default=0.3, metadata={"help": "mismatch when more of the words than this sit at their minimum duration"}
    )
    min_squeezed_words: int = dataclasses.field(
        default=3, metadata={"help": "... and at least this many of them (2 of a 6-word window is not enough)"}
    )
    force: bool = dataclasses.field(default=False, metadata={"help": "redo even if the output is up to date"})

    def validate(self) -> list[str]:
        problems = []
        if self.method != "pocketsphinx" and self.alignments is None:
            problems.append(f"method={self.method} needs alignments=<file or folder>")
        if self.method == "pocketsphinx" and self.alignments is not None:
            problems.append("alignments= is only read by the importers (method=textgrid|ctm|whisperx)")
        if self.num_workers < 1:
            problems.append(f"num_workers={self.num_workers} must be >= 1")
        if self.min_pause_s < 0:
            problems.append(f"min_pause_s={self.min_pause_s} must be >= 0")
        if self.max_duration_s <= 0:
            problems.append(f"max_duration_s={self.max_duration_s} must be > 0")
        if not 0 <= self.max_squeezed_fraction <= 1:
            problems.append(f"max_squeezed_fraction={self.max_squeezed_fraction} must be in [0, 1]")
        if self.min_squeezed_words < 1:
            problems.append(f"min_squeezed_words={self.min_squeezed_words} must be >= 1")
        if self.max_score_drop <= 0:
            problems.append(f"max_score_drop={self.max_score_drop} must be > 0")
        if self.max_fit_deficit <= 0:
            problems.append(f"max_fit_deficit={self.max_fit_deficit} must be > 0")
        for name in ("max_edge_gain_start", "max_edge_gain_end"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must be >= 0 (0: off)")
        if self.max_edge_speech_s < 0:
            problems.append(f"max_edge_speech_s={self.max_edge_speech_s} must be >= 0")

        return problems

    @property
    def out_path(self) -> Path:
        return self.out if self.out is not None else self.manifest.with_name(f"{self.manifest.stem}.aligned.jsonl")
