"""Throughput of `koe units encode` (seconds of audio per second) beside the raw encoder forward it wraps.

    python benchmarks/encode_throughput.py --small          # CPU, a minute: mel + a tiny HuBERT
    python benchmarks/encode_throughput.py                  # GPU: mel + HuBERT-base-shaped encoder (layer 9, bf16)

The pipeline row runs the real `run_encode` (WAV decoding threads, length-sorted batches, chunking, k-means
assignment, dedup, shard writing) on files of 1-20 s; the raw row runs only the device forward (for HF, the same
encoder cut after the same layer, bf16 autocast on GPU) on a fixed, already padded batch (32 x 10 s). The target
is pipeline >= 80% of raw. Models are randomly initialised (HubertConfig() defaults = HuBERT base shape): speed
does not depend on weights. Prints a table and writes --json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from koe.corpus.manifest import Utterance, write_manifest
from koe.stage import KoeInputError
from koe.units.config import EncodeConfig
from koe.units.encode import run_encode
from koe.units.features import build_extractor, resolve_device
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec


def make_manifest(root: Path, num_files: int, min_s: float, max_s: float, seed: int = 0) -> tuple[Path, float]:
    """num_files WAVs (16 kHz PCM16) of uniform random length in [min_s, max_s]; returns manifest, total seconds."""
    rng = np.random.default_rng(seed)
    utts, total = [], 0.0
    for i in range(num_files):
        dur = float(rng.uniform(min_s, max_s))
        wav = (0.1 * rng.standard_normal(int(dur * 16000))).astype(np.float32)
        sf.write(root / f"{i:05d}.wav", wav, 16000, subtype="PCM_16")
        utts.append(Utterance(id=f"u{i:05d}", audio_path=f"{i:05d}.wav", sample_rate_hz=16000,
                              duration_s=len(wav) / 16000))
        total += len(wav) / 16000
    write_manifest(root / "manifest.jsonl", utts)
    return root / "manifest.jsonl", total


def make_tokenizer(features: str, out: Path, k: int, device: str, batch_s: float) -> UnitTokenizer:
    """A tokenizer directory with random centroids (assignment cost is what matters, not their values)."""
    ex = build_extractor(features, device, batch_s=batch_s)
    centroids = np.random.default_rng(0).standard_normal((k, ex.spec.dim)).astype(np.float32)
    tok = UnitTokenizer(UnitTokenizerSpec(features=ex.spec, num_units=k), centroids)
    tok.save(out)
    return tok


def raw_forward(features: str, device: str, batch: int, seconds: float, repeats: int) -> float:
    """Audio seconds per second of the device forward alone (`run`) on a fixed, already collated batch."""
    ex = build_extractor(features, device, batch_s=batch * seconds + 1)
    wavs = [(0.1 * np.random.default_rng(i).standard_normal(int(seconds * 16000))).astype(np.float32)
            for i in range(batch)]
    prepared = ex.prepare(wavs)
    ex.run(prepared)  # warm-up (kernels, allocator)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        out = ex.run(prepared)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    assert len(out) == batch
    return batch * seconds * repeats / (time.perf_counter() - start)


def pipeline(manifest: Path, tok_dir: Path, out: Path, device: str, batch_s: float, workers: int) -> float:
    cfg = EncodeConfig(manifest=manifest, tokenizer=tok_dir, out_dir=out, device=device, batch_s=batch_s,
                       num_workers=workers, shard_size=10_000, force=True)
    report = run_encode(cfg)
    if report.failures:
        raise KoeInputError(f"{len(report.failures)} files failed: {report.failures[0]}")
    return float(report.extra["audio_s_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a quick CPU run: few short files, a tiny HuBERT")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--files", type=int, default=None, help="number of 1-20 s files (default: 400 GPU, 40 CPU)")
    ap.add_argument("--batch-s", type=float, default=320.0, help="padded seconds per encoder batch")
    ap.add_argument("--workers", type=int, default=1, help="encode processes")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = ap.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    gpu = device.startswith("cuda")
    num_files = args.files or (8 if args.small else 400 if gpu else 40)
    min_s, max_s = (1.0, 4.0) if args.small else (1.0, 20.0)
    raw_batch, raw_s, repeats = (4, 2.0, 2) if args.small else (32, 10.0, 5 if gpu else 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest, audio_s = make_manifest(root, num_files, min_s, max_s)
        cases = [("mel", "mel", 100, "cpu")]
        if gpu or args.small:
            from transformers import HubertConfig, HubertModel

            shape = HubertConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=128,
                                 conv_dim=(64,) * 7) if args.small else HubertConfig()
            HubertModel(shape).save_pretrained(root / "hubert")
            layer = 2 if args.small else 9
            cases.append(("hubert-tiny" if args.small else "hubert-base", f"hf:{root / 'hubert'}@{layer}", 500, device))
        for name, features, k, dev in cases:
            make_tokenizer(features, root / f"tok-{name}", k, dev, args.batch_s)
            pipeline(manifest, root / f"tok-{name}", root / "warm", dev, args.batch_s, args.workers)  # warm caches
            piped = pipeline(manifest, root / f"tok-{name}", root / f"units-{name}", dev, args.batch_s, args.workers)
            raw = raw_forward(features, dev, raw_batch, raw_s, repeats)
            rows.append({"features": name, "device": dev, "files": num_files, "audio_s": round(audio_s, 1),
                         "pipeline_audio_s_per_s": round(piped, 1), "raw_audio_s_per_s": round(raw, 1),
                         "ratio": round(piped / raw, 3), "raw_batch": f"{raw_batch} x {raw_s:g} s"})
    print(f"\n{'features':<12} {'device':<7} {'pipeline s/s':>13} {'raw fwd s/s':>12} {'ratio':>6}  raw batch")
    for r in rows:
        print(f"{r['features']:<12} {r['device']:<7} {r['pipeline_audio_s_per_s']:>13.1f} "
              f"{r['raw_audio_s_per_s']:>12.1f} {r['ratio']:>6.2f}  {r['raw_batch']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
