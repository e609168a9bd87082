"""The corpus manifest: one JSON line per utterance, the hand-off from import/synth/align to every later stage.

    {"schema_version": 1, "id": "tiny-000042-en-us+f3", "audio_path": "wav/tiny-000042-en-us+f3.wav",
     "sample_rate_hz": 16000, "duration_s": 2.41, "offset_s": 0.0, "speaker": "en-us+f3",
     "text": "the red dog runs", "words": [["the", 0.05, 0.16], ["red", 0.16, 0.41], ...],
     "phones": [["dh", 0.05, 0.09], ...], "split": "train", "meta": {"voice": "en-us+f3"}}

Written by `koe corpus import`, `koe synth`, `koe align`; read by `koe align`, `koe units`, `koe data build` and
`koe bench build`. `audio_path` is relative to the manifest's folder unless absolute. `offset_s`/`duration_s` select a
segment of a longer file (VAD cuts). `words`/`phones` are `[label, start_s, end_s]` relative to the segment start, or
null when unknown. See docs/formats.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, atomic_write_text, iter_jsonl

SCHEMA_VERSION = 1
SPLITS = ("train", "valid", "test")

Span = tuple[str, float, float]


@dataclasses.dataclass
class Utterance:
    """One manifest line. Times in seconds from the start of the segment."""

    id: str
    audio_path: str
    sample_rate_hz: int
    duration_s: float
    speaker: str = "unknown"
    text: str | None = None
    words: list[Span] | None = None
    phones: list[Span] | None = None
    split: str = "train"
    offset_s: float = 0.0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("words", "phones"):
            if d[key] is not None:
                d[key] = [[w, round(float(s), 4), round(float(e), 4)] for w, s, e in d[key]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> Utterance:
        """Parse and check one line; raise KoeInputError naming `where` and the problem."""
        problems = [f"missing {k}" for k in ("id", "audio_path", "sample_rate_hz", "duration_s") if k not in d]
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            problems.append(f"unknown field(s) {sorted(unknown)}")
        if problems:
            raise KoeInputError(f"{where}: " + "; ".join(problems))
        if d.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise KoeInputError(f"{where}: schema_version {d['schema_version']} is newer than {SCHEMA_VERSION}")
        utt = cls(**d)
        for key in ("words", "phones"):
            spans = getattr(utt, key)
            if spans is not None:
                setattr(utt, key, [_check_span(s, f"{where} ({utt.id}) {key}") for s in spans])
        if utt.split not in SPLITS:
            raise KoeInputError(f"{where} ({utt.id}): split {utt.split!r} is not one of {SPLITS}")
        return utt

    def resolve_audio(self, manifest_dir: str | Path) -> Path:
        p = Path(self.audio_path)
        return p if p.is_absolute() else Path(manifest_dir) / p


def _check_span(span: Any, where: str) -> Span:
    if not (isinstance(span, (list, tuple)) and len(span) == 3):
        raise KoeInputError(f"{where}: span {span!r} is not [label, start_s, end_s]")
    label, start, end = span
    if not (float(start) <= float(end)):
        raise KoeInputError(f"{where}: span {span!r} ends before it starts")
    return (str(label), float(start), float(end))


def read_manifest(path: str | Path) -> list[Utterance]:
    """All utterances of a manifest; any bad line raises KoeInputError naming file and line."""
    return list(iter_manifest(path))


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    for where, d in iter_jsonl(path, kind="bad-manifest"):
        yield Utterance.from_dict(d, where=where)


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    """Write atomically; ids must be unique. Returns the number of lines."""
    seen: set[str] = set()
    lines = []
    for u in utterances:
        if u.id in seen:
            raise KoeInputError(f"{path}: duplicate utterance id {u.id!r}")
        seen.add(u.id)
        lines.append(json.dumps(u.to_dict(), ensure_ascii=False))
    atomic_write_text(path, "".join(x + "\n" for x in lines))
    return len(lines)
