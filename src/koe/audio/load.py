"""Load audio as 16 kHz mono float32 with soundfile + soxr, with one clear error per bad file.

    wav = load_audio("a.flac")                          # np.float32, 16 kHz mono
    wav = load_audio("long.wav", offset_s=3.0, duration_s=2.5, max_duration_s=60)

Errors are `KoeInputError` whose message starts with a short reason kind (`unreadable`, `empty`, `non-finite`,
`too long`, `truncated`, `unsupported format`) so stage summaries can count them, followed by the path and the detail.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from koe.stage import KoeInputError

TARGET_SAMPLE_RATE_HZ = 16_000
# streaming writers leave these data sizes in a WAV header when they do not know the length: not truncation
_UNKNOWN_SIZES = {0, 0x7FFFFFFF, 0xFFFFFFFF}


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    sample_rate_hz: int
    num_channels: int
    num_frames: int

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate_hz


def probe_audio(path: str | Path) -> AudioInfo:
    """Header facts without decoding; raises KoeInputError for missing, empty (0 bytes), unreadable or unsupported
    files. A 0-byte file is `empty`, not `unsupported format`: libsndfile cannot tell its format, but the cause is
    a file that was never written (an interrupted copy or download)."""
    try:
        if Path(path).stat().st_size == 0:
            raise KoeInputError(f"empty: {path}: the file is 0 bytes")
    except FileNotFoundError:
        raise KoeInputError(f"unreadable: {path}: file not found") from None
    except OSError as e:
        raise KoeInputError(f"unreadable: {path}: {e.strerror or e}") from None
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError or TypeError by format
        if getattr(e, "code", None) == 1 or "Format not recognised" in str(e):  # SF_ERR_UNRECOGNISED_FORMAT
            raise KoeInputError(f"unsupported format: {path}: soundfile does not recognise the format") from None
        raise KoeInputError(f"unreadable: {path}: {_short(e)}") from None
    if info.format == "WAV":
        _check_wav_length(Path(path))
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def _check_wav_length(path: Path) -> None:
    """libsndfile quietly shortens a cut-off WAV to what is there; compare the data chunk's declared size instead."""
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_len = f.read(4), int.from_bytes(f.read(4), "little")
            if chunk_id == b"data":
                if chunk_len not in _UNKNOWN_SIZES and pos + 8 + chunk_len > size:
                    raise KoeInputError(
                        f"truncated: {path}: the data chunk declares {chunk_len} bytes, the file holds "
                        f"{size - pos - 8}"
                    )
                return
            pos += 8 + chunk_len + (chunk_len & 1)


def load_audio(
    path: str | Path,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    max_duration_s: float | None = None,
    sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ,
) -> np.ndarray:
    """Decode, mix to mono, resample; check length and values. The segment is [offset_s, offset_s+duration_s)."""
    info = probe_audio(path)
    if info.num_frames == 0:
        raise KoeInputError(f"empty: {path}: the file holds no audio frames")
    total_s = info.duration_s
    if offset_s > total_s:
        raise KoeInputError(f"truncated: {path}: segment starts at {offset_s:.2f} s but the file is {total_s:.2f} s")
    seg_s = total_s - offset_s if duration_s is None else duration_s
    if max_duration_s is not None and seg_s > max_duration_s:
        raise KoeInputError(
            f"too long: {path}: {seg_s:.1f} s exceeds max_duration_s={max_duration_s:g}; "
            "cut it into utterances first (`koe corpus import source=vad`)"
        )
    start = round(offset_s * info.sample_rate_hz)
    frames = -1 if duration_s is None else round(duration_s * info.sample_rate_hz)
    try:
        data, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise KoeInputError(f"unreadable: {path}: {_short(e)}") from None
    expected = info.num_frames - start if frames < 0 else frames
    if data.shape[0] < expected:
        raise KoeInputError(f"truncated: {path}: header says {expected} frames, decoded {data.shape[0]}")
    if data.shape[0] == 0:
        raise KoeInputError(f"empty: {path}: the segment holds no audio frames")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        bad = int((~np.isfinite(mono)).sum())
        raise KoeInputError(f"non-finite: {path}: {bad} NaN/Inf samples")
    if sr != sample_rate_hz:
        mono = soxr.resample(mono, sr, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
