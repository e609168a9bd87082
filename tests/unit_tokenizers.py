"""Small real unit tokenizers for tests: mel features with seeded random centroids, optionally with a unit BPE
trained on seeded sequences, so BPE merges really occur in the units these tokenizers produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from koe.units.bpe import train_bpe
from koe.units.features import FeatureSpec
from koe.units.tokenizer import BPE_FILE, UnitTokenizer, UnitTokenizerSpec


def repetitive_units(num_units: int, n: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Dedup sequences built from a few recurring motifs: what a BPE learns merges from."""
    rng = np.random.default_rng(seed)
    motifs = [rng.choice(num_units, size=3, replace=False) for _ in range(4)]
    out = []
    for _ in range(n):
        seq = np.concatenate([motifs[i] for i in rng.integers(0, len(motifs), size=6)])
        out.append(seq[np.concatenate([[True], seq[1:] != seq[:-1]])])  # dedup, as unit shards hold them
    return out


def make_unit_tokenizer(out: Path, num_units: int = 16, bpe_vocab_size: int = 0, seed: int = 0,
                        extra_units: list[np.ndarray] | None = None) -> UnitTokenizer:
    """Save a mel tokenizer (80-dim features, random centroids) to `out` and return it loaded from there."""
    spec = UnitTokenizerSpec(features=FeatureSpec(backend="mel", frame_rate_hz=100.0, dim=80), num_units=num_units)
    centroids = np.random.default_rng(seed).normal(-5, 3, size=(num_units, 80)).astype(np.float32)
    bpe_json = None
    if bpe_vocab_size:
        sequences = repetitive_units(num_units, seed=seed) + list(extra_units or [])
        bpe_json = train_bpe(sequences, num_units, bpe_vocab_size).to_str()
        spec.bpe = {"vocab_size": bpe_vocab_size, "file": BPE_FILE}
    UnitTokenizer(spec, centroids, bpe_json).save(out)
    return UnitTokenizer.load(out)
