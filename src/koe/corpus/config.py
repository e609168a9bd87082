"""Config of `koe corpus import` (no heavy imports, so `koe --help` stays instant).

    koe corpus import dir path=data/my_corpus out_dir=corpus/mine valid_fraction=0.05
    koe corpus import librispeech path=LibriSpeech out_dir=corpus/libri
    koe corpus import pattern path=../shared/data/fsdd/recordings out_dir=corpus/fsdd \
        pattern='{text}_{speaker}_{take}' split_field=take 'split_map={0-4: test}' \
        'text_map={0: zero, 1: one, 2: two, 3: three, 4: four, 5: five, 6: six, 7: seven, 8: eight, 9: nine}'
    koe corpus import hf path=my_saved_dataset out_dir=corpus/hf hf_text_column=sentence
    koe corpus import vad path=long_recordings out_dir=corpus/lectures max_segment_s=15

See docs/corpus.md for each source and every reason a file can be listed as failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SPLIT_NAMES = ("train", "valid", "test")
PATTERN_FIELD = re.compile(r"\{(\w+)\}")


@dataclass
class ImportConfig:
    """Import audio and transcripts into a manifest; every file is probed and bad ones are listed with a reason."""

    source: Literal["dir", "librispeech", "pattern", "hf", "vad"] = field(
        metadata={"help": "importer: dir (sidecar .txt/.lab), librispeech, pattern (labels in file names), "
                          "hf (datasets save_to_disk folder or local data files), vad (cut long recordings)"}
    )
    path: Path | None = field(default=None, metadata={"help": "input folder, file or HF dataset (required)"})
    out_dir: Path = field(default=Path("corpus"), metadata={"help": "where manifest.jsonl, config and summary go"})
    glob: str | None = field(
        default=None, metadata={"help": "only files matching this glob relative to path (e.g. '*_george_*.wav')"}
    )
    audio_extensions: list[str] = field(
        default_factory=lambda: [".wav", ".flac", ".ogg", ".mp3"],
        metadata={"help": "suffixes of audio files to import (dir, pattern, vad), case-insensitive"},
    )
    pattern: str = field(
        default="{text}_{speaker}_{take}",
        metadata={"help": "source=pattern: file path relative to `path`, without suffix; {text} and {speaker} fill "
                          "those fields, any other {field} goes into meta"},
    )
    text_map: dict[str, str] = field(
        default_factory=dict, metadata={"help": "source=pattern: replace a {text} value, e.g. {0: zero}"}
    )
    split_field: str | None = field(
        default=None, metadata={"help": "meta field (or 'speaker') whose value decides the split via split_map"}
    )
    split_map: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "value -> split; a key 'a-b' is an inclusive integer range, e.g. {0-4: test}; "
                          "unmatched values keep the importer's split (train)"},
    )
    valid_fraction: float = field(
        default=0.0, metadata={"help": "fraction of the train pool moved to valid (seeded, after split_map)"}
    )
    test_fraction: float = field(
        default=0.0, metadata={"help": "fraction of the train pool moved to test (seeded, after split_map)"}
    )
    split_by: Literal["utterance", "speaker", "recording"] = field(
        default="utterance", metadata={"help": "unit of the random split: keep speakers or recordings on one side"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the random valid/test split"})
    max_duration_s: float | None = field(
        default=60.0, metadata={"help": "longer files are listed as failed (cut them with source=vad); null = no limit"}
    )
    check_samples: bool = field(
        default=True,
        metadata={"help": "decode every file to catch truncation and NaN/Inf samples (headers alone cannot)"},
    )
    require_text: bool = field(
        default=True, metadata={"help": "dir/pattern/hf: list audio without a transcript as failed (else text=null)"}
    )
    hf_audio_column: str = field(default="audio", metadata={"help": "source=hf: audio column"})
    hf_text_column: str = field(default="text", metadata={"help": "source=hf: transcript column"})
    hf_speaker_column: str = field(default="speaker_id", metadata={"help": "source=hf: speaker column, if present"})
    hf_id_column: str = field(default="id", metadata={"help": "source=hf: id column, if present (else split-index)"})
    vad_threshold: float = field(default=0.5, metadata={"help": "source=vad: silero speech probability threshold"})
    min_segment_s: float = field(default=1.0, metadata={"help": "source=vad: shorter speech segments are dropped"})
    max_segment_s: float = field(default=20.0, metadata={"help": "source=vad: longer segments are cut at pauses"})
    merge_gap_s: float = field(
        default=0.3, metadata={"help": "source=vad: pauses shorter than this do not end a segment"}
    )
    vad_pad_s: float = field(default=0.05, metadata={"help": "source=vad: padding added around each segment"})

    def validate(self) -> list[str]:
        problems = []
        if self.path is None:
            problems.append("path is required (the input folder, file or dataset)")
        for name in ("valid_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name}={getattr(self, name)} must be in [0, 1)")
        if self.valid_fraction + self.test_fraction >= 1.0:
            problems.append("valid_fraction + test_fraction must be < 1")
        bad = {k: v for k, v in self.split_map.items() if v not in SPLIT_NAMES}
        if bad:
            problems.append(f"split_map values {bad} must be one of {SPLIT_NAMES}")
        if self.split_map and not self.split_field:
            problems.append("split_map needs split_field (the field whose value it maps)")
        if self.source == "pattern":
            names = PATTERN_FIELD.findall(self.pattern)
            if not names:
                problems.append(f"pattern={self.pattern!r} has no {{field}}")
            if len(names) != len(set(names)):
                problems.append(f"pattern={self.pattern!r} repeats a field")
            if PATTERN_FIELD.sub("", self.pattern).count("{") or PATTERN_FIELD.sub("", self.pattern).count("}"):
                problems.append(f"pattern={self.pattern!r}: fields are {{name}} with letters, digits or _")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            problems.append(f"max_duration_s={self.max_duration_s} must be > 0 or null")
        if not 0 < self.min_segment_s < self.max_segment_s:
            problems.append(f"need 0 < min_segment_s ({self.min_segment_s}) < max_segment_s ({self.max_segment_s})")
        if self.source == "vad" and self.max_duration_s is not None and self.max_segment_s > self.max_duration_s:
            problems.append(f"max_segment_s={self.max_segment_s} exceeds max_duration_s={self.max_duration_s}")
        if self.merge_gap_s < 0 or self.vad_pad_s < 0:
            problems.append("merge_gap_s and vad_pad_s must be >= 0")
        if not 0 < self.vad_threshold < 1:
            problems.append(f"vad_threshold={self.vad_threshold} must be in (0, 1)")
        return problems
