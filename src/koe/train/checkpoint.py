"""Checkpoints: model, optimiser, scheduler and every process's RNG states (through accelerate), plus trainer state.

    path = save_checkpoint(accelerator, out_dir, step=200, state={"step": 200, "tokens": ...}, keep=2)
    state = load_checkpoint(accelerator, resolve_resume("auto", out_dir))

`accelerator.save_state` knows how to gather DDP, FSDP and DeepSpeed ZeRO shards. The data-loader position needs no
file of its own: packed rows are a pure function of (seed, step) (koe.train.packing), so `state["step"]` is it.
`trainer_state.json` is written last and marks a checkpoint complete; a directory without it (a crash while
saving) is never resumed from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, write_json

STATE_FILE = "trainer_state.json"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def save_checkpoint(accelerator, out_dir: str | Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Save everything needed to continue from `step` exactly; keep only the newest `keep` checkpoints."""
    path = checkpoint_dir(out_dir) / f"step-{step:07d}"
    accelerator.save_state(str(path))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(path / STATE_FILE, state)
        if keep > 0:
            for old in complete_checkpoints(out_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def complete_checkpoints(out_dir: str | Path) -> list[Path]:
    """Checkpoints with a trainer state, oldest first."""
    root = checkpoint_dir(out_dir)
    return sorted(p for p in root.glob("step-*") if (p / STATE_FILE).exists()) if root.is_dir() else []


def resolve_resume(resume_from: str | None, out_dir: str | Path) -> Path | None:
    """`auto` -> the newest complete checkpoint in out_dir (or None: a fresh start); a path must be complete."""
    if resume_from is None:
        return None
    if resume_from == "auto":
        found = complete_checkpoints(out_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not (path / STATE_FILE).exists():
        raise KoeInputError(f"bad-checkpoint: {path}: no {STATE_FILE} (not a koe checkpoint, or saving crashed)")
    return path


def load_checkpoint(accelerator, path: str | Path) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG states into the prepared objects; return the trainer state."""
    accelerator.load_state(str(path))
    return json.loads((Path(path) / STATE_FILE).read_text())
