"""Checks of one synthesis request, shared by every vocoder kind, so bad input fails the same clear way.

    units, durations = check_request(units, durations, num_units=40, where="runs/voc")

A unit id the vocoder never saw, an empty sequence or a duration below one frame would otherwise be an index error
deep in an embedding or silent garbage; callers (koe generate, benchmarks) catch `KoeInputError` per item.
"""

from __future__ import annotations

import numpy as np

from koe.stage import KoeInputError


def check_request(units, durations, num_units: int, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated (units int64 [M], durations int64 [M] or None); KoeInputError naming the vocoder dir otherwise."""
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size == 0:
        raise KoeInputError(f"empty units: vocoder {where} needs at least one unit to speak")
    bad = units[(units < 0) | (units >= num_units)]
    if bad.size:
        raise KoeInputError(f"units out of range: {sorted(set(bad.tolist()))[:5]} not in [0, {num_units}) of vocoder "
                            f"{where} (a different unit tokenizer?)")
    if durations is None:
        return units, None
    durations = np.asarray(durations, dtype=np.int64).reshape(-1)
    if durations.shape != units.shape:
        raise KoeInputError(f"bad durations: {durations.size} durations for {units.size} units (vocoder {where})")
    if (durations < 1).any():
        raise KoeInputError(f"bad durations: every unit needs >= 1 frame (vocoder {where})")
    return units, durations


def speaker_index(speaker: str | None, speakers: list[str], where: str) -> int:
    """Row of `speaker` in the vocoder's speaker table; None means the first (default) voice."""
    if speaker is None:
        return 0
    if speaker not in speakers:
        shown = ", ".join(speakers[:8]) + (" ..." if len(speakers) > 8 else "")
        raise KoeInputError(f"unknown speaker: {speaker!r} is not one of the {len(speakers)} voices of vocoder "
                            f"{where} ({shown})")
    return speakers.index(speaker)


def to_mel_rate(frame_units, unit_frame_rate_hz: float, mel_frame_rate_hz: float):
    """[..., unit_frames] -> [..., mel_frames] by nearest-frame repetition (numpy or torch)."""
    ratio = mel_frame_rate_hz / unit_frame_rate_hz
    n_in = frame_units.shape[-1]
    index = np.minimum((np.arange(round(n_in * ratio)) / ratio).astype(np.int64), n_in - 1)
    return frame_units[..., index]
