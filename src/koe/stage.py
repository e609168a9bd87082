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

Reruns: a stage's done key covers its resolved config and the contents of its input files, so a changed input
redoes the work; a skipped rerun leaves the earlier summary as it is and reports the earlier counts:

    key = done_key(config, inputs=[cfg.manifest, units_dir])
    if (earlier := skip_if_done("units encode", out_dir, key, cfg.force)) is not None:
        return earlier
    ...                       # the work
    mark_done(out_dir, key)

Outputs: a `StageReport` with an out_dir checks at construction, before any work, that the folder can be created and
written and that its disk has room (`check_writable`); writes through `atomic_write_text` name the path and the cause
when they fail (`KoeOutputError`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


class KoeInputError(ValueError):
    """Bad input data (a file, a line, an item): the stage lists it and goes on with the rest."""


class KoeOutputError(RuntimeError):
    """An output cannot be written (read-only folder, full disk, a file in the way): the message names the path and
    the cause, and the stage stops, since no later item could be written either."""


MIN_FREE_BYTES = 16 << 20  # below this a stage would fail on its first real write: refuse before the work


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

    def __post_init__(self) -> None:
        if self.out_dir is not None:
            check_writable(self.out_dir)

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


def map_in_workers(fn: Callable[[T], R], tasks: list[T], num_workers: int,
                   initializer: Callable[..., None] | None = None, initargs: tuple = (),
                   ordered: bool = True) -> Iterator[R]:
    """`fn` over `tasks`, each process set up once by `initializer(*initargs)`: this one when num_workers == 1 or
    there is one task, else up to num_workers spawned processes (no inherited library or lock state). Results in
    task order, or as they finish with `ordered=False`; a task's exception is raised here."""
    if num_workers == 1 or len(tasks) < 2:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(min(num_workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=initializer, initargs=initargs) as pool:
        if ordered:
            yield from pool.map(fn, tasks, chunksize=max(1, min(16, len(tasks) // (4 * num_workers))))
        else:
            yield from (future.result() for future in as_completed([pool.submit(fn, t) for t in tasks]))


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """A tqdm bar that stays quiet when KOE_NO_PROGRESS=1 (tests) and writes to stderr."""
    disable = os.environ.get("KOE_NO_PROGRESS") == "1"
    return iter(tqdm(items, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, leave=False))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written output; a failed write raises
    KoeOutputError naming the path and the cause (a full disk, a read-only folder) and leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KoeOutputError(f"cannot write {path}: {describe_os_error(e)}") from e


def describe_os_error(e: OSError) -> str:
    """The cause of an OSError in words, with a hint for the two a user can fix."""
    cause = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        return f"{cause} (the disk is full: free space or choose another out_dir)"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{cause} (the folder is not writable: choose another out_dir)"
    return cause


def check_writable(out_dir: str | Path, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Fail before the work, not after it: create `out_dir`, write and remove a probe file, and check free space.

    Raises KoeOutputError naming the folder and the cause (read-only, permission denied, a file in the way, disk
    full). Why a probe file: permission bits do not tell (root, read-only mounts, ACLs); only a write does.
    """
    out = Path(out_dir)
    probe = out / f".koe-write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"koe")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(out).free
    except OSError as e:
        raise KoeOutputError(f"output folder {out} is not writable: {describe_os_error(e)}") from e
    if free < min_free_bytes:
        raise KoeOutputError(f"output folder {out} has only {free >> 20} MiB free (the disk is full: free space or "
                             f"choose another out_dir)")


def low_disk_note(out_dir: str | Path, below_bytes: int = 4 * MIN_FREE_BYTES) -> str | None:
    """A line for an error message when the disk holding `out_dir` is (nearly) full; None otherwise."""
    try:
        free = shutil.disk_usage(next(p for p in (Path(out_dir), *Path(out_dir).parents) if p.exists())).free
    except (OSError, StopIteration):
        return None
    if free >= below_bytes:
        return None
    return f"the disk holding {out_dir} has only {free >> 20} MiB free: a full disk is the likely cause"


def read_text_file(path: str | Path, kind: str = "bad-text") -> str:
    """A UTF-8 text file's contents; KoeInputError("<kind>: path: ...") for a missing file or bytes that are not
    UTF-8 (with the byte offset), so a transcript is never decoded silently into replacement characters."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KoeInputError(f"{kind}: {path}: file not found") from None
    except OSError as e:
        raise KoeInputError(f"{kind}: {path}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise KoeInputError(f"not UTF-8: {path}:{line}: byte 0x{data[e.start]:02x} at offset {e.start} is not "
                            "valid UTF-8 (re-save the file as UTF-8)") from None


def iter_jsonl(path: str | Path, kind: str = "bad-jsonl") -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for every non-empty line; KoeInputError("<kind>: file:line: ...") for a missing file,
    a line that is not UTF-8, not JSON or not an object, so every reader of koe's JSONL formats fails the same clear
    way. Streams the file (manifests of millions of lines) and splits on \\n only, as JSON Lines does."""
    path = Path(path)
    if not path.exists():
        raise KoeInputError(f"{kind}: {path}: file not found")
    with path.open("rb") as f:
        offset = 0
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise KoeInputError(f"not UTF-8: {path}:{lineno}: byte 0x{raw[e.start]:02x} at offset "
                                    f"{offset + e.start} is not valid UTF-8 (re-save the file as UTF-8)") from None
            offset += len(raw)
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


BOOKKEEPING = (".done", "*.done", "*_summary.json", "*_failures.jsonl", ".koe-write-test-*")


def input_stamp(path: str | Path) -> str:
    """sha256 of a file's bytes, or of every file under a folder (relative names and bytes, sorted), leaving out the
    stage machinery's own files (done markers, summaries, failure lists), which change on every run. A missing path
    stamps as "missing", so creating it later invalidates the skip too."""
    path = Path(path)
    if not path.exists():
        return "missing"
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not any(p.match(b) for b in BOOKKEEPING))
    digest = hashlib.sha256()
    for f in files:
        if f != path:  # a folder: the relative name too, so a renamed shard changes the stamp
            digest.update(f.relative_to(path).as_posix().encode() + b"\0")
        with f.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def done_key(config: Any, inputs: Iterable[str | Path | None] = ()) -> str:
    """The key of a stage's done marker: its resolved config and the contents of every input file or folder, so a
    rerun after an input changed (a corpus of 11 utterances instead of 10) redoes the work."""
    stamps = {str(Path(p).resolve()): input_stamp(p) for p in inputs if p is not None and str(p)}
    return config_hash({"config": config, "inputs": stamps})


def is_done(out_dir: str | Path, key: str, marker: str = ".done") -> bool:
    """True when `out_dir` holds a done marker written for the same key."""
    path = Path(out_dir) / marker
    return path.exists() and path.read_text().strip() == key


def skip_if_done(stage: str, out_dir: str | Path, key: str, force: bool, marker: str = ".done",
                 outputs: Iterable[str | Path] = ()) -> StageReport | None:
    """The earlier run's report when `out_dir` is up to date with `key` and still holds `outputs` (and not `force`);
    else None.

    A skip writes nothing: the earlier summary and failure list stay as they were, and the returned report (read
    from them) carries the earlier counts and failures, so the exit status of a rerun is that of the run it stands
    for. When the work must run, the stale marker is removed first: a run that stops midway leaves none behind.
    """
    out = Path(out_dir)
    name = stage.replace(" ", "_")
    if not force and is_done(out, key, marker) and all(Path(p).exists() for p in outputs):
        report = StageReport(stage, None)
        summary = out / f"{name}_summary.json"
        if summary.exists():
            earlier = json.loads(summary.read_text())
            report.items_in, report.items_out = earlier.get("items_in", 0), earlier.get("items_out", 0)
            report.wall_s = earlier.get("wall_s")
        failures = out / f"{name}_failures.jsonl"
        if failures.exists():
            report.failures = [Failure(**obj) for _, obj in iter_jsonl(failures)]
        report.extra["skipped"] = f"{out} is up to date with this config and its inputs (force=true redoes it)"
        print(report.render(), file=sys.stderr)
        return report
    (out / marker).unlink(missing_ok=True)
    return None


def mark_done(out_dir: str | Path, key: str, marker: str = ".done") -> None:
    atomic_write_text(Path(out_dir) / marker, key + "\n")
