"""The quantizer: faiss k-means over sampled frames, and nearest-centroid assignment in torch.

    result = fit_kmeans(frames, k=500, iterations=50, seed=0)        # frames: float32 [N, dim]
    labels = assign_units(torch.from_numpy(frames), torch.from_numpy(result.centroids))

faiss subsamples its training set to `k * max_points_per_centroid` points. Its default of 256 fits HuBERT features
(768 dims, K=500) clearly worse than scikit-learn on the same frames, so koe samples `max_frames` itself (seeded,
see `koe units fit`) and passes a high `max_points_per_centroid` so that faiss trains on that whole sample.
Assignment is a matmul + argmin in torch so that encoder features never leave the GPU during `koe units encode`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


@dataclasses.dataclass
class KMeansResult:
    centroids: np.ndarray  # float32 [k, dim]
    inertia: float  # sum of squared distances of the given frames to their nearest centroid
    objective: list[float]  # faiss's objective after each iteration of the kept run, to judge convergence
    num_points: int  # frames faiss actually trained on


INIT_METHODS = ("kmeans++", "random", "afkmc2")


def fit_kmeans(frames: np.ndarray, k: int, iterations: int, seed: int, max_points_per_centroid: int = 10_000,
               init: str = "kmeans++", nredo: int = 1) -> KMeansResult:
    """Lloyd's k-means (faiss), deterministic for a seed and input; the best of `nredo` runs is kept.

    k-means++ initialisation (scikit-learn's default) avoids the merged and split clusters that faiss's default
    random init leaves on well-separated data. Raises ValueError when there are fewer frames than clusters.
    """
    import faiss

    x = np.ascontiguousarray(frames, dtype=np.float32)
    if x.ndim != 2 or len(x) < k:
        raise ValueError(f"k-means needs at least k={k} frames of shape [N, dim], got {x.shape}")
    methods = {"kmeans++": faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS, "random": faiss.ClusteringInitMethod_RANDOM,
               "afkmc2": faiss.ClusteringInitMethod_AFK_MC2}
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, max_points_per_centroid=max_points_per_centroid,
                      init_method=methods[init], nredo=nredo, verbose=False)
    km.train(x)
    centroids = np.asarray(km.centroids, dtype=np.float32)
    _, sq_dist = nearest_centroid(torch.from_numpy(x), torch.from_numpy(centroids))
    objective = [float(v) for v in km.obj[-iterations:]]  # faiss appends every redo's curve; keep the last
    return KMeansResult(centroids, float(sq_dist.double().sum()), objective, min(len(x), k * max_points_per_centroid))


@torch.inference_mode()
def nearest_centroid(frames: torch.Tensor, centroids: torch.Tensor, block: int = 8192
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(index int64 [N], squared L2 distance float32 [N]) of each frame's nearest centroid, on frames' device.

    ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, one matmul per block of frames.
    """
    c = centroids.to(frames.device, torch.float32)
    c_sq = c.square().sum(1)
    labels, dists = [torch.zeros(0, dtype=torch.long, device=frames.device)], [torch.zeros(0, device=frames.device)]
    for x in frames.split(block):
        x = x.float()
        d, i = torch.min(c_sq[None, :] - 2 * x @ c.T, dim=1)
        labels.append(i)
        dists.append((d + x.square().sum(1)).clamp_min(0))
    return torch.cat(labels), torch.cat(dists)


def assign_units(frames: torch.Tensor, centroids: torch.Tensor, block: int = 8192) -> torch.Tensor:
    """Index (int64 [N]) of the nearest centroid of each frame; computed where the frames are (GPU in encode)."""
    return nearest_centroid(frames, centroids, block)[0]


def codebook_usage(labels: np.ndarray, k: int) -> dict[str, float]:
    """How many units are used and how evenly (perplexity of the unit distribution; k means perfectly even)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return {"units_used": int((counts > 0).sum()), "units_used_frac": float((counts > 0).mean()),
            "usage_perplexity": float(np.exp(-(p * np.log(p)).sum()))}
