"""Spoken-QA records: the hand-off from a dialogue builder (`koe echox qa`) to `koe s2t train` and `koe echox`.

The format belongs to the speech-aware LM that reads it, so the stage below (koe.s2t) owns it and koe.echox, which
writes and also reads it, depends on koe.s2t and never the other way round. docs/echox.md#qa-records.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from koe.stage import iter_jsonl

SCHEMA_VERSION = 1


@dataclasses.dataclass
class QARecord:
    """One spoken question. Example: {"id": "fact-capital-000-en-us", "role": "eval", "split": "text_only", ...}."""

    id: str
    fact_id: str
    split: str
    role: str
    voice: str
    question_text: str
    question_audio: str
    answer_text: str
    answer: str
    candidates: list[str]
    answer_audio: str | None = None
    answer_units: list[int] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QARecord:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def read_qa(path: str | Path) -> list[QARecord]:
    """Every record of a QA JSONL; a bad line fails the read naming the file and line (koe.stage.iter_jsonl)."""
    return [QARecord.from_dict(obj) for _, obj in iter_jsonl(path, "bad-qa")]
