"""Frame vs syllable speech units through the whole tiny pipeline, at one training-token budget; one table.

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/compare_units.py --run /tmp/exp/run1 \
        --out /tmp/compare_units

`--run` is a finished tiny-recipe run directory (`koe run tiny`, see src/koe/recipes/tiny.yaml); this script reuses
its synth/manifest.jsonl (TinySpeech audio), phonetic/ (the `koe units train-phonetic` classifier), text_lm/final
(the tiny text LM both speech LMs start from), data_text/ (its text tokenizer, which each variant's data build
retrains identically and is checked against) and bench/ (the spoken benchmarks: only their items and audio; each
variant's tokens are cached in a mirror under --out, so the run directory is never written). For each unit variant
it runs the steps the recipe runs after synth, through `koe.cli.run_command` with the recipe's options: units fit ->
units encode -> data build (interleaved and speech-only) -> train both models from text_lm/final -> eval both on the
bench. The one change is the training length: every model sees the same `--budget-tokens` (max_tokens), so variants
with fewer tokens per second of audio train for more epochs. A stage that fails is recorded in the table and the
variant's later stages are skipped. Writes out/compare_units.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from pathlib import Path

import numpy as np

from koe.cli import run_command
from koe.data.shards import KINDS, load_data_meta, read_token_shards
from koe.recipes.report import summarize_model
from koe.units.shards import read_unit_shards

# Unit variants: `koe units fit` options beside manifest/out_dir/seed. Frame units keep the tiny recipe's fit
# sample (150k frames, 30 iterations); syllable k-means runs on segment means (~20x fewer points than frames), so
# it featurises the default 500k frames (~1,300 utterances) and uses docs/units.md's k=400 -> Ward 200.
VARIANTS: dict[str, dict] = {
    "mel-frames": {"features": "mel", "k": 200, "max_frames": 150000, "iterations": 30},
    "phonetic-frames": {"features": "phonetic:{run}/phonetic", "quantizer": "classes", "min_run_frames": 3,
                        "max_frames": 150000},
    "mel-mincut": {"features": "mel", "segmentation": "mincut", "k": 400, "reduce_to": 200, "iterations": 30},
    "phonetic-mincut": {"features": "phonetic:{run}/phonetic", "segmentation": "mincut", "k": 400, "reduce_to": 200,
                        "iterations": 30},
}
MODELS = ("speech_only", "interleaved")
# Training options of tiny.yaml's train_speech_only / train_interleaved, less `epochs` (replaced by max_tokens).
TRAIN_OPTIONS = ["max_seq_len=1024", "micro_batch_size=4", "optim.lr=3.0e-3", "optim.warmup_steps=10",
                 "optim.frozen_text_steps=20", "log_every=10"]
# tiny.yaml's data_interleaved / data_speech options. The run's data_text/tokenizer already holds the run's own unit
# tokens, and `koe data build` refuses it for units of another size, so the interleaved build retrains the text
# tokenizer exactly as data_text did (`train:1000` on the same texts; checked identical to the run's below) and the
# speech-only build reuses the interleaved build's tokenizer, as tiny.yaml's data_speech reuses data_text's.
DATA_OPTIONS = {
    "interleaved": ["max_seq_len=1024", "text=[tinyspeech:6000]", "num_epochs_variants=2", "text_tokenizer=train:1000"],
    "speech_only": ["max_seq_len=1024", "mixture.text=0.0", "mixture.interleaved=0.0", "mixture.speech=1.0",
                    "text_tokenizer={out}/data_interleaved/tokenizer"],
}


class StageFailed(RuntimeError):
    """A koe stage exited with a config/input error (status 2) or raised; the variant stops there."""


def check_text_tokenizer(data_dir: Path, run_data_text: Path) -> None:
    """The text LM's token ids must mean the same in the variant's data: same BPE model and same added tokens below
    the text vocabulary (the unit and marker tokens above it differ by design)."""
    text_vocab = load_data_meta(run_data_text).vocab.text_vocab_size
    ours, theirs = (json.loads((d / "tokenizer/tokenizer.json").read_text()) for d in (data_dir, run_data_text))
    for tok in (ours, theirs):
        tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < text_vocab]
    if ours != theirs or load_data_meta(data_dir).vocab.text_vocab_size != text_vocab:
        raise StageFailed(f"text tokenizer: {data_dir}/tokenizer differs from {run_data_text}/tokenizer in its text "
                          "part; the text LM's ids would not match")


def stage(label: str, name: str, args: list[str], log: dict) -> None:
    """Run one koe command in-process; status 1 (some items failed) is noted and the variant goes on."""
    start = time.perf_counter()
    try:
        code = run_command(name, args)
    except Exception as e:  # a crash in one variant must not lose the others' results
        traceback.print_exc()
        raise StageFailed(f"{label}: {type(e).__name__}: {e}") from None
    log.setdefault("stage_wall_s", {})[label] = round(time.perf_counter() - start, 1)
    if code == 2:
        raise StageFailed(f"{label}: exited with status 2 (see its error above)")
    if code:
        log.setdefault("warnings", []).append(f"{label}: some items failed (status {code}); see its failures.jsonl")


def mirror_bench(src: Path, dst: Path) -> Path:
    """Links every benchmark's files except its token cache, so each tokenizer's cache is written under dst."""
    for bench in sorted(p for p in src.iterdir() if (p / "items.jsonl").exists()):
        (dst / bench.name / "tokens").mkdir(parents=True, exist_ok=True)
        for f in bench.iterdir():
            link = dst / bench.name / f.name
            if f.name != "tokens" and not link.exists():
                link.symlink_to(f.resolve())
    return dst


def unit_numbers(units_dir: Path) -> dict:
    """Rates, and the unigram entropy of the units: the speech loss a model reaches by learning frequencies alone."""
    summary = json.loads((units_dir / "units_encode_summary.json").read_text())
    units = [r.units for r in read_unit_shards(units_dir)]
    p = np.bincount(np.concatenate(units)) / sum(map(len, units))
    p = p[p > 0]
    return {"tokens_per_s": summary["units_per_s"], "audio_hours": summary["audio_hours"], "utterances": len(units),
            "tokens_per_utt": float(np.mean([len(u) for u in units])), "unigram_entropy": float(-(p * np.log(p)).sum())}


def interleaved_lengths(data_dir: Path) -> dict:
    """Token counts of the interleaved documents (speech + text + markers) of the train split."""
    kind = KINDS.index("interleaved")
    n = np.array([len(d.tokens) for d in read_token_shards(data_dir, "train") if d.kind == kind])
    return {"docs": len(n), "mean": float(n.mean()), "p50": float(np.median(n)),
            "p95": float(np.percentile(n, 95)), "max": int(n.max())}


def train_numbers(train_dir: Path, data_dir: Path) -> dict:
    s = json.loads((train_dir / "train_summary.json").read_text())
    epoch_tokens = load_data_meta(data_dir).splits["train"].num_tokens
    return {"tokens_seen": s["tokens_seen"], "train_time_s": s["train_time_s"],
            "train_tokens_per_s": s["tokens_seen"] / s["train_time_s"], "epochs": s["tokens_seen"] / epoch_tokens,
            "final_loss_speech": s.get("final_loss_speech")}


def run_variant(name: str, fit: dict, args, bench: Path) -> dict:
    """fit -> encode -> data build x2 -> train x2 -> eval x2 for one unit variant; returns its numbers."""
    out, run = args.out / name, args.run
    manifest = run / "synth/manifest.jsonl"
    tok, units = out / "tokenizer", out / "units"
    row: dict = {"variant": name, "fit": fit}
    try:
        fit_args = [f"{k}={str(v).format(run=run)}" for k, v in fit.items()]
        stage("units_fit", "units fit", [str(manifest), f"out_dir={tok}", "seed=0", *fit_args], row)
        stage("units_encode", "units encode",
              [str(manifest), f"tokenizer={tok}", f"out_dir={units}", f"num_workers={args.workers}"], row)
        row["units"] = unit_numbers(units)
        for model in ("interleaved", "speech_only"):
            stage(f"data_{model}", "data build",
                  [f"units_dir={units}", f"manifest={manifest}", f"out_dir={out / f'data_{model}'}",
                   *(o.format(out=out) for o in DATA_OPTIONS[model])], row)
            if model == "interleaved":
                check_text_tokenizer(out / "data_interleaved", run / "data_text")
        row["interleaved_doc_tokens"] = interleaved_lengths(out / "data_interleaved")
        for model in MODELS:
            stage(f"train_{model}", "train",
                  [f"data_dir={out / f'data_{model}'}", f"out_dir={out / model}", f"max_tokens={args.budget_tokens}",
                   f"model.name_or_path={run / 'text_lm/final'}", *TRAIN_OPTIONS], row)
            row[model] = {"train": train_numbers(out / model, out / f"data_{model}")}
        for model in MODELS:
            stage(f"eval_{model}", "eval",
                  [f"model={out / model / 'final'}", f"bench=[{bench}]", f"unit_tokenizer={tok}",
                   f"out_dir={out / 'eval' / model}", f"ppl_data={out / 'data_interleaved'}", "bootstrap=500"], row)
            results = json.loads((out / "eval" / model / "results.json").read_text())
            row[model]["eval"] = summarize_model(results)
    except StageFailed as e:
        row["failed"] = str(e)
        print(f"[compare_units] {name}: FAILED at {e}", flush=True)
    return row


def _f(x, fmt: str = "{:.1f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _both(row: dict, get) -> str:
    """'speech-only / interleaved' for one quantity (n/a where a model is missing)."""
    vals = []
    for model in MODELS:
        try:
            vals.append(get(row[model]))
        except (KeyError, TypeError):
            vals.append("n/a")
    return " / ".join(vals)


def _acc(key: str):
    def get(m: dict) -> str:
        cell = m["eval"][key]
        return _f(None if cell is None else 100 * (cell["accuracy"] if isinstance(cell, dict) else cell))
    return get


def render(rows: list[dict]) -> str:
    head = ("| variant | speech tok/s | tok/utt | interleaved doc tokens mean / p95 / max | epochs | train tok/s | "
            "unigram entropy | final speech loss | lexical % | syntactic % | semantic % | QA speech % | status |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        u, il = r.get("units", {}), r.get("interleaved_doc_tokens")
        doc = "n/a" if not il else f"{il['mean']:.0f} / {il['p95']:.0f} / {il['max']}"
        lines.append(" | ".join([
            f"| {r['variant']}", _f(u.get("tokens_per_s")), _f(u.get("tokens_per_utt")), doc,
            _both(r, lambda m: f"{m['train']['epochs']:.1f}"),
            _both(r, lambda m: f"{m['train']['train_tokens_per_s']:.0f}"),
            _f(u.get("unigram_entropy"), "{:.2f}"), _both(r, lambda m: _f(m["train"]["final_loss_speech"], "{:.2f}")),
            _both(r, _acc("lexical")), _both(r, _acc("syntactic")), _both(r, _acc("semantic")),
            _both(r, _acc("qa_speech")), ("failed: " + r["failed"]) if "failed" in r else "ok"]) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("/tmp/exp/run1"), help="finished tiny-recipe run dir")
    parser.add_argument("--out", type=Path, default=Path("runs/compare_units"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--budget-tokens", type=int, default=307200,
                        help="training tokens (rows x max_seq_len) per model, the same for every variant")
    parser.add_argument("--workers", type=int, default=1, help="units encode worker processes")
    args = parser.parse_args()
    os.environ.setdefault("KOE_NO_PROGRESS", "1")
    needed = ["synth/manifest.jsonl", "phonetic/phonetic.json", "text_lm/final", "data_text/tokenizer", "bench"]
    missing = [p for p in needed if not (args.run / p).exists()]
    if missing:
        raise SystemExit(f"{args.run}: not a finished tiny run (missing {', '.join(missing)})")
    bench = mirror_bench(args.run / "bench", args.out / "bench")
    start, rows = time.perf_counter(), []
    for name in args.variants:
        t0 = time.perf_counter()
        rows.append(run_variant(name, VARIANTS[name], args, bench))
        rows[-1]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"[compare_units] {name}: {rows[-1]['wall_s']:.0f} s", flush=True)
    table = render(rows)
    info = {"run": str(args.run), "budget_tokens": args.budget_tokens, "machine": machine(),
            "wall_s": round(time.perf_counter() - start, 1), "variants": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_units.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / "compare_units.md").write_text(
        f"{table}\n\nCells `a / b`: speech-only model / interleaved model. Budget {args.budget_tokens} training "
        f"tokens per model. Machine: {info['machine']}. Wall time {info['wall_s']:.0f} s.\n")
    print("\n" + table)


if __name__ == "__main__":
    main()
