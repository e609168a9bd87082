"""Accuracy of `koe align` (pocketsphinx): espeak speech with true timings, and real recordings.

    .venv/bin/python benchmarks/align_accuracy.py                      # all parts, cathy subset of 100
    .venv/bin/python benchmarks/align_accuracy.py --cathy-limit 300 --json out.json
    .venv/bin/python benchmarks/align_accuracy.py --held-out --cathy-limit 0     # 40 other Harvard sentences

1. espeak: 30 Harvard sentences (with --held-out: 40 others, never used for tuning) x voices (en-us, en+m3,
   en-us+f3) synthesized by koe.synth.espeak, whose event stream gives the true word times; each manifest goes
   through `run_align` (the whole stage, mismatch detector included) and every word start and end is compared with
   the truth: median |error| (ms), share within 50 ms, and the boundaries off by more than 50 ms by kind (start /
   end) and direction. Utterances that fail alignment are counted, never dropped from the denominator silently.
2. cathy_arctic (real, one speaker, no reference times): coverage and wall time with the true transcripts, and the
   mismatch detector, with one transcript in five swapped within the corpus and with every transcript rotated by one.
3. pocketsphinx_librivox_aligned (5 real utterances with pocketsphinx's own shipped alignments): coverage and the
   median difference of word boundaries from the shipped ones.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from koe.align.config import AlignConfig
from koe.align.run import run_align
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.stage import KoeInputError

HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
]
# Harvard lists 4-7: a second set, never used to tune the aligner, to check that a change does not merely fit the
# 30 sentences above (`--held-out`).
HARVARD_HELD_OUT = [
    "The wide road shimmered in the hot sun.", "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.", "The rope will bind the seven books at once.",
    "Hop over the fence and plunge in.", "The friendly gang left the drug store.", "Mesh wire keeps chicks inside.",
    "The frosty air passed through the coat.", "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.", "The show was a flop from the very start.",
    "A saw is a tool used for making boards.", "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.", "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.", "Both lost their lives in the raging storm.",
    "We talked of the side show in the circus.", "Use a pencil to write the first draft.",
    "He ran half way to the hardware store.", "The clock struck to mark the third period.",
    "A small creek cut across the field.", "Cars and busses stalled in snow drifts.",
    "The set of china hit the floor with a crash.", "This is a grand season for hikes on the road.",
    "The dune rose from the edge of the water.", "Those words were the cue for the actor to leave.",
    "A yacht slid around the point into the bay.", "The two met while playing on the sand.",
    "The ink stain dried on the finished page.", "The walled town was seized without a fight.",
    "The lease ran out in sixteen weeks.", "A tame squirrel makes a nice pet.",
    "The horn of the car woke the sleeping cop.", "The heart beat strongly and with firm strokes.",
    "The pearl was worn in a thin silver ring.", "The fruit peel was cut in thick slices.",
    "The Navy attacked the big task force.", "See the cat glaring at the scared mouse.",
    "There are more than two factors here.",
]
VOICES = ["en-us", "en+m3", "en-us+f3"]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def boundary_errors(truth: list, aligned: list) -> list[float]:
    """Signed start and end errors (aligned - truth) in ms, alternating start, end for each word, matched by
    position (same word sequence)."""
    if [w for w, _, _ in truth] != [w for w, _, _ in aligned]:
        raise ValueError("word sequences differ")
    return [(y - x) * 1000 for (_, a, b), (_, c, d) in zip(truth, aligned, strict=True) for x, y in ((a, c), (b, d))]


def summarize(errors: list[float]) -> dict:
    """Median |error|, share within 50 ms, and the boundaries off by more than 50 ms split by kind and direction
    (which kind dominates says what to fix: word ends cut early, starts late, ...)."""
    e = np.asarray(errors)
    kind = np.where(np.arange(e.size) % 2 == 0, "start", "end")
    misses = {f"{k}_{d}": int(((kind == k) & (sign * e > 50)).sum())
              for k in ("start", "end") for d, sign in (("early", -1), ("late", 1))}
    return {"boundaries": int(e.size), "median_ms": round(float(np.median(np.abs(e))), 1) if e.size else None,
            "within_50ms": round(float((np.abs(e) <= 50).mean()), 4) if e.size else None, "misses": misses}


def align(utts: list[Utterance], work: Path, **options) -> tuple[dict[str, Utterance], dict]:
    manifest = work / "manifest.jsonl"
    write_manifest(manifest, utts)
    report = run_align(AlignConfig(manifest=manifest, force=True, **options))
    aligned = {u.id: u for u in read_manifest(work / "manifest.aligned.jsonl")}
    return aligned, {"failures": [(f.item, f.reason) for f in report.failures], **report.to_dict()}


def bench_espeak(work: Path, per_voice: int | None, sentences: list[str]) -> dict:
    from koe.synth.espeak import synthesize

    out = {}
    for voice in VOICES:
        vdir = work / voice.replace("+", "_")
        vdir.mkdir()
        utts, truth, synth_failures = [], {}, []
        for i, text in enumerate(sentences[:per_voice]):
            try:
                syn = synthesize(text, voice=voice, rate_wpm=175, pitch=50)
            except KoeInputError as e:
                synth_failures.append(str(e))
                continue
            uid = f"h{i:02d}"
            sf.write(vdir / f"{uid}.wav", syn.audio, syn.sample_rate_hz)
            utts.append(Utterance(uid, f"{uid}.wav", syn.sample_rate_hz, syn.duration_s, voice, text))
            truth[uid] = syn.words
        aligned, report = align(utts, vdir)
        errors = [e for uid, u in aligned.items() for e in boundary_errors(truth[uid], u.words)]
        out[voice] = {"synthesized": len(utts), "synth_failures": synth_failures, "aligned": len(aligned),
                      "align_failures": report["failures"], **summarize(errors)}
    return out


def bench_cathy(work: Path, limit: int, num_workers: int) -> dict:
    """Real speech without reference times: coverage and run time with the true transcripts, and the mismatch
    detector on (a) one transcript in five swapped in pairs within the corpus and (b) every transcript rotated by
    one."""
    root = SHARED / "cathy_arctic"
    with (root / "metadata.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:limit]
    utts = [Utterance(r["utt_id"], str(root / r["path"]), 16000, float(r["duration_s"]), "cathy", r["text"])
            for r in rows]
    swapped = {j for i in range(0, len(utts) - 5, 10) for j in (i, i + 5)}
    mixed = [dataclasses.replace(u, text=utts[i + 5 if i % 10 == 0 else i - 5].text) if i in swapped else u
             for i, u in enumerate(utts)]
    rotated = [dataclasses.replace(u, text=utts[(i + 1) % len(utts)].text) for i, u in enumerate(utts)]
    index = {u.id: i for i, u in enumerate(utts)}
    out = {"utterances": len(utts)}
    cases = (("intact", utts, set()), ("mixed", mixed, swapped), ("rotated", rotated, set(range(len(utts)))))
    for name, manifest, wrong in cases:
        (work / name).mkdir()
        began = time.perf_counter()
        aligned, report = align(manifest, work / name, num_workers=num_workers)
        seconds = round(time.perf_counter() - began, 1)
        kept = {i for i, u in enumerate(manifest) if u.id in aligned}
        intact = set(range(len(utts))) - wrong
        out[name] = {"wrong_transcripts": len(wrong), "wrong_detected": len(wrong - kept),
                     "intact": len(intact), "intact_aligned": len(intact & kept),
                     "failure_reasons": report["failure_reasons"], "seconds": seconds,
                     "median_score_per_frame": report.get("median_score_per_frame"),
                     "intact_failures": [f for f in report["failures"] if index[f[0]] in intact]}
    return out


def bench_librivox(work: Path) -> dict:
    root = SHARED / "pocketsphinx_librivox_aligned"
    utts, reference = [], {}
    for uid in (root / "fileids").read_text().split():
        info = sf.info(str(root / f"{uid}.wav"))
        utts.append(Utterance(uid, str(root / f"{uid}.wav"), info.samplerate, info.duration, "librivox",
                              (root / f"{uid}.txt").read_text().strip()))
        shipped = json.loads((root / f"{uid}.json").read_text())["w"]
        reference[uid] = [(w["t"].split("(")[0], w["b"], w["b"] + w["d"]) for w in shipped if w["t"] != "<sil>"]
    out = {}
    for label, pause in (("koe default (min_pause_s=0.1)", 0.1), ("min_pause_s=0 (pocketsphinx convention)", 0.0)):
        sub = work / f"pause{pause}"
        sub.mkdir()
        aligned, report = align(utts, sub, min_pause_s=pause)
        errors = [e for uid, u in aligned.items() for e in boundary_errors(reference[uid], u.words)]
        out[label] = {"utterances": len(utts), "aligned": len(aligned), "failures": report["failures"],
                      **summarize(errors)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-voice", type=int, default=None, help="first N sentences only (default: all)")
    parser.add_argument("--held-out", action="store_true", help="espeak part on the 40 held-out Harvard sentences")
    parser.add_argument("--cathy-limit", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "espeak").mkdir()
        sentences = HARVARD_HELD_OUT if args.held_out else HARVARD
        results["espeak"] = bench_espeak(work / "espeak", args.per_voice, sentences)
        if SHARED.is_dir() and args.cathy_limit > 0:
            (work / "cathy").mkdir()
            results["cathy_arctic"] = bench_cathy(work / "cathy", args.cathy_limit, args.num_workers)
        if SHARED.is_dir():
            (work / "librivox").mkdir()
            results["librivox"] = bench_librivox(work / "librivox")
    print("\n== espeak (true timings) ==")
    for voice, r in results["espeak"].items():
        print(f"{voice:10s} synthesized {r['synthesized']:3d} aligned {r['aligned']:3d}  median {r['median_ms']} ms  "
              f"within 50 ms {r['within_50ms']:.1%}  align failures {len(r['align_failures'])}  "
              f"synth failures {len(r['synth_failures'])}  misses >50 ms {r['misses']}")
    all_med = statistics.median(r["median_ms"] for r in results["espeak"].values())
    print(f"median of voice medians: {all_med} ms")
    for key in ("cathy_arctic", "librivox"):
        if key in results:
            print(f"\n== {key} ==\n" + json.dumps(results[key], indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
