"""Accuracy of `koe align` (pocketsphinx) over `koe synth`'s default voices and rates, and on real recordings.

    nice -n 10 python benchmarks/align_accuracy.py                  # 12 voices x 3 rates x 3 sentences, cathy 40
    python benchmarks/align_accuracy.py --held-out --per-cell 10 --cathy-limit 0 --json out.json  # docs/align.md
    python benchmarks/align_accuracy.py --per-cell 4 --cathy-limit 0  # the calibration set (the thresholds' data)
    KOE_SHARED_DATA=../shared/data python benchmarks/align_accuracy.py --cathy-limit 300   # real data elsewhere

1. espeak: every voice of koe.synth.config.DEFAULT_VOICES at 140, 180 and 220 wpm (espeak rate), `--per-cell`
   Harvard sentences per voice x rate (cells take successive sentences, so all 30 are used), synthesized by
   koe.synth.espeak, whose event stream gives the true word times. Each utterance is aligned with its own
   transcript (word boundaries vs the truth: median |error|, share within 50 ms, and that share counting the
   closure-convention misses at stop-initial words as right, a diagnostic; and whether the mismatch rule
   wrongly rejects it), and with planted wrong transcripts that the rule must reject: another sentence's text
   (`wrong`), the first word left out (`drop_first`), the last word left out (`drop_last`), and a short window of up
   to six words of audio whose transcript leaves out the first and the last of them (`window`); the same window with
   its full transcript is a correct item (`window_ok`). The per-utterance rule is measured (koe.align.mismatch with
   no speaker median: what a small run gets); an alignment failure of a planted transcript counts as rejected, of a
   correct one as a failure. Nothing is dropped from any denominator.
2. cathy_arctic (real, one speaker, no reference times): coverage and wall time with the true transcripts, and the
   whole stage's detector (speaker median included), with one transcript in five swapped within the corpus, with
   every transcript rotated by one, and with every transcript's first (then last) word left out.
3. pocketsphinx_librivox_aligned (5 real utterances with pocketsphinx's own shipped alignments): coverage and the
   median difference of word boundaries from the shipped ones.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from koe.align.config import AlignConfig
from koe.align.mismatch import MismatchRule, mismatch_reason
from koe.align.pocketsphinx import AlignResult, PocketsphinxAligner
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
RATES_WPM = (140, 180, 220)
PLANTED = ("wrong", "drop_first", "drop_last", "window")
CORRECT = ("correct", "window_ok")
TARGET = {"median_ms": 15.0, "within_50ms": 0.95, "correct_rejected": 0.01, "planted_rejected": 0.95}
WINDOW_WORDS = 6
MODES = ("small_run", "corpus")
LONG_LEFT_OUT_S = 0.2  # partial transcripts are also counted apart when they leave out at least this much speech
# ../shared/data beside the project root; KOE_SHARED_DATA points elsewhere (a git worktree has no such neighbour)
SHARED = Path(os.environ.get("KOE_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data").resolve()


def boundary_errors(truth: list, aligned: list) -> list[float]:
    """Signed start and end errors (aligned - truth) in ms, alternating start, end for each word, matched by
    position (same word sequence)."""
    if [w for w, _, _ in truth] != [w for w, _, _ in aligned]:
        raise ValueError("word sequences differ")
    return [(y - x) * 1000 for (_, a, b), (_, c, d) in zip(truth, aligned, strict=True) for x, y in ((a, c), (b, d))]


STOPS = frozenset({"p", "b", "t", "d", "k", "g"})


def summarize(errors: list[float], before_stop: list[bool] | None = None) -> dict:
    """Median |error|, share within 50 ms, and the boundaries off by more than 50 ms split by kind and direction
    (which kind dominates says what to fix: word ends cut early, starts late, ...).

    With `before_stop` (per boundary: it is the start of a word whose first aligned phone is a stop), also the misses
    that are the closure convention (docs/align.md): 50-100 ms early at such a boundary, where espeak's truth is the
    burst and the aligner, like TIMIT and MFA, puts the closure in the stop. A diagnostic; the target stays strict."""
    e = np.asarray(errors)
    kind = np.where(np.arange(e.size) % 2 == 0, "start", "end")
    misses = {f"{k}_{d}": int(((kind == k) & (sign * e > 50)).sum())
              for k in ("start", "end") for d, sign in (("early", -1), ("late", 1))}
    out = {"boundaries": int(e.size), "median_ms": round(float(np.median(np.abs(e))), 1) if e.size else None,
           "within_50ms": round(float((np.abs(e) <= 50).mean()), 4) if e.size else None, "misses": misses}
    if before_stop is not None and e.size:
        closure = np.asarray(before_stop) & (e < -50) & (e >= -100)
        out["misses_closure"] = int(closure.sum())
        out["within_50ms_or_closure"] = round(float(((np.abs(e) <= 50) | closure).mean()), 4)
    return out


def align(utts: list[Utterance], work: Path, **options) -> tuple[dict[str, Utterance], dict]:
    manifest = work / "manifest.jsonl"
    write_manifest(manifest, utts)
    report = run_align(AlignConfig(manifest=manifest, force=True, **options))
    aligned = {u.id: u for u in read_manifest(work / "manifest.aligned.jsonl")}
    return aligned, {"failures": [(f.item, f.reason) for f in report.failures], **report.to_dict()}


_aligner: PocketsphinxAligner | None = None  # one per worker process


def _init_worker(dump_dir: str | None = None) -> None:
    global _aligner, _dump_dir
    _aligner = PocketsphinxAligner()
    _dump_dir = dump_dir


def espeak_voice(task: tuple[int, str, int, list[str]]) -> list[dict]:
    """Align every sentence of one voice at every rate with its own and with planted transcripts; one row each.

    Each row is judged twice: as in a small run (per-utterance rules only) and as in a corpus of this voice (the
    median fit deficit of its correct items as the speaker reference, what `koe align` uses from min_corpus_size
    utterances of a speaker on)."""
    from koe.synth.espeak import synthesize

    v, voice, per_cell, sentences, rates = task
    rows, results = [], []
    for c, rate in ((v * len(RATES_WPM) + RATES_WPM.index(r), r) for r in rates):
        for i in ((c * per_cell + j) % len(sentences) for j in range(per_cell)):
            base = {"voice": voice, "rate_wpm": rate, "sentence": i}
            try:
                syn = synthesize(sentences[i], voice=voice, rate_wpm=rate, pitch=50)
            except KoeInputError as e:
                rows.append({**base, "kind": "correct", "outcome": "synth-failed", "reason": str(e)})
                results.append(None)
                continue
            other = sentences[(i + len(sentences) // 2) % len(sentences)]
            for kind, audio, words, truth, left_out in _cases(syn, other):
                row, res = _align(audio, words, truth)
                rows.append({**base, "kind": kind, **({"left_out_s": round(left_out, 3)} if left_out else {}), **row})
                results.append(res)
    rule = MismatchRule()
    deficits = [r.fit_deficit for row, r in zip(rows, results, strict=True)
                if r is not None and row["kind"] in CORRECT and r.fit_deficit is not None]
    reference = (f"speaker {voice}", statistics.median(deficits)) if deficits else None
    for row, res in zip(rows, results, strict=True):
        if res is not None:
            for mode, ref in (("small_run", None), ("corpus", reference)):
                reason = mismatch_reason(res, rule, ref)
                row[mode] = {"outcome": "rejected" if reason else "accepted", "reason": reason}
    if _dump_dir:
        import pickle

        (Path(_dump_dir) / f"{voice}.pkl").write_bytes(pickle.dumps(list(zip(rows, results, strict=True))))
    return rows


_dump_dir: str | None = None


def _cases(syn, other: str) -> list[tuple]:
    """(kind, audio, transcript words, true spans or None, seconds of speech the transcript leaves out or None)."""
    words = [w for w, _, _ in syn.words]
    dur = [e - s for _, s, e in syn.words]
    k = min(len(words), WINDOW_WORDS)
    a, b = (round(t * syn.sample_rate_hz) for t in (syn.words[0][1], syn.words[k - 1][2]))
    shift = a / syn.sample_rate_hz
    window_truth = [(w, s - shift, e - shift) for w, s, e in syn.words[:k]]
    return [("correct", syn.audio, words, syn.words, None), ("wrong", syn.audio, _words(other), None, None),
            ("drop_first", syn.audio, words[1:], None, dur[0]), ("drop_last", syn.audio, words[:-1], None, dur[-1]),
            ("window_ok", syn.audio[a:b], words[:k], window_truth, None),
            ("window", syn.audio[a:b], words[1:k - 1], None, dur[0] + dur[k - 1])]


def _words(text: str) -> list[str]:
    from koe.synth.espeak import normalize_text

    return normalize_text(text).split()


def _align(audio: np.ndarray, words: list[str], truth: list | None) -> tuple[dict, AlignResult | None]:
    try:
        res = _aligner.align(audio, words)
    except KoeInputError as e:
        return {"outcome": "align-failed", "reason": str(e)}, None
    row = {"outcome": "aligned", "fit_deficit": None if res.fit_deficit is None else round(res.fit_deficit, 2),
           "score_per_frame": round(res.score_per_frame, 2), "edge_speech_s": list(res.edge_speech_s)}
    if truth is not None:
        row["errors_ms"] = [round(e, 1) for e in boundary_errors(truth, res.words)]
        first = [next((p for p, a, _ in res.phones if s - 1e-6 <= a < e), "") for _, s, e in res.words]
        # a word's start, and the end of the word before it when the two touch in the truth, at a stop-initial word
        row["before_stop"] = [flag for j, (_, _, end) in enumerate(truth)
                              for flag in (first[j] in STOPS, j + 1 < len(truth) and first[j + 1] in STOPS
                                           and abs(truth[j + 1][1] - end) < 1e-6)]
    return row, res


def bench_espeak(per_cell: int, sentences: list[str], num_workers: int, voices: list[str] | None = None,
                 rates: tuple[int, ...] = RATES_WPM, dump_dir: Path | None = None) -> list[dict]:
    from koe.synth.config import DEFAULT_VOICES

    tasks = [(v, voice, per_cell, sentences, rates) for v, voice in enumerate(DEFAULT_VOICES)
             if voices is None or voice in voices]
    init_args = (str(dump_dir) if dump_dir else None,)
    with multiprocessing.get_context("spawn").Pool(num_workers, _init_worker, init_args) as pool:
        return [row for rows in pool.imap(espeak_voice, tasks) for row in rows]


def rejected(row: dict, mode: str) -> bool:
    """A planted or correct item counts as rejected when it failed to align or the rule (in `mode`) refused it."""
    return row["outcome"] == "align-failed" or row.get(mode, {}).get("outcome") == "rejected"


def espeak_table(rows: list[dict]) -> dict[str, dict]:
    """Per voice x rate: boundary accuracy of the correct transcripts, and what share of each kind was rejected."""
    cells: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        cells[f"{row['voice']} @ {row['rate_wpm']}"].append(row)
    cells["all"] = rows
    return {name: _cell_summary(cell) for name, cell in cells.items()}


def _cell_summary(cell: list[dict]) -> dict:
    out: dict = {}
    correct = [r for r in cell if r["kind"] == "correct"]
    errors = [e for r in correct if r["outcome"] == "aligned" for e in r["errors_ms"]]
    before_stop = [f for r in correct if r["outcome"] == "aligned" for f in r.get("before_stop", [])]
    out.update(summarize(errors, before_stop if len(before_stop) == len(errors) else None))
    out["correct_failed"] = sum(r["outcome"] in ("align-failed", "synth-failed") for r in correct)
    for mode in MODES:
        counts = {}
        for kind in (*CORRECT, *PLANTED):
            rows = [r for r in cell if r["kind"] == kind and r["outcome"] != "synth-failed"]
            counts[kind] = [sum(rejected(r, mode) for r in rows), len(rows)]
        partial = [r for r in cell if r.get("left_out_s", 0) >= LONG_LEFT_OUT_S]
        counts["partial_long"] = [sum(rejected(r, mode) for r in partial), len(partial)]
        out[f"rejected_{mode}"] = counts
        out[f"missed_targets_{mode}"] = _missed(out, counts)
    return out


def _missed(s: dict, counts: dict) -> list[str]:
    missed = []
    if s["median_ms"] is None or s["median_ms"] > TARGET["median_ms"]:
        missed.append(f"median {s['median_ms']} ms")
    if s["within_50ms"] is None or s["within_50ms"] < TARGET["within_50ms"]:
        missed.append(f"within 50 ms {s['within_50ms']}")
    for kind in CORRECT:
        bad, n = counts[kind]
        if n and bad / n > TARGET["correct_rejected"]:
            missed.append(f"{kind} rejected {bad}/{n}")
    for kind in PLANTED:
        bad, n = counts[kind]
        if n and bad / n < TARGET["planted_rejected"]:
            missed.append(f"{kind} rejected {bad}/{n}")
    return missed


def bench_cathy(work: Path, limit: int, num_workers: int) -> dict:
    """Real speech without reference times: coverage and run time with the true transcripts, and the mismatch
    detector on (a) one transcript in five swapped in pairs within the corpus, (b) every transcript rotated by one,
    (c) every transcript without its first word and (d) without its last."""
    root = SHARED / "cathy_arctic"
    with (root / "metadata.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:limit]
    utts = [Utterance(r["utt_id"], str(root / r["path"]), 16000, float(r["duration_s"]), "cathy", r["text"])
            for r in rows]
    swapped = {j for i in range(0, len(utts) - 5, 10) for j in (i, i + 5)}
    mixed = [dataclasses.replace(u, text=utts[i + 5 if i % 10 == 0 else i - 5].text) if i in swapped else u
             for i, u in enumerate(utts)]
    rotated = [dataclasses.replace(u, text=utts[(i + 1) % len(utts)].text) for i, u in enumerate(utts)]
    drop_first = [dataclasses.replace(u, text=" ".join(_words(u.text)[1:])) for u in utts]
    drop_last = [dataclasses.replace(u, text=" ".join(_words(u.text)[:-1])) for u in utts]
    index = {u.id: i for i, u in enumerate(utts)}
    out = {"utterances": len(utts)}
    everyone = set(range(len(utts)))
    cases = (("intact", utts, set()), ("mixed", mixed, swapped), ("rotated", rotated, everyone),
             ("drop_first", drop_first, everyone), ("drop_last", drop_last, everyone))
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


def print_espeak(table: dict[str, dict]) -> None:
    kinds = (*CORRECT, *PLANTED, "partial_long")
    for mode in MODES:
        print(f"\n== espeak: koe synth's default voices x rates (true timings); rejections as in a {mode} ==")
        print("(<=50ms+cl: also counting misses 50-100 ms early before a stop-initial word, the closure convention)")
        print(f"{'voice @ wpm':28s} {'median':>7s} {'<=50ms':>7s} {'+cl':>6s} " + " ".join(f"{k:>12s}" for k in kinds)
              + "  missed")
        for name, s in table.items():
            counts = " ".join(f"{'/'.join(map(str, s[f'rejected_{mode}'][k])):>12s}" for k in kinds)
            within = "-" if s["within_50ms"] is None else f"{s['within_50ms']:.1%}"
            closure = "-" if s.get("within_50ms_or_closure") is None else f"{s['within_50ms_or_closure']:.1%}"
            print(f"{name:28s} {s['median_ms']!s:>7s} {within:>7s} {closure:>6s} {counts}  "
                  f"{'; '.join(s[f'missed_targets_{mode}'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-cell", type=int, default=3, help="sentences per voice x rate (default 3)")
    parser.add_argument("--held-out", action="store_true", help="espeak part on the 40 held-out Harvard sentences")
    parser.add_argument("--cathy-limit", type=int, default=40, help="cathy_arctic utterances (0: skip)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write every row and summary here")
    parser.add_argument("--voices", nargs="+", default=None, help="only these of koe synth's default voices")
    parser.add_argument("--rates", nargs="+", type=int, default=list(RATES_WPM), choices=RATES_WPM,
                        help="only these rates (wpm)")
    parser.add_argument("--dump", type=Path, default=None,
                        help="folder: pickle every (row, AlignResult) per voice there (to study rules offline)")
    args = parser.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    began = time.perf_counter()
    sentences = HARVARD_HELD_OUT if args.held_out else HARVARD
    if args.voices:
        from koe.synth.config import DEFAULT_VOICES

        unknown = set(args.voices) - set(DEFAULT_VOICES)
        if unknown:
            parser.error(f"--voices: not default voices: {sorted(unknown)}")
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
    rows = bench_espeak(args.per_cell, sentences, args.num_workers, args.voices, tuple(args.rates), args.dump)
    results = {"espeak": espeak_table(rows), "espeak_seconds": round(time.perf_counter() - began, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if SHARED.is_dir() and args.cathy_limit > 0:
            (work / "cathy").mkdir()
            results["cathy_arctic"] = bench_cathy(work / "cathy", args.cathy_limit, args.num_workers)
        if SHARED.is_dir():
            (work / "librivox").mkdir()
            results["librivox"] = bench_librivox(work / "librivox")
    print_espeak(results["espeak"])
    for key in ("cathy_arctic", "librivox"):
        if key in results:
            print(f"\n== {key} ==\n" + json.dumps(results[key], indent=1))
    print(f"\nespeak part {results['espeak_seconds']} s, total {time.perf_counter() - began:.1f} s wall")
    if args.json:
        args.json.write_text(json.dumps({**results, "espeak_rows": rows}, indent=1))


if __name__ == "__main__":
    main()
