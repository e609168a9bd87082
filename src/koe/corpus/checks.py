"""Probe one audio file before it enters a manifest, so later stages never meet a bad file.

    info = check_audio_file("a.wav", max_duration_s=60, check_samples=True)   # AudioInfo, or KoeInputError

Reasons (the first word of the error, counted in the import summary): `unsupported format` (soundfile cannot
decode it, e.g. a text file named .wav), `unreadable`, `truncated` (the WAV header promises more data than the file
holds; see koe.audio.probe_audio), `empty` (0 frames), `too long`
(longer than max_duration_s: cut it with `source=vad`) and, when the samples are decoded, `non-finite` (NaN/Inf).
NaN/Inf samples and truncated compressed streams are only visible after decoding every sample, which is why
`check_samples` exists: it costs a full decode per file, skipping it trusts the headers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from koe.audio import TARGET_SAMPLE_RATE_HZ, AudioInfo, load_audio, probe_audio
from koe.stage import KoeInputError


def check_audio_file(path: str | Path, max_duration_s: float | None, check_samples: bool) -> AudioInfo:
    """Header facts of a file that passed every check; raises KoeInputError with the reason otherwise."""
    info = probe_audio(path)
    if info.num_frames == 0:
        raise KoeInputError(f"empty: {path}: the file holds no audio frames")
    check_duration(path, info.duration_s, max_duration_s)
    if check_samples:
        # decode at the stored rate: resampling would only cost time here
        load_audio(path, sample_rate_hz=info.sample_rate_hz)
    return info


def check_duration(where: str | Path, duration_s: float, max_duration_s: float | None) -> None:
    if max_duration_s is not None and duration_s > max_duration_s:
        raise KoeInputError(
            f"too long: {where}: {duration_s:.1f} s exceeds max_duration_s={max_duration_s:g}; "
            "cut it into utterances with `koe corpus import vad`"
        )


def decoded_to_16k(data: np.ndarray, sample_rate_hz: int, where: str, max_duration_s: float | None) -> np.ndarray:
    """`load_audio`'s checks (empty, too long, non-finite) for audio decoded from memory (HF datasets); 16 kHz mono."""
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.shape[0] == 0:
        raise KoeInputError(f"empty: {where}: the audio holds no frames")
    check_duration(where, data.shape[0] / sample_rate_hz, max_duration_s)
    if not np.isfinite(data).all():
        raise KoeInputError(f"non-finite: {where}: {int((~np.isfinite(data)).sum())} NaN/Inf samples")
    if sample_rate_hz != TARGET_SAMPLE_RATE_HZ:
        data = soxr.resample(data, sample_rate_hz, TARGET_SAMPLE_RATE_HZ, quality="HQ")
    return np.ascontiguousarray(data, dtype=np.float32)
