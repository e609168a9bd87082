"""What every stage shares: a run report with failures, progress bars, atomic writes and done markers.

    report = StageReport("synth", out_dir)
    for item in progress(items, desc="synth"):
        try:
            ...
            report.ok()
        except KoeInputError as e:
            report.fail(item.id, str(e), path=item.path)
    report.finish()          # prints the summary, writes summary.json and failures.jsonl

A stage never drops an item silently: each one is either counted as done or listed with its reason, and the
command's exit status is non-zero when anything failed (`StageReport.exit_code`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class KoeInputError(ValueError):
    """Bad input data (a file, a line, an item): the stage lists it and goes on with the rest."""


@dataclasses.dataclass
class Failure:
    """One item a stage could not process, and why."""

    item: str
    reason: str
    path: str | None = None


@dataclasses.dataclass
class StageReport:
    """Counts, failures and wall time of one stage run; `finish` prints and saves them."""

    stage: str
    out_dir: Path | None = None
    items_in: int = 0
    items_out: int = 0
    failures: list[Failure] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    started: float = dataclasses.field(default_factory=time.perf_counter)
    wall_s: float | None = None

    def ok(self, n: int = 1) -> None:
        self.items_out += n

    def fail(self, item: str, reason: str, path: str | Path | None = None) -> None:
        self.failures.append(Failure(str(item), reason, str(path) if path is not None else None))

    def merge(self, other: StageReport) -> None:
        """Fold in the counts of a worker's report."""
        self.items_out += other.items_out
        self.failures.extend(other.failures)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "items_in": self.items_in,
            "items_out": self.items_out,
            "num_failures": len(self.failures),
            "failure_reasons": dict(Counter(_reason_kind(f.reason) for f in self.failures)),
            "wall_s": round(self.wall_s if self.wall_s is not None else time.perf_counter() - self.started, 3),
            **self.extra,
        }

    def finish(self, quiet: bool = False) -> StageReport:
        """Stop the clock, write summary.json and failures.jsonl to out_dir, print a summary."""
        self.wall_s = time.perf_counter() - self.started
        if self.out_dir is not None:
            out = Path(self.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / f"{self.stage.replace(' ', '_')}_summary.json", self.to_dict())
            lines = [json.dumps(dataclasses.asdict(f)) for f in self.failures]
            atomic_write_text(out / f"{self.stage.replace(' ', '_')}_failures.jsonl", "".join(x + "\n" for x in lines))
        if not quiet:
            print(self.render(), file=sys.stderr)
        return self

    def render(self, max_listed: int = 20) -> str:
        d = self.to_dict()
        lines = [
            f"[{self.stage}] {d['items_in']} in, {d['items_out']} out, {d['num_failures']} failed, "
            f"{d['wall_s']:.1f} s"
        ]
        lines += [f"  {k}: {v}" for k, v in self.extra.items() if not isinstance(v, (dict, list))]
        for f in self.failures[:max_listed]:
            where = f" ({f.path})" if f.path else ""
            lines.append(f"  FAILED {f.item}{where}: {f.reason}")
        if len(self.failures) > max_listed:
            lines.append(f"  ... and {len(self.failures) - max_listed} more")
        if self.failures and self.out_dir is not None:
            lines.append(f"  all failures: {Path(self.out_dir) / (self.stage.replace(' ', '_') + '_failures.jsonl')}")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0][:60]


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """A tqdm bar that stays quiet when KOE_NO_PROGRESS=1 (tests) and writes to stderr."""
    disable = os.environ.get("KOE_NO_PROGRESS") == "1"
    return iter(tqdm(items, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, leave=False))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def iter_jsonl(path: str | Path, kind: str = "bad-jsonl") -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for every non-empty line; KoeInputError("<kind>: file:line: ...") for a missing file,
    a line that is not JSON or not an object, so every reader of koe's JSONL formats fails the same clear way."""
    path = Path(path)
    if not path.exists():
        raise KoeInputError(f"{kind}: {path}: file not found")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise KoeInputError(f"{kind}: {path}:{lineno}: not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise KoeInputError(f"{kind}: {path}:{lineno}: not a JSON object")
            yield f"{path}:{lineno}", obj


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def config_hash(obj: Any) -> str:
    """A short stable hash of a JSON-able object (a resolved config), for done markers and caches."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def is_done(out_dir: str | Path, key: str) -> bool:
    """True when `out_dir` holds a `.done` marker written for the same config hash."""
    marker = Path(out_dir) / ".done"
    return marker.exists() and marker.read_text().strip() == key


def mark_done(out_dir: str | Path, key: str) -> None:
    atomic_write_text(Path(out_dir) / ".done", key + "\n")
