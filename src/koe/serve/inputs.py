"""Checks on what the page sends, each failing with a KoeInputError the page shows as it is.

    wav = decode_audio(data, "question.wav", max_audio_s=20)   # 16 kHz mono float32
    text = check_text("  what does the dog see ?  ", max_chars=500)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from koe.audio import load_audio, probe_audio
from koe.stage import KoeInputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")  # what soundfile decodes without ffmpeg


def max_upload_bytes(max_audio_s: float) -> int:
    """Largest file worth decoding: max_audio_s of 48 kHz stereo float32, plus headers."""
    return int(max_audio_s * 48_000 * 2 * 4) + 4096


def check_text(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if not text:
        raise KoeInputError("empty: type a question, upload a WAV or record one")
    if len(text) > max_chars:
        raise KoeInputError(f"too long: the text has {len(text)} characters; at most {max_chars}")
    return text


def decode_audio(data: bytes, name: str, max_audio_s: float) -> np.ndarray:
    """Uploaded or recorded bytes -> 16 kHz mono float32, via koe.audio.load_audio's checks (format, length, NaN)."""
    label = Path(name or "upload").name
    if not data:
        raise KoeInputError(f"empty: {label}: the file has no bytes")
    if len(data) > max_upload_bytes(max_audio_s):
        raise KoeInputError(f"too long: {label}: {len(data) / 1e6:.1f} MB is more than {max_audio_s:g} s of audio")
    suffix = Path(label).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise KoeInputError(f"unsupported format: {label}: send {', '.join(AUDIO_SUFFIXES)} audio")
    with tempfile.TemporaryDirectory(prefix="koe-serve-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            seconds = probe_audio(path).duration_s
            if seconds > max_audio_s:
                raise KoeInputError(f"too long: {path}: {seconds:.1f} s of audio; at most {max_audio_s:g} s")
            wav = load_audio(path)
        except KoeInputError as e:
            raise KoeInputError(str(e).replace(str(path), label)) from None
    if float(np.abs(wav).max()) < 1e-4:
        raise KoeInputError(f"empty: {label}: the audio is silent")
    return wav
