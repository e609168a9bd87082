"""Seeding: every random choice in koe derives from one integer that is saved with the run's config."""

from __future__ import annotations

import random
import zlib

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def derive_seed(seed: int, *keys: object) -> int:
    """A per-item seed that does not depend on worker count or order (e.g. derive_seed(seed, utt_id))."""
    return zlib.crc32(repr((seed, *keys)).encode()) & 0x7FFFFFFF


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *keys))
