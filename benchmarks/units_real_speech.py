"""Fit and evaluate unit tokenizers on real speech and on TinySpeech; print one table of `koe units stats`.

    .venv/bin/python benchmarks/units_real_speech.py --out runs/units_real [--features mfcc] [--k 100]

Corpora: FSDD (3,000 real recordings at 8 kHz, 6 speakers; resampled on load), Cathy (300 CMU ARCTIC utterances,
one speaker, forced-aligned here with pocketsphinx so phone purity and PNMI can be computed) and TinySpeech
(espeak voices, exact phone timings). Every step is a `koe` command, so the table can be rebuilt by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from koe.cli import run_command

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DIGITS = "{0: zero, 1: one, 2: two, 3: three, 4: four, 5: five, 6: six, 7: seven, 8: eight, 9: nine}"


def prepare(out: Path) -> dict[str, Path]:
    """Manifests per corpus (with alignments where they can be had)."""
    manifests = {}
    run_command("corpus import", ["pattern", f"path={SHARED / 'fsdd/recordings'}", f"out_dir={out / 'fsdd'}",
                                  "pattern={text}_{speaker}_{take}", f"text_map={DIGITS}"])
    manifests["fsdd (real, 8 kHz)"] = out / "fsdd/manifest.jsonl"
    run_command("corpus import", ["hf", f"path={SHARED / 'cathy_arctic/metadata.tsv'}", "hf_audio_column=path",
                                  "hf_id_column=utt_id", f"out_dir={out / 'cathy'}"])
    run_command("align", [str(out / "cathy/manifest.jsonl"), f"out={out / 'cathy/aligned.jsonl'}", "num_workers=2"])
    manifests["cathy (real, aligned)"] = out / "cathy/aligned.jsonl"
    run_command("synth", [f"out_dir={out / 'tiny'}", "num_items=600", "num_workers=2"])
    manifests["tinyspeech (espeak, 12 voices)"] = out / "tiny/manifest.jsonl"
    return manifests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/units_real"))
    parser.add_argument("--features", default="mfcc")
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: this script needs the shared real-speech data")
    rows = []
    for name, manifest in prepare(args.out).items():
        slug = name.split()[0]
        tok, units = args.out / f"{slug}_tok", args.out / f"{slug}_units"
        start = time.perf_counter()
        run_command("units fit", [str(manifest), f"out_dir={tok}", f"features={args.features}", f"k={args.k}",
                                  "split=null"])
        run_command("units encode", [str(manifest), f"tokenizer={tok}", f"out_dir={units}", "num_workers=2"])
        run_command("units stats", [str(units), f"manifest={manifest}"])
        stats = json.loads((units / "stats.json").read_text())
        rows.append((name, stats, time.perf_counter() - start))
    print(f"\n{args.features}, k={args.k}")
    print("| corpus | hours | tokens/s before dedup | after dedup | bitrate (bit/s) | usage | perplexity | "
          "phone purity | phone PNMI | fit+encode+stats s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s, secs in rows:
        print(f"| {name} | {s['audio_hours']:.2f} | {s['token_rate_before_dedup_hz']:.1f} | {s['token_rate_hz']:.1f} | "
              f"{s['bitrate_bps']:.0f} | {s['codebook_usage']:.2f} | {s['perplexity']:.1f} | "
              f"{_get(s, 'purity')} | {_get(s, 'pnmi')} | {secs:.0f} |")


def _get(stats: dict, key: str) -> str:
    phones = stats.get("phones") or {}
    return f"{phones[key]:.3f}" if key in phones else "n/a"


if __name__ == "__main__":
    main()
