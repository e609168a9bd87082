"""koe's own residual vector quantiser: k-means initialised codebooks, dead-code restart, per-level health stats.

    rvq = ResidualVQ.fit(frames, levels=4, codebook_size=256, seed=0)   # frames: float [N, dim] features
    codes = rvq.encode(frames)                # int64 [levels, N]
    approx = rvq.decode(codes)                # float [N, dim]: sum of one codeword per level
    stats = codebook_stats(codes, 256, frame_rate_hz=100.0)   # usage, perplexity, bits/s per level

Each level quantises what the previous levels left (the residual), so level 1 is a plain k-means of the features
and each later level refines it (SoundStream/EnCodec's RVQ). Fitting is k-means per level (k-means++ seeding,
Lloyd iterations); a codeword that no frame picks ("dead", the usual collapse) is restarted on the frame with the
largest residual error, DAC/EnCodec-style, so every level ends with its codebook in use. Fitted on log-mel frames
it is an offline acoustic tokenizer whose codes decode back to log-mel (then to audio by a mel vocoder).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class ResidualVQ:
    codebooks: np.ndarray  # float32 [levels, codebook_size, dim]
    restarts: list[int] = dataclasses.field(default_factory=list)  # dead codes restarted per level

    @classmethod
    def fit(cls, frames: np.ndarray, levels: int, codebook_size: int, seed: int = 0,
            iterations: int = 20) -> ResidualVQ:
        frames = np.asarray(frames, dtype=np.float32)
        if len(frames) < codebook_size:
            raise ValueError(f"{len(frames)} frames cannot fit {codebook_size} codes")
        rng = np.random.default_rng(seed)
        residual, books, restarts = frames.copy(), [], []
        for _ in range(levels):
            book, restarted = _kmeans(residual, codebook_size, rng, iterations)
            books.append(book)
            restarts.append(restarted)
            residual = residual - book[_nearest(residual, book)]
        return cls(np.stack(books), restarts)

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    def encode(self, frames: np.ndarray) -> np.ndarray:
        residual, codes = np.asarray(frames, dtype=np.float32).copy(), []
        for book in self.codebooks:
            idx = _nearest(residual, book)
            residual -= book[idx]
            codes.append(idx)
        return np.stack(codes)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return sum(book[c] for book, c in zip(self.codebooks, codes, strict=True))


def _nearest(x: np.ndarray, book: np.ndarray) -> np.ndarray:
    d = (x ** 2).sum(1)[:, None] - 2 * x @ book.T + (book ** 2).sum(1)[None]
    return d.argmin(1)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> tuple[np.ndarray, int]:
    """Lloyd's k-means from k-means++ seeds; dead codes restart on the worst-quantised frames. (centroids, restarts)"""
    book = [x[rng.integers(len(x))]]
    dist = ((x - book[0]) ** 2).sum(1)
    for _ in range(k - 1):
        book.append(x[rng.choice(len(x), p=dist / dist.sum()) if dist.sum() > 0 else rng.integers(len(x))])
        dist = np.minimum(dist, ((x - book[-1]) ** 2).sum(1))
    book, restarts = np.stack(book), 0
    for _ in range(iterations):
        idx = _nearest(x, book)
        counts = np.bincount(idx, minlength=k)
        sums = np.zeros_like(book)
        np.add.at(sums, idx, x)
        alive = counts > 0
        book[alive] = sums[alive] / counts[alive, None]
        dead = np.flatnonzero(~alive)
        if dead.size:
            err = ((x - book[idx]) ** 2).sum(1)
            book[dead] = x[np.argsort(err)[::-1][: dead.size]]
            restarts += dead.size
    return book.astype(np.float32), restarts


def codebook_stats(codes: np.ndarray, codebook_size: int, frame_rate_hz: float) -> list[dict]:
    """Per level: share of codes used, perplexity (exp entropy of the code distribution) and bits/s."""
    rows = []
    for level, c in enumerate(np.asarray(codes)):
        p = np.bincount(c, minlength=codebook_size) / max(len(c), 1)
        nz = p[p > 0]
        rows.append({"level": level, "usage": float((p > 0).mean()),
                     "perplexity": float(np.exp(-(nz * np.log(nz)).sum())),
                     "bitrate_bps": frame_rate_hz * math.log2(codebook_size)})
    return rows
