"""The unit-token cache of a benchmark: its audio encoded once per unit tokenizer, not on every evaluation.

    units = tokenize_bench("bench/syntactic-blimp", UnitTokenizer.load("units/tok"))   # {audio path: int32 array}

The cache is `<bench_dir>/tokens/<tokenizer content hash>.jsonl`, one `{"audio": "audio/en-us/ab12.wav",
"units": [...]}` line per WAV: `UnitTokenizer.audio_to_ids`, the deduplicated units after the tokenizer's unit BPE (if
any), i.e. the unit ids a model reads (koe eval adds the model's unit offset through koe.data.speech_tokens, the
same mapping `koe data build` used). A tokenizer with another content hash gets its own file, so re-fitting a
tokenizer can never reuse stale units; a cache missing some WAVs (a benchmark rebuilt with more items) is completed
and rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from koe.audio import load_audio
from koe.bench.items import read_items
from koe.stage import KoeInputError, atomic_write_text, progress

TOKENS_DIR = "tokens"


class UnitEncoder(Protocol):
    """What the cache needs of a unit tokenizer (koe.units.tokenizer.UnitTokenizer satisfies it)."""

    content_hash: str

    def audio_to_ids(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def cache_path(bench_dir: str | Path, tokenizer: UnitEncoder) -> Path:
    return Path(bench_dir) / TOKENS_DIR / f"{tokenizer.content_hash}.jsonl"


def read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        try:
            d = json.loads(line)
            out[d["audio"]] = np.asarray(d["units"], dtype=np.int32)
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise KoeInputError(f"bad-token-cache: {path}:{lineno}: {e}; delete the file to rebuild it") from None
    return out


def tokenize_bench(bench_dir: str | Path, tokenizer: UnitEncoder) -> tuple[dict[str, np.ndarray], int]:
    """Units of every WAV the benchmark's items name; returns (units by audio path, number encoded now).

    Only WAVs absent from the cache are decoded and encoded (0 on a cache hit). An unreadable WAV raises
    KoeInputError naming it: a benchmark with missing audio must be rebuilt, not silently scored on fewer items.
    """
    bench_dir = Path(bench_dir)
    path = cache_path(bench_dir, tokenizer)
    cached = read_cache(path)
    wanted = sorted({s.audio for it in read_items(bench_dir) for s in it.sides() if s.audio is not None})
    missing = [a for a in wanted if a not in cached]
    for audio in progress(missing, desc=f"tokenize {bench_dir.name}", unit="wav"):
        units, _durations = tokenizer.audio_to_ids(load_audio(bench_dir / audio))
        if len(units) == 0:
            raise KoeInputError(f"no-units: {bench_dir / audio}: the unit tokenizer returned no units")
        cached[audio] = np.asarray(units, dtype=np.int32)
    if missing:
        lines = (json.dumps({"audio": a, "units": cached[a].tolist()}) for a in sorted(cached))
        atomic_write_text(path, "".join(x + "\n" for x in lines))
    return {a: cached[a] for a in wanted}, len(missing)
