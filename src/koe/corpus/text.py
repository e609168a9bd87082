"""Text items: what `koe synth` speaks and what text-only training reads.

    {"id": "tiny-story-000007", "text": "the old fox sees a river . ...", "kind": "story", "split": "train",
     "meta": {"topic": "fox"}}

One JSON object per line (`.jsonl`); a plain `.txt` file is read as one item per non-empty line, ids from the file
name and line number. Written by the TinySpeech generator (`koe.tinyspeech`), read by `koe synth` and `koe data build`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, atomic_write_text, iter_jsonl, read_text_file


@dataclasses.dataclass
class TextItem:
    id: str
    text: str
    kind: str = "text"  # statement | question | story | fact | text
    split: str = "train"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> TextItem:
        if not isinstance(d, dict) or "text" not in d or "id" not in d:
            raise KoeInputError(f"{where}: a text item needs 'id' and 'text'")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KoeInputError(f"{where}: unknown field(s) {sorted(unknown)}")
        return cls(**d)


def read_text_items(path: str | Path) -> list[TextItem]:
    """Read `.jsonl` text items or a plain text file (one item per non-empty line)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return [TextItem.from_dict(d, where) for where, d in iter_jsonl(path, kind="bad-text")]
    lines = read_text_file(path, kind="bad-text").splitlines()
    return [TextItem(id=f"{path.stem}-{n:06d}", text=line.strip()) for n, line in enumerate(lines, 1) if line.strip()]


def write_text_items(path: str | Path, items: Iterable[TextItem]) -> int:
    lines = [json.dumps(i.to_dict(), ensure_ascii=False) for i in items]
    atomic_write_text(path, "".join(x + "\n" for x in lines))
    return len(lines)
