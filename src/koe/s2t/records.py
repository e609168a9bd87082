"""QA records (docs/echox.md#qa-records): one spoken question per JSONL line, written by `koe echox qa`, read by
`koe s2t train` and `koe echox t2c/echo/eval`.

    records = read_qa("runs/echox/qa.jsonl")
    train = [r for r in records if r.role == "train"]

The record lives here, below both readers, so that koe.s2t needs nothing from koe.echox (tests/core/test_layering.py).
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
    return [QARecord.from_dict(obj) for _, obj in iter_jsonl(path, "bad-qa")]
