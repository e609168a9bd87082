"""Benchmark items: one JSON line per (question or pair, voice), the hand-off from `koe bench build` to `koe eval`.

    {"schema_version": 1, "id": "blimp-adjunct_island-0007@en-us", "group": "blimp-adjunct_island-0007",
     "benchmark": "syntactic-blimp", "task": "pair", "source": "blimp", "category": "adjunct_island",
     "voice": "en-us", "prompt": null,
     "candidates": [{"text": "Who should Derek hug after shocking Richard?", "audio": "audio/en-us/3f0c...wav"},
                    {"text": "Who should Derek hug Richard after shocking?", "audio": "audio/en-us/9a1d...wav"}],
     "label": 0, "references": [], "meta": {"pair_id": "7"}}

A benchmark directory holds `items.jsonl`, `bench.json` (a `BenchInfo`), the 16 kHz WAVs under `audio/<voice>/`
(named by a hash of what was spoken, so a text spoken twice by one voice is stored once), `config.yaml` and, once a
unit tokenizer has met it, `tokens/<tokenizer hash>.jsonl`. `task` decides how `koe eval` scores an item:

- `pair`: no prompt, candidates [good, bad] (label 0);
- `cloze`: a prompt (story) and candidate endings, `label` the right one;
- `qa`: a prompt (question), candidate answers for likelihood ranking, `references` (answer + aliases) for
  generative exact match.

A side whose `text` is null has no orthography (a pseudo-word made from phones): its text conditions are n/a.
See docs/evaluation.md for every field.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, atomic_write_text, iter_jsonl, write_json

SCHEMA_VERSION = 1
TASKS = ("pair", "cloze", "qa")
ITEMS_FILE = "items.jsonl"
INFO_FILE = "bench.json"


@dataclasses.dataclass
class Side:
    """One spoken/written piece of an item: its text (null when it has no spelling) and its WAV (bench-relative)."""

    text: str | None
    audio: str | None = None
    phonemes: str | None = None  # espeak phoneme mnemonics when the audio was made from phonemes ([[...]] input)

    def to_dict(self) -> dict[str, Any]:
        d = {"text": self.text, "audio": self.audio}
        if self.phonemes is not None:
            d["phonemes"] = self.phonemes
        return d


@dataclasses.dataclass
class BenchItem:
    """One line of items.jsonl: a pair, cloze story or question as spoken by one voice."""

    id: str
    group: str  # shared by the voices of one pair/story/question: the unit that is averaged over voices
    benchmark: str
    task: str
    source: str
    category: str
    voice: str
    candidates: list[Side]
    label: int = 0
    prompt: Side | None = None
    references: list[str] = dataclasses.field(default_factory=list)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def sides(self) -> list[Side]:
        return ([self.prompt] if self.prompt is not None else []) + list(self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "id": self.id, "group": self.group,
                "benchmark": self.benchmark, "task": self.task, "source": self.source, "category": self.category,
                "voice": self.voice, "prompt": self.prompt.to_dict() if self.prompt else None,
                "candidates": [c.to_dict() for c in self.candidates], "label": self.label,
                "references": self.references, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> BenchItem:
        """Parse and check one line; KoeInputError names `where` and every problem."""
        required = ("id", "group", "benchmark", "task", "source", "category", "voice", "candidates")
        problems = [f"missing {k}" for k in required if k not in d]
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            problems.append(f"unknown field(s) {sorted(unknown)}")
        if problems:
            raise KoeInputError(f"bad-item: {where}: " + "; ".join(problems))
        if d.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise KoeInputError(f"bad-item: {where}: schema_version {d['schema_version']} > {SCHEMA_VERSION}")
        try:
            item = cls(**{**d, "prompt": _side(d.get("prompt")), "candidates": [_side(c) for c in d["candidates"]]})
        except (TypeError, AttributeError) as e:
            raise KoeInputError(f"bad-item: {where}: {e}") from None
        if item.task not in TASKS:
            raise KoeInputError(f"bad-item: {where}: task {item.task!r} is not one of {TASKS}")
        if len(item.candidates) < 2 or not 0 <= item.label < len(item.candidates):
            raise KoeInputError(f"bad-item: {where}: needs >= 2 candidates and 0 <= label < {len(item.candidates)}")
        if (item.task == "pair") != (item.prompt is None):
            raise KoeInputError(f"bad-item: {where}: a {item.task} item {'has' if item.prompt else 'lacks'} a prompt")
        return item


def _side(d: dict[str, Any] | None) -> Side | None:
    return None if d is None else Side(**d)


@dataclasses.dataclass
class BenchInfo:
    """bench.json: what a benchmark directory holds and how it was made."""

    name: str
    tasks: list[str]
    source: str
    voices: list[str]
    num_groups: int
    num_items: int
    sample_rate_hz: int = 16_000
    description: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchInfo:
        return cls(**d)


def write_items(bench_dir: str | Path, items: list[BenchItem], info: BenchInfo) -> None:
    """Write items.jsonl and bench.json atomically; item ids must be unique."""
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise KoeInputError(f"duplicate-item: {bench_dir}: item id {it.id!r} appears twice")
        seen.add(it.id)
    text = "".join(json.dumps(it.to_dict(), ensure_ascii=False) + "\n" for it in items)
    atomic_write_text(Path(bench_dir) / ITEMS_FILE, text)
    write_json(Path(bench_dir) / INFO_FILE, info.to_dict())


def read_items(bench_dir: str | Path) -> list[BenchItem]:
    """All items of a benchmark directory; a bad line raises KoeInputError naming file and line."""
    path = Path(bench_dir) / ITEMS_FILE
    if not path.exists():
        raise KoeInputError(f"no-bench: {path}: items.jsonl not found (run `koe bench build`)")
    return [BenchItem.from_dict(d, where) for where, d in iter_jsonl(path, kind="bad-item")]


def read_info(bench_dir: str | Path) -> BenchInfo:
    path = Path(bench_dir) / INFO_FILE
    if not path.exists():
        raise KoeInputError(f"no-bench: {path}: bench.json not found (run `koe bench build`)")
    return BenchInfo.from_dict(json.loads(path.read_text()))
