"""Checkpoints: model, optimiser, scheduler and every process's RNG states (through accelerate), plus trainer state,
sealed by a manifest of every file's size and SHA-256.

    prepare_out_dir(out_dir, resume=None, overwrite=False, main=True)   # refuses another run's out_dir
    path = save_checkpoint(accelerator, out_dir, step=200, state={"step": 200, "tokens": ...}, keep=2)
    resume = resolve_resume("auto", out_dir)        # newest checkpoint that verifies; falls back with a warning
    state = load_checkpoint(accelerator, resume)
    check_resume_step(state["step"], total_steps, resume)

`accelerator.save_state` knows how to gather DDP, FSDP and DeepSpeed ZeRO shards. The data-loader position needs no
file of its own: packed rows are a pure function of (seed, step) (koe.train.packing), so `state["step"]` is it.
`checkpoint.json` is written last, after `trainer_state.json`: it marks the checkpoint complete and lists every file
with its size and hash, so a truncated or corrupt model, optimiser, scheduler, trainer-state or RNG file is found
before anything is loaded (accelerate itself skips an unreadable RNG file without a word). A checkpoint written
before manifests existed (a trainer state, no manifest) is still resumed, with a warning that it cannot be checked.
Rotation and `auto` order checkpoints by the step in their name, never by the name's sorting.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, write_json

STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "checkpoint.json"
SCHEMA_VERSION = 1
_STEP_DIR = re.compile(r"step-(\d+)")


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def checkpoint_step(path: str | Path) -> int | None:
    """The step a checkpoint directory is named after (`step-0000120` -> 120), or None for other names."""
    m = _STEP_DIR.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def save_checkpoint(accelerator, out_dir: str | Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Save everything needed to continue from `step` exactly, seal it with a manifest, keep the newest `keep`."""
    path = checkpoint_dir(out_dir) / f"step-{step:07d}"
    if accelerator.is_main_process:  # an overwritten checkpoint must read as incomplete until it is resealed
        (path / MANIFEST_FILE).unlink(missing_ok=True)
        (path / STATE_FILE).unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(path / STATE_FILE, state)
        write_manifest(path, step)
        if keep > 0:
            for old in complete_checkpoints(out_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def write_manifest(path: Path, step: int) -> Path:
    """checkpoint.json: the step and every file's size and SHA-256 (written atomically, last)."""
    files = {str(f.relative_to(path)): {"size_bytes": f.stat().st_size, "sha256": _sha256(f)}
             for f in sorted(path.rglob("*")) if f.is_file() and f.name != MANIFEST_FILE}
    write_json(path / MANIFEST_FILE, {"schema_version": SCHEMA_VERSION, "step": step, "files": files})
    return path / MANIFEST_FILE


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def complete_checkpoints(out_dir: str | Path) -> list[Path]:
    """Checkpoints whose saving finished (a manifest, or a pre-manifest trainer state), oldest step first."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if checkpoint_step(p) is not None
             and ((p / MANIFEST_FILE).exists() or (p / STATE_FILE).exists())]
    return sorted(found, key=checkpoint_step)


def verify_checkpoint(path: str | Path) -> list[str]:
    """Problems of a checkpoint, each naming the file: missing, truncated or changed since it was saved."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.exists():
        if (path / STATE_FILE).exists():
            warnings.warn(f"{path}: no {MANIFEST_FILE} (saved by an older koe): its files cannot be checked",
                          stacklevel=2)
            return []
        return [f"{path}: neither {MANIFEST_FILE} nor {STATE_FILE} (not a koe checkpoint, or saving crashed)"]
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{manifest_path}: unreadable manifest ({e})"]
    problems = []
    for rel, expected in files.items():
        f = path / rel
        if not f.is_file():
            problems.append(f"{f}: missing")
        elif (size := f.stat().st_size) != expected["size_bytes"]:
            problems.append(f"{f}: truncated or overwritten ({size} bytes, {expected['size_bytes']} when saved)")
        elif _sha256(f) != expected["sha256"]:
            problems.append(f"{f}: corrupt (SHA-256 differs from the one recorded when saved)")
    return problems


def resolve_resume(resume_from: str | None, out_dir: str | Path) -> Path | None:
    """The checkpoint to resume from, verified.

    `auto` takes the newest complete checkpoint in out_dir that verifies; a damaged one is skipped with a warning
    naming the bad file (None when out_dir has no checkpoint: a fresh start; an error when every one is damaged).
    An explicit path must verify, or the run stops with a message naming the bad file.
    """
    if resume_from is None:
        return None
    if resume_from != "auto":
        problems = verify_checkpoint(resume_from)
        if problems:
            raise KoeInputError(f"bad-checkpoint: {'; '.join(problems)}")
        return Path(resume_from)
    damaged = []
    for path in reversed(complete_checkpoints(out_dir)):
        problems = verify_checkpoint(path)
        if not problems:
            if damaged:
                warnings.warn(f"resume_from=auto: skipped damaged checkpoint(s) ({'; '.join(damaged)}); resuming "
                              f"from {path}, the newest complete one", stacklevel=2)
            return path
        damaged.append("; ".join(problems))
    if damaged:
        raise KoeInputError(f"bad-checkpoint: every checkpoint in {checkpoint_dir(out_dir)} is damaged: "
                            f"{'; '.join(damaged)}")
    return None


def check_resume_step(step: int, total_steps: int, path: str | Path) -> None:
    """A checkpoint past the end of this run's plan belongs to another run: refuse it, naming both numbers."""
    if step > total_steps:
        raise KoeInputError(f"bad-checkpoint: {path} is at step {step}, but this config plans {total_steps} steps "
                            f"(another run's checkpoint?): raise max_steps/max_tokens/epochs to continue it, or "
                            f"start fresh in a new out_dir")


def prepare_out_dir(out_dir: str | Path, resume: Path | None, overwrite: bool, main: bool) -> list[Path]:
    """Make out_dir safe for this run; returns what was deleted (main process only deletes).

    A fresh run (no checkpoint to resume) into an out_dir holding another run's checkpoints or final/ model is
    refused unless `overwrite` (then they go, with its TensorBoard events), so old checkpoints can neither rotate
    away the new ones nor be resumed or published later. A resumed run drops the checkpoints past its resume point
    (a future it abandoned), which would otherwise count as newer than everything it saves.
    """
    out_dir = Path(out_dir)
    if resume is not None:
        start = checkpoint_step(resume)
        stale = [p for p in _step_dirs(out_dir) if start is not None and checkpoint_step(p) > start
                 and p.resolve() != Path(resume).resolve()]
    else:
        stale = [*_step_dirs(out_dir), *([out_dir / "final"] if (out_dir / "final").exists() else [])]
        if stale and not overwrite:
            names = ", ".join(str(p.relative_to(out_dir)) for p in stale[-3:])
            raise KoeInputError(f"out-dir-in-use: {out_dir} holds another run ({names}): resume it with "
                                f"resume_from=auto, choose a new out_dir, or pass overwrite=true to delete it")
        if stale and (out_dir / "tb").exists():
            stale.append(out_dir / "tb")
    if main:
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        if stale:
            print(f"[train] removed {len(stale)} path(s) of an earlier run from {out_dir}: "
                  f"{', '.join(p.name for p in stale)}")
    return stale


def _step_dirs(out_dir: Path) -> list[Path]:
    root = checkpoint_dir(out_dir)
    dirs = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None] if root.is_dir() else []
    return sorted(dirs, key=checkpoint_step)


def read_state(path: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (step, tokens seen, train time), read before anything heavy is loaded."""
    f = Path(path) / STATE_FILE
    try:
        state = json.loads(f.read_text())
        int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KoeInputError(f"bad-checkpoint: {f}: unreadable trainer state ({type(e).__name__}: {e})") from None
    return state


def load_checkpoint(accelerator, path: str | Path) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG states into the prepared objects; return the trainer state."""
    try:
        accelerator.load_state(str(path))
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as e:
        raise KoeInputError(f"bad-checkpoint: {path}: cannot be loaded ({type(e).__name__}: {e})") from None
    return read_state(path)
