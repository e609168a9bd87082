"""Speech units: features (log-mel, MFCC, HF encoder layers) -> k-means -> dedup [-> BPE], and unit shards.

    koe units fit data/manifest.jsonl out_dir=tok/h500 features=hf:facebook/hubert-base-ls960@9 k=500
    koe units encode data/manifest.jsonl tokenizer=tok/h500 out_dir=units/h500

    from koe.units import UnitTokenizer, read_unit_shards
    tok = UnitTokenizer.load("tok/h500")
    units, durations = tok.encode_audio(wav)

Formats: docs/units.md. Names are imported on first use, so `koe units fit --help` (which imports
koe.units.config) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UnitRecord": "shards", "UnitsMeta": "shards", "load_units_meta": "shards", "read_unit_shard": "shards",
    "read_unit_shards": "shards", "unit_times": "shards", "write_unit_shard": "shards",
    "UnitTokenizer": "tokenizer", "UnitTokenizerSpec": "tokenizer", "dedup_units": "tokenizer",
    "expand_units": "tokenizer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'koe.units' has no attribute {name!r}")
    return getattr(importlib.import_module(f"koe.units.{_EXPORTS[name]}"), name)
