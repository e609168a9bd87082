"""Streaming synthesis: the HiFi-GAN vocoder run chunk by chunk with bounded look-ahead.

    for chunk in stream_audio(vocoder, units, durations, speaker="en-us", chunk_frames=20, lookahead_frames=8):
        play(chunk)                                  # 20 mel frames = 200 ms of audio per chunk

The generator is all convolutions with no normalisation over time (koe.vocoder.hifigan), so a sample depends only
on mel frames within `receptive_frames(shape)` of it. Each chunk is generated from its frames plus
`lookahead_frames` after and the same number before, and cropped: with lookahead >= receptive_frames the chunks
concatenate to the offline output up to float rounding; below that the error shrinks fast with the look-ahead
(measured by benchmarks/vocoder_streaming.py). Durations are needed up front (given, or predicted for the whole
unit sequence, which is cheap); latency to first audio = one chunk plus its look-ahead of generator work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from koe.vocoder.hifigan import GeneratorShape, HifiGanVocoder


def receptive_frames(shape: GeneratorShape, hop: int = 160) -> int:
    """Mel frames on each side that can reach an output sample (an upper bound, from the kernel sizes)."""
    radius = shape.prenet_layers * 2 + 3.0  # prenet k=5, conv_pre k=7, at the frame rate
    rate = 1
    for up in shape.upsample_rates:
        rate *= up
        k_up = 2 * up + up % 2
        mrf = max((k - 1) // 2 * (sum(shape.resblock_dilations) + len(shape.resblock_dilations))
                  for k in shape.resblock_kernel_sizes)
        radius += (math.ceil(k_up / up) * up + mrf) / rate
    return math.ceil(radius + 3 / hop)


@torch.no_grad()
def stream_audio(vocoder: HifiGanVocoder, units, durations=None, speaker: str | None = None,
                 chunk_frames: int = 20, lookahead_frames: int | None = None) -> Iterator[np.ndarray]:
    """float32 audio chunks of chunk_frames * hop samples (the last one shorter); see the module docstring."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames={chunk_frames} must be >= 1")
    context = receptive_frames(vocoder.shape) if lookahead_frames is None else lookahead_frames
    frames, row = vocoder.prepare(units, durations, speaker)
    device = next(vocoder.parameters()).device
    hop = vocoder.mel.hop_length
    x, spk = torch.from_numpy(frames)[None].to(device), torch.tensor([row], device=device)
    for start in range(0, len(frames), chunk_frames):
        end = min(start + chunk_frames, len(frames))
        lo, hi = max(0, start - context), min(len(frames), end + context)
        audio = vocoder.generator(x[:, lo:hi], spk)[0]
        yield audio[(start - lo) * hop:(end - lo) * hop].float().cpu().numpy()
