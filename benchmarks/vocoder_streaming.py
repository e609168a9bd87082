"""Streaming synthesis of a trained hifigan vocoder: error vs offline per look-ahead, and first-audio latency.

    python benchmarks/vocoder_streaming.py --vocoder runs/voc/hifigan --units runs/voc/data/units --num 10

For each look-ahead (mel frames, 10 ms each) the chunked output (--chunk frames per chunk) is compared with the
offline output of the same units and true durations: max and RMS absolute difference (audio in [-1, 1]).
First-audio latency = wall time from the call to the first chunk (durations given; --threads CPU threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from koe.units.shards import read_unit_shards
from koe.vocoder import UnitVocoder, units_to_audio
from koe.vocoder.streaming import receptive_frames, stream_audio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder", type=Path, required=True)
    p.add_argument("--units", type=Path, required=True)
    p.add_argument("--num", type=int, default=10)
    p.add_argument("--chunk", type=int, default=20, help="mel frames per chunk")
    p.add_argument("--lookahead", type=int, nargs="+", default=[0, 4, 8, 16])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    vocoder = UnitVocoder.load(args.vocoder, device=args.device)
    records = [r for _, r in zip(range(args.num), read_unit_shards(args.units), strict=False)]
    full = receptive_frames(vocoder.shape)
    print(f"receptive field bound: {full} frames; chunk {args.chunk} frames; {len(records)} utterances")
    print("| look-ahead (frames) | max abs diff | RMS diff | first-audio latency (ms) |\n|---|---|---|---|")
    for look in [*args.lookahead, full]:
        diffs, rms, latency = [], [], []
        for r in records:
            offline = units_to_audio(vocoder, r.units, r.durations)
            start = time.perf_counter()
            stream = stream_audio(vocoder, r.units, r.durations, chunk_frames=args.chunk, lookahead_frames=look)
            chunks = [next(stream)]
            latency.append(time.perf_counter() - start)
            chunks.extend(stream)
            d = np.abs(np.concatenate(chunks) - offline)
            diffs.append(d.max())
            rms.append(np.sqrt((d ** 2).mean()))
        print(f"| {look} | {max(diffs):.2e} | {np.mean(rms):.2e} | {1000 * np.median(latency):.0f} |")


if __name__ == "__main__":
    main()
