"""Unit shards: the hand-off from `koe units encode` to `koe data build` and `koe units stats`.

    out_dir/meta.json          {"schema_version": 1, "tokenizer_hash": "3f2a9c0d1e2b4a5f", "tokenizer_dir": "tok/h500",
                                "num_units": 500, "frame_rate_hz": 50.0, "dedup": true,
                                "manifest": "data/manifest.jsonl", "num_shards": 2, "num_utterances": 1998}
    out_dir/shard-00000.npz    ids (unicode [N]), offsets (int64 [N+1]), units (int32), durations (int32)
                               [+ segments (int32 [sum M, 2]) for syllable units]

Record i of a shard is ids[i] with units[offsets[i]:offsets[i+1]] (de-duplicated unit ids) and the same slice of
durations (frames per unit, >= 1; a unit starts at sum(durations[:j]) / frame_rate_hz seconds, see `unit_times`).
Syllable units (meta.json "segmentation": "mincut" | "greedy", "dedup": false) also store each token's true segment
[start, end) in frames; their durations run from one segment's start to the next (koe.units.syllables).

    for rec in read_unit_shards("units/h500"):       # UnitRecord(id, units, durations), shard by shard
        start_s, end_s = unit_times(rec.durations, meta.frame_rate_hz)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from koe.stage import KoeInputError, write_json

SCHEMA_VERSION = 1
META_FILE = "meta.json"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


@dataclasses.dataclass
class UnitRecord:
    """One utterance's units, their durations in frames and, for syllable units, their segments."""

    id: str
    units: np.ndarray  # int32 [M]
    durations: np.ndarray  # int32 [M], each >= 1
    segments: np.ndarray | None = None  # int32 [M, 2]: true [start, end) frames of each syllable token

    def __post_init__(self) -> None:
        self.units = np.asarray(self.units, dtype=np.int32)
        self.durations = np.asarray(self.durations, dtype=np.int32)
        if self.units.shape != self.durations.shape or self.units.ndim != 1:
            raise ValueError(f"{self.id}: units {self.units.shape} and durations {self.durations.shape} differ")
        if self.segments is not None:
            self.segments = np.asarray(self.segments, dtype=np.int32).reshape(-1, 2)
            if len(self.segments) != len(self.units):
                raise ValueError(f"{self.id}: {len(self.segments)} segments for {len(self.units)} units")


@dataclasses.dataclass
class UnitsMeta:
    """meta.json of a unit-shard folder."""

    tokenizer_hash: str
    tokenizer_dir: str
    num_units: int
    frame_rate_hz: float
    manifest: str
    num_shards: int
    num_utterances: int
    dedup: bool = True
    schema_version: int = SCHEMA_VERSION
    segmentation: str | None = None  # "mincut" | "greedy" for syllable units (dedup false); absent for frame units

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["segmentation"] is None:
            del d["segmentation"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = META_FILE) -> UnitsMeta:
        if d.get("schema_version", 0) > SCHEMA_VERSION:
            raise KoeInputError(f"{where}: schema_version {d['schema_version']} is newer than {SCHEMA_VERSION}")
        try:
            return cls(**d)
        except TypeError as e:
            raise KoeInputError(f"{where}: not unit-shard metadata ({e})") from None


def write_unit_shard(path: str | Path, records: Iterable[UnitRecord]) -> int:
    """Write one shard atomically (temporary file, then rename); returns the number of records."""
    records = list(records)
    path = Path(path)
    lengths = [len(r.units) for r in records]
    arrays = {
        "ids": np.array([r.id for r in records], dtype=np.str_),
        "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        "units": np.concatenate([r.units for r in records]) if records else np.zeros(0, np.int32),
        "durations": np.concatenate([r.durations for r in records]) if records else np.zeros(0, np.int32),
    }
    with_segments = {r.segments is not None for r in records}
    if len(with_segments) > 1:
        raise ValueError(f"{path}: some records have segments and some do not")
    if with_segments == {True}:
        arrays["segments"] = np.concatenate([r.segments for r in records])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return len(records)


def read_unit_shard(path: str | Path) -> Iterator[UnitRecord]:
    """Records of one shard, in stored order; KoeInputError if the file is not a unit shard."""
    try:
        with np.load(path) as z:
            ids, offsets, units, durations = z["ids"], z["offsets"], z["units"], z["durations"]
            segments = z["segments"] if "segments" in z.files else None
    except (OSError, KeyError, ValueError) as e:
        raise KoeInputError(f"unreadable: {path}: not a unit shard ({e})") from None
    if len(offsets) != len(ids) + 1 or offsets[-1] != len(units) or len(units) != len(durations):
        raise KoeInputError(f"corrupt: {path}: offsets, units and durations do not line up")
    if segments is not None and segments.shape != (len(units), 2):
        raise KoeInputError(f"corrupt: {path}: segments {segments.shape} do not match {len(units)} units")
    for i, utt_id in enumerate(ids):
        a, b = offsets[i], offsets[i + 1]
        yield UnitRecord(str(utt_id), units[a:b], durations[a:b], None if segments is None else segments[a:b])


def load_units_meta(directory: str | Path) -> UnitsMeta:
    path = Path(directory) / META_FILE
    if not path.exists():
        raise KoeInputError(f"{directory}: no {META_FILE} (not written by `koe units encode`, or it did not finish)")
    return UnitsMeta.from_dict(json.loads(path.read_text()), where=str(path))


def write_units_meta(directory: str | Path, meta: UnitsMeta) -> None:
    write_json(Path(directory) / META_FILE, meta.to_dict())


def read_unit_shards(directory: str | Path) -> Iterator[UnitRecord]:
    """Every record of a unit-shard folder, shard 0 first; a missing shard is an error, not a silent gap."""
    meta = load_units_meta(directory)
    for i in range(meta.num_shards):
        path = Path(directory) / shard_name(i)
        if not path.exists():
            raise KoeInputError(f"missing: {path}: meta.json lists {meta.num_shards} shards")
        yield from read_unit_shard(path)


def unit_times(durations: np.ndarray, frame_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(start_s, end_s) of each dedup unit, float64, from its frame durations."""
    ends = np.cumsum(np.asarray(durations, dtype=np.int64))
    starts = ends - np.asarray(durations, dtype=np.int64)
    return starts / frame_rate_hz, ends / frame_rate_hz
