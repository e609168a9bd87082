"""Syllable-like segmentation of one utterance's frame features: speech mask, then min-cut or greedy per region.

    from koe.units.segment import SegmentParams, segment_features
    segments, pooled = segment_features(raw_feats, "mfcc", frame_rate_hz=100.0, params=SegmentParams(method="greedy"))
    # segments int64 [M, 2]: [start, end) frames of each syllable-like segment in time order (silence in none);
    # pooled float32 [M, dim]: each segment's mean (normalised) feature

Two algorithms, one registry (`SEGMENTERS`): each takes the (per-utterance normalised) features of one speech region
and returns the segment boundaries inside it. A new algorithm is one function added there.

- `mincut` (SD-HuBERT, Cho et al. 2024): similarity S = F F^T shifted positive (S - min + 1e-7); the region is cut into
  exactly K = ceil(duration / sec_per_syllable) + 1 segments (deliberate over-segmentation) by the dynamic programme
  C[i, k] = min_j C[j, k-1] + cut(j:i) / (assoc(j:i) + cut(j:i)), assoc = within-segment sum of S / 2, cut = sum of
  S from the segment to the rest of the region; segments are at most `max_segment_s` long, which bands the DP to
  O(K T L) and lets it run on cumulative sums of S in numpy. Adjacent segments are then merged (see below).
- `greedy` (Sylber, Cho et al. 2025): a new segment starts when cos(frame, running segment mean) < greedy_threshold;
  then adjacent segments are merged, and each boundary is moved, within half of each neighbouring segment, to where
  the frames on either side are closest (cosine) to their own segment's mean.

- `uniform`: round(duration / sec_per_syllable) equal segments per region, the baseline the others must beat.

Merging (mincut, greedy): while the most similar adjacent pair (cosine of mean features) reaches
`merge_threshold`, merge it. After any algorithm, segments shorter than `min_segment_s` join their more similar
neighbour (Komatsu et al. keep segments of 3..35 frames at 50 Hz).

Speech mask: SD-HuBERT thresholds the L2 norm of HuBERT features. For `hf:` features koe does the same on the
segmented layer; for mel and MFCC features the norm mostly measures spectral tilt, so koe uses frame log energy
instead (`activity`). The activity is min-max
normalised between its 1st and 99th percentiles in the utterance, frames above `silence_threshold` are speech;
pauses shorter than `min_silence_s` (stop closures) are filled in, speech runs shorter than `min_speech_s` dropped.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import numpy as np

from koe.units.config import SegmentOptions

EPS = 1e-8


@dataclasses.dataclass
class SegmentParams(SegmentOptions):
    """SegmentOptions (documented in koe.units.config) and the algorithm; the `segmentation` section of
    unit_tokenizer.json."""

    method: str = "mincut"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SegmentParams:
        return cls(**d)


Segmenter = Callable[[np.ndarray, float, SegmentParams], np.ndarray]


def mincut_region(feats: np.ndarray, frame_rate_hz: float, params: SegmentParams) -> np.ndarray:
    """SD-HuBERT min-cut of one speech region, then merging; boundaries int64 [M+1] from 0 to len(feats)."""
    t = len(feats)
    k = min(t, math.ceil(t / frame_rate_hz / params.sec_per_syllable) + 1)
    max_len = max(math.ceil(t / k), round(params.max_segment_s * frame_rate_hz), 1)
    bounds = mincut_bounds(feats, k, max_len)
    return merge_adjacent(feats, bounds, params.merge_threshold)


def uniform_region(feats: np.ndarray, frame_rate_hz: float, params: SegmentParams) -> np.ndarray:
    """Baseline: round(duration / sec_per_syllable) equal segments (at least one); what a segmenter must beat."""
    t = len(feats)
    k = min(t, max(1, round(t / frame_rate_hz / params.sec_per_syllable)))
    return np.round(np.linspace(0, t, k + 1)).astype(np.int64)


def mincut_bounds(feats: np.ndarray, k: int, max_len: int) -> np.ndarray:
    """Exactly k segments of at most max_len frames minimising the summed normalised cuts (banded DP)."""
    x = np.asarray(feats, dtype=np.float64)
    t = len(x)
    s = x @ x.T
    s = s - s.min() + 1e-7
    cum = np.zeros((t + 1, t + 1))
    cum[1:, 1:] = s.cumsum(0).cumsum(1)
    row = np.concatenate([[0.0], s.sum(1).cumsum()])
    ends = np.arange(t + 1)[:, None]
    starts = ends - np.arange(1, max_len + 1)[None, :]  # [T+1, L]: segment [start, end) of length l
    valid = starts >= 0
    j = np.maximum(starts, 0)
    within = cum[ends, ends] - cum[j, ends] - cum[ends, j] + cum[j, j]
    cut = (row[ends] - row[j]) - within
    with np.errstate(divide="ignore", invalid="ignore"):  # invalid (start < 0) entries are replaced by inf
        cost = np.where(valid, cut / (within / 2 + cut), np.inf)
    total = np.full(t + 1, np.inf)
    total[0] = 0.0
    back = np.zeros((k + 1, t + 1), dtype=np.int64)
    for step in range(1, k + 1):
        cand = total[j] + cost
        best = np.argmin(cand, axis=1)
        total = cand[np.arange(t + 1), best]
        back[step] = j[np.arange(t + 1), best]
    bounds = [t]
    for step in range(k, 0, -1):
        bounds.append(back[step, bounds[-1]])
    return np.array(bounds[::-1], dtype=np.int64)


def greedy_region(feats: np.ndarray, frame_rate_hz: float, params: SegmentParams) -> np.ndarray:
    """Sylber's linear-time segmentation of one speech region; boundaries int64 [M+1] from 0 to len(feats)."""
    unit = _unit_rows(feats)
    bounds = [0]
    total = unit[0].copy()
    for i in range(1, len(unit)):
        if unit[i] @ total / (np.linalg.norm(total) + EPS) < params.greedy_threshold:
            bounds.append(i)
            total = unit[i].copy()
        else:
            total += unit[i]
    bounds = merge_adjacent(feats, np.array([*bounds, len(unit)], dtype=np.int64), params.merge_threshold)
    return refine_bounds(feats, bounds)


def refine_bounds(feats: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Move each inner boundary, within half of each neighbouring segment, to maximise the frames' cosine with the
    mean of the segment they end up in (the two means fixed, so the windows are independent)."""
    unit = _unit_rows(feats)
    out = bounds.copy()
    for i in range(1, len(bounds) - 1):
        a, b, c = bounds[i - 1], bounds[i], bounds[i + 1]
        lo, hi = b - (b - a) // 2, b + (c - b) // 2
        if hi - lo < 2:
            continue
        left, right = _unit_rows(unit[a:b].mean(0, keepdims=True))[0], _unit_rows(unit[b:c].mean(0, keepdims=True))[0]
        gain = unit[lo:hi] @ (left - right)  # frame t before the boundary rather than after it
        candidates = np.arange(max(lo, a + 1), min(hi, c - 1) + 1)
        score = np.concatenate([[0.0], gain.cumsum()])[candidates - lo]
        out[i] = candidates[np.argmax(score)]
    return out


def merge_adjacent(feats: np.ndarray, bounds: np.ndarray, threshold: float) -> np.ndarray:
    """Merge the most similar adjacent segments (cosine of mean features) while that similarity >= threshold."""
    x = np.asarray(feats, dtype=np.float64)
    sums = [x[a:b].sum(0) for a, b in itertools.pairwise(bounds)]
    bounds = list(bounds)
    while len(sums) > 1:
        means = _unit_rows(np.stack(sums))
        sims = (means[:-1] * means[1:]).sum(1)
        i = int(np.argmax(sims))
        if sims[i] < threshold:
            break
        sums[i : i + 2] = [sums[i] + sums[i + 1]]
        del bounds[i + 1]
    return np.array(bounds, dtype=np.int64)


def absorb_short(feats: np.ndarray, bounds: np.ndarray, min_len: int) -> np.ndarray:
    """Merge each segment shorter than min_len frames (shortest first) into its more similar neighbour."""
    x = np.asarray(feats, dtype=np.float64)
    bounds = list(bounds)
    while len(bounds) > 2:
        lengths = np.diff(bounds)
        i = int(np.argmin(lengths))
        if lengths[i] >= min_len:
            break
        mean = x[bounds[i] : bounds[i + 1]].mean(0)
        sims = [_cos(mean, x[bounds[j] : bounds[j + 1]].mean(0)) if 0 <= j < len(lengths) else -np.inf
                for j in (i - 1, i + 1)]
        del bounds[i if sims[0] >= sims[1] else i + 1]
    return np.array(bounds, dtype=np.int64)


SEGMENTERS: dict[str, Segmenter] = {"mincut": mincut_region, "greedy": greedy_region, "uniform": uniform_region}


def activity(raw: np.ndarray, backend: str, n_mels: int = 40) -> np.ndarray:
    """Per-frame loudness: the L2 norm of encoder features; log energy (log-sum-exp over the bands of the log-mel
    spectrum) for mel, and for MFCC over the log-mel envelope rebuilt from the cepstra (inverse orthonormal DCT of
    the first third of the columns; n_mels = the filterbank size). c0 alone, the mean log band energy, is
    dominated by empty bands and misses narrow-band sounds."""
    raw = np.asarray(raw, dtype=np.float64)
    if backend == "mfcc":
        n_ceps = raw.shape[1] // 3
        n, k = np.arange(n_mels), np.arange(n_ceps)[:, None]
        dct = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2 / n_mels)
        dct[0] /= np.sqrt(2)
        raw = raw[:, :n_ceps] @ dct  # orthonormal rows: the transpose inverts the truncated DCT
    if backend in ("mel", "mfcc"):
        peak = raw.max(1, keepdims=True)
        return peak[:, 0] + np.log(np.exp(raw - peak).sum(1))
    return np.linalg.norm(raw, axis=1)


def speech_mask(raw: np.ndarray, backend: str, frame_rate_hz: float, params: SegmentParams, n_mels: int = 40
                ) -> np.ndarray:
    """Boolean [T]: activity min-max normalised between its 1st and 99th percentiles > silence_threshold, with
    short pauses filled and short speech runs dropped."""
    act = activity(raw, backend, n_mels)
    lo, hi = np.percentile(act, [1, 99]) if len(act) else (0.0, 0.0)
    mask = (act - lo) / max(hi - lo, EPS) > params.silence_threshold
    for value, min_s in ((False, params.min_silence_s), (True, params.min_speech_s)):
        for a, b in runs(mask, value):
            if b - a < min_s * frame_rate_hz and (value or (a > 0 and b < len(mask))):
                mask[a:b] = not value
    return mask


def runs(mask: np.ndarray, value: bool = True) -> list[tuple[int, int]]:
    """[start, end) of each maximal run of `value` in a boolean array."""
    m = np.concatenate([[False], np.asarray(mask) == value, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def normalize(raw: np.ndarray, params: SegmentParams, frame_rate_hz: float) -> np.ndarray:
    """The features segments are found on and pooled from: per-utterance mean and variance normalisation (removes
    channel and speaker offsets), a moving average over smooth_s (frame-to-frame jitter of spectral features
    otherwise cuts syllables apart), rows scaled to unit length (F F^T = cosine similarity; spectral dot products
    mostly measure loudness). Each step can be switched off."""
    x = np.asarray(raw, dtype=np.float64)
    if params.cmvn and len(x) > 1:
        x = (x - x.mean(0)) / (x.std(0) + 1e-5)
    width = round(params.smooth_s * frame_rate_hz)
    if width > 1 and len(x) > 1:
        kernel = np.ones(width) / width
        padded = np.pad(x, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
        x = np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(x.shape[1])], axis=1)
    return _unit_rows(x) if params.cosine else x


def segment_features(raw: np.ndarray, backend: str, frame_rate_hz: float, params: SegmentParams, n_mels: int = 40
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(segments int64 [M, 2] of [start, end) frames, mean-pooled normalised features float32 [M, D]).

    An utterance with no speech frames gives one segment covering all of it, so every utterance has a token.
    """
    if params.method not in SEGMENTERS:
        raise ValueError(f"segmentation={params.method!r}: expected one of {sorted(SEGMENTERS)}")
    feats = normalize(raw, params, frame_rate_hz)
    regions = runs(speech_mask(raw, backend, frame_rate_hz, params, n_mels)) or [(0, len(feats))]
    min_len = round(params.min_segment_s * frame_rate_hz)
    segments = []
    for a, b in regions:
        bounds = SEGMENTERS[params.method](feats[a:b], frame_rate_hz, params)
        bounds = absorb_short(feats[a:b], bounds, min_len) + a
        segments += list(itertools.pairwise(bounds.tolist()))
    segs = np.array(segments, dtype=np.int64).reshape(-1, 2)
    pooled = np.stack([feats[a:b].mean(0) for a, b in segs]).astype(np.float32)
    return segs, pooled


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + EPS))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + EPS)
