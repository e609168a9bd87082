"""Quantizer: faiss k-means finds planted clusters; torch assignment is the exact nearest centroid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from koe.units.kmeans import assign_units, codebook_usage, fit_kmeans


def _blobs(k: int = 6, dim: int = 16, per: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, dim))
    labels = np.repeat(np.arange(k), per)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_kmeans_recovers_planted_clusters():
    x, truth = _blobs()
    result = fit_kmeans(x, k=6, iterations=20, seed=0, nredo=3)
    assert result.centroids.shape == (6, 16) and result.centroids.dtype == np.float32
    found = assign_units(torch.from_numpy(x), torch.from_numpy(result.centroids)).numpy()
    pairs = {(int(t), int(f)) for t, f in zip(truth, found, strict=True)}
    assert len(pairs) == 6 and len({f for _, f in pairs}) == 6  # a one-to-one map between clusters and units
    assert result.inertia == pytest.approx(min(fit_kmeans(x, 6, 20, seed=s).inertia for s in range(3)), rel=1e-3)
    assert result.inertia / len(x) < 2 * 16  # about dim (unit variance per dimension), far below between-cluster


def test_kmeans_is_seeded():
    x, _ = _blobs(seed=1)
    a = fit_kmeans(x, k=4, iterations=5, seed=3).centroids
    b = fit_kmeans(x, k=4, iterations=5, seed=3).centroids
    np.testing.assert_array_equal(a, b)


def test_kmeans_needs_k_frames():
    with pytest.raises(ValueError, match="at least k=10"):
        fit_kmeans(np.zeros((5, 3), np.float32), k=10, iterations=2, seed=0)


def test_assign_matches_brute_force():
    rng = np.random.default_rng(2)
    x, c = rng.normal(size=(500, 8)).astype(np.float32), rng.normal(size=(20, 8)).astype(np.float32)
    brute = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    got = assign_units(torch.from_numpy(x), torch.from_numpy(c), block=64).numpy()
    np.testing.assert_array_equal(got, brute)


def test_codebook_usage():
    usage = codebook_usage(np.array([0, 0, 1, 1]), k=4)
    assert usage["units_used"] == 2 and usage["units_used_frac"] == 0.5
    assert usage["usage_perplexity"] == pytest.approx(2.0)
