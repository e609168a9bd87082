"""Syllable units (min-cut, greedy, uniform baseline) beside frame units, on TinySpeech and real speech; one table.

    .venv/bin/python benchmarks/syllable_units.py --out runs/syllables
    .venv/bin/python benchmarks/syllable_units.py --out runs/syllables --tiny runs/synth/manifest.jsonl \
        --cathy runs/units_real/cathy/aligned.jsonl --features mel mfcc hf:runs/hubert@6

Corpora: TinySpeech (`koe synth num_items=200 voices_per_item=3`: exact word and phone times, three voices per
sentence, so speaker invariance can be measured), Cathy (300 CMU ARCTIC utterances, forced-aligned with `koe align`)
and 5 LibriVox utterances with pocketsphinx word/phone alignments, encoded with the tokenizer fitted on Cathy. For
each feature backend: frame units (k-means, k=100, dedup) and syllable units (segmentation=mincut|greedy|uniform,
k-means k=400 agglomerated to 200; uniform cuts every 0.2 s of speech, the rate the others reach). Columns come
from `koe units stats`: tokens per second, boundary
precision / recall / F1 / R-value against words and syllables (derived from phones, 50 ms tolerance), and the mean
normalised unit edit distance between voices saying the same sentence (beside unrelated sentences).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from koe.cli import run_command
from koe.corpus.manifest import Utterance, write_manifest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
UNITS = ("frames", "mincut", "greedy", "uniform")


def prepare(out: Path, tiny: Path | None, cathy: Path | None, tiny_items: int) -> dict[str, Path]:
    """Manifests with word and phone times: reused when given, else made with `koe synth` / `koe align`."""
    if tiny is None:
        run_command("synth", [f"out_dir={out / 'tiny'}", f"num_items={tiny_items}", "voices_per_item=3",
                              "num_workers=1"])
        tiny = out / "tiny/manifest.jsonl"
    if cathy is None:
        run_command("corpus import", ["hf", f"path={SHARED / 'cathy_arctic/metadata.tsv'}", "hf_audio_column=path",
                                      "hf_id_column=utt_id", f"out_dir={out / 'cathy'}"])
        run_command("align", [str(out / "cathy/manifest.jsonl"), f"out={out / 'cathy/aligned.jsonl'}",
                              "num_workers=2"])
        cathy = out / "cathy/aligned.jsonl"
    return {"tinyspeech": tiny, "cathy": cathy, "librivox": librivox_manifest(out / "librivox")}


def librivox_manifest(out: Path) -> Path:
    """A manifest of the 5 LibriVox utterances from pocketsphinx's word and phone JSON (silences dropped)."""
    root = SHARED / "pocketsphinx_librivox_aligned"
    utts = []
    for name in (root / "fileids").read_text().split():
        doc = json.loads((root / f"{name}.phone.json").read_text())
        words, phones = [], []
        for w in doc["w"]:
            if w["t"].startswith("<"):
                continue
            words.append((re.sub(r"\(\d+\)$", "", w["t"]), w["b"], round(w["b"] + w["d"], 3)))
            phones += [(p["t"].lower(), p["b"], round(p["b"] + p["d"], 3)) for p in w["w"]]
        utts.append(Utterance(id=name, audio_path=str(root / f"{name}.wav"), sample_rate_hz=16000,
                              duration_s=doc["d"], speaker="librivox", text=doc["t"], words=words, phones=phones))
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.jsonl", utts)
    return out / "manifest.jsonl"


def fit_args(kind: str) -> list[str]:
    if kind == "frames":
        return ["k=100"]
    rate = ["syllables.sec_per_syllable=0.2"] if kind == "uniform" else []  # ~5 tokens/s, like the others
    return [f"segmentation={kind}", "k=400", "reduce_to=200", *rate]


def run_one(out: Path, corpus: str, manifest: Path, features: str, kind: str, tok: Path | None) -> dict:
    """fit (unless a tokenizer is given), encode, stats; returns stats.json plus the wall time."""
    slug = f"{corpus}_{re.sub(r'[^A-Za-z0-9]+', '-', features)}_{kind}"
    start = time.perf_counter()
    if tok is None:
        tok = out / "tok" / slug
        run_command("units fit", [str(manifest), f"out_dir={tok}", f"features={features}", "split=null",
                                  *fit_args(kind)])
    units = out / "units" / slug
    run_command("units encode", [str(manifest), f"tokenizer={tok}", f"out_dir={units}", "device=cpu"])
    run_command("units stats", [str(units), f"manifest={manifest}"])
    return {**json.loads((units / "stats.json").read_text()), "tokenizer": str(tok),
            "seconds": time.perf_counter() - start}


def row(corpus: str, features: str, kind: str, s: dict) -> str:
    def prf(kind_: str) -> str:
        b = (s.get("boundaries") or {}).get(kind_)
        return "n/a" if not b else " / ".join(f"{b[k]:.2f}" for k in ("precision", "recall", "f1", "r_value"))

    inv = s.get("speaker_invariance")
    ned = "n/a" if not inv else f"{inv['same_text_ned']:.3f} / {inv['different_text_ned']:.3f}"
    return (f"| {corpus} | {features} | {kind} | {s['token_rate_hz']:.2f} | {prf('words')} | {prf('syllables')} | "
            f"{ned} | {s['seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/syllables"))
    parser.add_argument("--tiny", type=Path, help="reuse a `koe synth` manifest (several voices per text)")
    parser.add_argument("--cathy", type=Path, help="reuse an aligned Cathy manifest (`koe align` output)")
    parser.add_argument("--tiny-items", type=int, default=200, help="TinySpeech items to synthesize (x3 voices)")
    parser.add_argument("--features", nargs="+", default=["mel", "mfcc"])
    parser.add_argument("--units", nargs="+", default=list(UNITS), choices=UNITS)
    args = parser.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: this script needs the shared real-speech data")
    manifests = prepare(args.out, args.tiny, args.cathy, args.tiny_items)
    rows = []
    for features in args.features:
        for kind in args.units:
            for corpus in ("tinyspeech", "cathy"):
                stats = run_one(args.out, corpus, manifests[corpus], features, kind, None)
                rows.append(row(corpus, features, kind, stats))
                if corpus == "cathy":
                    lv = run_one(args.out, "librivox", manifests["librivox"], features, kind, Path(stats["tokenizer"]))
                    rows.append(row("librivox (cathy tok)", features, kind, lv))
    print("\n| corpus | features | units | tokens/s | words P / R / F1 / R-val | syllables P / R / F1 / R-val | "
          "edit dist. same text / other text | s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(sorted(rows, key=lambda r: r.split("|")[1])))


if __name__ == "__main__":
    main()
