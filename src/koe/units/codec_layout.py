"""How multi-level codec codes [levels, frames] become LM token streams (the data stage's layouts; docs/vocoder.md).

    ids = flatten(codes, codebook_size)            # one stream, frame-major: c0t0 c1t0 .. c(L-1)t0 c0t1 ..
    codes = unflatten(ids, levels, codebook_size)
    streams = delay(codes, pad_id=-1)               # [levels, frames + levels - 1]: level l shifted right by l
    codes = undelay(streams)

- flattened: one token per (frame, level), level l's codes offset by l * codebook_size so the levels never share
  ids; sequence length = frames x levels (Moshi's 12.5 Hz x 8 = 100 tokens/s); any causal LM reads it unchanged.
- delayed (MusicGen / Moshi's acoustic delay): L parallel streams, level l delayed l frames, so at step t the LM
  predicts level 0 of frame t together with level l of frame t - l, each conditioned on the coarser levels of its own
  frame; length frames + L - 1, one head and one summed input embedding per level.
- parallel: the [levels, frames] array as is (all levels of a frame at the same step; needs a depth model such as
  Moshi's RQ-Transformer to predict the levels of one frame in order).
"""

from __future__ import annotations

import numpy as np

LAYOUTS = ("flattened", "delayed", "parallel")


def flatten(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    offsets = np.arange(codes.shape[0])[:, None] * codebook_size
    return (codes + offsets).T.reshape(-1)


def unflatten(ids: np.ndarray, levels: int, codebook_size: int) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size % levels:
        raise ValueError(f"{ids.size} flattened ids are not a whole number of {levels}-level frames")
    codes = ids.reshape(-1, levels).T
    return codes - np.arange(levels)[:, None] * codebook_size


def delay(codes: np.ndarray, pad_id: int) -> np.ndarray:
    levels, frames = codes.shape
    out = np.full((levels, frames + levels - 1), pad_id, dtype=np.int64)
    for level in range(levels):
        out[level, level:level + frames] = codes[level]
    return out


def undelay(streams: np.ndarray) -> np.ndarray:
    levels = streams.shape[0]
    frames = streams.shape[1] - levels + 1
    return np.stack([streams[level, level:level + frames] for level in range(levels)])
