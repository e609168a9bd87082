"""Syllable tokens: segments -> mean-pooled features -> k-means [-> agglomerative reduction] -> ids with durations.

    segs, pooled = segment_features(raw, "mfcc", 100.0, params)        # koe.units.segment
    units, durations = syllable_tokens(segs, labels, num_frames=len(raw))
    centroids, info = fit_syllable_codebook(pooled_all, k=500, reduce_to=100, iterations=50, seed=0)

The unit-shard contract (docs/units.md) is that token j spans frames [c_j, c_{j+1}) with c_j = sum(d[:j]), and
`koe data build` gives each token to the word holding its centre (c_j + c_{j+1}) / 2. Syllable segments leave
silence out, so the cuts c_j are placed in the pauses between segments: c_0 = 0, c_M = the utterance's frames, and
c_{j+1} = min(start of segment j+1, 2 * end_j - c_j - 1), the latest cut that keeps token j's centre inside its own
segment. A token thus takes at most its own length of the pause after it, the rest going to the next token, and the
durations add up to the utterance's frames. The centre can only leave the segment at the utterance's edges (leading
or trailing silence longer than the first or last syllable; data build's default unaligned_units=attach then
gives the token to the nearest word with a token inside) or after a pause longer than the syllable and the
pause after it. The true [start, end) frames are kept beside them (`UnitRecord.segments`) for boundary evaluation.
Repeated ids are not merged: two syllables that fall in the same cluster are still two syllables.
"""

from __future__ import annotations

import itertools

import numpy as np

from koe.units.kmeans import KMeansResult, fit_kmeans


def syllable_tokens(segments: np.ndarray, labels: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(units int32 [M], durations int32 [M] summing to num_frames) from segments [M, 2] and their cluster ids."""
    segs = np.asarray(segments, dtype=np.int64).reshape(-1, 2)
    if len(segs) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    cuts = [0]
    for (_, end), (next_start, _) in itertools.pairwise(segs.tolist()):
        cuts.append(max(min(next_start, 2 * end - cuts[-1] - 1), cuts[-1] + 1))
    durations = np.diff([*cuts, num_frames])
    if np.any(durations < 1):
        raise ValueError(f"segments {segments.tolist()} are not increasing inside {num_frames} frames")
    return np.asarray(labels, dtype=np.int32), durations.astype(np.int32)


def fit_syllable_codebook(pooled: np.ndarray, k: int, reduce_to: int, iterations: int, seed: int,
                          max_points_per_centroid: int = 10_000, init: str = "kmeans++", nredo: int = 1
                          ) -> tuple[np.ndarray, KMeansResult]:
    """k-means over pooled segment features, then (reduce_to > 0) Ward agglomeration of the k centroids.

    SD-HuBERT clusters 16,384 k-means centroids down to 4,096: a large k-means finds fine modes cheaply, the
    agglomeration joins those that lie close together. The merged centroid is the mean of its members weighted by
    how many segments each holds, and encoding assigns a segment to the nearest merged centroid.
    """
    km = fit_kmeans(pooled, k, iterations, seed, max_points_per_centroid, init, nredo)
    if not reduce_to:
        return km.centroids, km
    import torch

    from koe.units.kmeans import assign_units

    counts = np.bincount(assign_units(torch.from_numpy(pooled), torch.from_numpy(km.centroids)).numpy(), minlength=k)
    return agglomerate(km.centroids, counts, reduce_to), km


def agglomerate(centroids: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Ward clustering of centroids into n groups; float32 [n, dim] count-weighted group means.

    Uses scipy (O(k^2) memory: k = 4,096 needs ~70 MB; 16,384 ~1 GB).
    """
    try:
        from scipy.cluster.hierarchy import fcluster, linkage
    except ImportError:
        raise RuntimeError("reduce_to > 0 needs scipy (pip install scipy)") from None
    if n >= len(centroids):
        raise ValueError(f"reduce_to={n} must be smaller than k={len(centroids)}")
    groups = fcluster(linkage(centroids.astype(np.float64), method="ward"), t=n, criterion="maxclust") - 1
    if groups.max() + 1 != n:  # ties in the merge heights can stop fcluster short of n groups
        raise RuntimeError(f"agglomeration gave {groups.max() + 1} groups instead of {n}")
    weights = np.asarray(counts, dtype=np.float64) + 1e-6  # unused centroids still define their group's mean
    sums = np.zeros((n, centroids.shape[1]))
    np.add.at(sums, groups, centroids * weights[:, None])
    return (sums / np.bincount(groups, weights=weights, minlength=n)[:, None]).astype(np.float32)
