"""`koe report`: one comparison table (and plots) over several `koe eval` results, e.g. the two models of `tiny`.

    koe report evals='{speech_only: runs/tiny/eval/speech_only, interleaved: runs/tiny/eval/interleaved}' \
        train_dirs='{text_lm: runs/tiny/text_lm, ...}' out_dir=runs/tiny/report

Columns: speech accuracy on the lexical, syntactic and semantic benchmarks; spoken QA accuracy in text (text
question, text answers), in speech (spoken question, spoken answers) and their ratio speech/text, the number the
field uses for knowledge transfer; and speech QA on the TinySpeech facts that training showed in text only.
Binomial p-values against chance are given for the pair benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from koe.stage import StageReport, atomic_write_text, write_json


@dataclasses.dataclass
class ReportConfig:
    """Compare several evaluated models in one table; gather loss curves and data plots."""

    evals: dict[str, str] = dataclasses.field(default_factory=dict, metadata={
        "help": "model name -> `koe eval` out_dir (holding results.json)"})
    train_dirs: dict[str, str] = dataclasses.field(default_factory=dict, metadata={
        "help": "run name -> `koe train` out_dir (metrics.jsonl) for the loss-curve figure"})
    plots: list[str] = dataclasses.field(default_factory=list, metadata={"help": "PNG files copied into the report"})
    sizes: dict[str, str] = dataclasses.field(default_factory=dict, metadata={
        "help": "model name (`<family>_<size>`) -> `koe train` out_dir: adds the scaling table and plot of spoken QA "
                "on text-only facts (95% intervals) and heard facts against parameter count, per family"})
    out_dir: Path = dataclasses.field(default=Path("report"), metadata={"help": "results.md/json and figures"})


def _find(results: dict, prefix: str) -> dict | None:
    """The benchmark whose name starts with `prefix` (e.g. 'lexical-tiny')."""
    return next((b for name, b in results["benchmarks"].items() if name.startswith(prefix)), None)


def _acc(bench: dict | None, condition: str, category: str | None = None) -> dict | None:
    if bench is None:
        return None
    r = bench.get("conditions", {}).get(condition)
    if r is None or r.get("status") == "n/a":
        return None
    return r["by_category"].get(category) if category else r


def summarize_model(results: dict) -> dict:
    """The headline numbers of one results.json (None where a benchmark or condition is absent)."""
    lexical, syntactic = _find(results, "lexical-tiny"), _find(results, "syntactic-tiny")
    semantic, qa = _find(results, "semantic-tiny"), _find(results, "qa-tiny")
    row = {}
    for key, bench, cond in (("lexical", lexical, "speech"), ("syntactic", syntactic, "speech"),
                             ("semantic", semantic, "speech_speech")):
        r = _acc(bench, cond)
        row[key] = None if r is None else {"accuracy": r["accuracy"], "p_value": r.get("p_value"),
                                           "n": r["num_groups"]}
    text, speech = _acc(qa, "text_text"), _acc(qa, "speech_speech")
    row["qa_text"] = None if text is None else text["accuracy"]
    row["qa_speech"] = None if speech is None else speech["accuracy"]
    row["qa_ratio"] = (row["qa_speech"] / row["qa_text"]) if row["qa_text"] and row["qa_speech"] is not None else None
    for split in ("text_only", "text_and_speech", "heldout"):
        r = _acc(qa, "speech_speech", split)
        row[f"qa_speech_{split}"] = None if r is None else r["accuracy"]
        row[f"qa_speech_{split}_n"] = None if r is None else r["num_groups"]
    return row


def transfer_pvalue(accuracy: float | None, n: int | None, chance: float = 0.25) -> float | None:
    """One-sided binomial p-value that spoken QA on text-only facts beats chance (4 candidates: 25%)."""
    if accuracy is None or not n:
        return None
    from scipy.stats import binomtest

    return float(binomtest(round(accuracy * n), n, chance, alternative="greater").pvalue)


def render_scaling(rows: dict[str, dict], params: dict[str, int]) -> str:
    """Per size: both families' spoken QA on text-only vs heldout facts, with the transfer p-value."""
    head = ["model", "params (M)", "lexical %", "syntactic %", "QA text %", "QA speech, heard facts %",
            "QA speech, text-only facts %", "p (text-only > chance)", "QA speech, heldout facts %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in sorted(params, key=lambda n: (n.rsplit("_", 1)[0], params[n])):
        r = rows.get(name)
        if r is None:
            continue
        p = transfer_pvalue(r["qa_speech_text_only"], r["qa_speech_text_only_n"])
        cells = [name, f"{params[name] / 1e6:.1f}", _pair(r["lexical"]), _pair(r["syntactic"]), _pct(r["qa_text"]),
                 _pct(r["qa_speech_text_and_speech"]), _pct(r["qa_speech_text_only"]),
                 "n/a" if p is None else f"{p:.2g}", _pct(r["qa_speech_heldout"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n## Scaling\n\n" + "\n".join(lines) + "\n"


def _ci95(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a QA accuracy over n questions, in percent."""
    from scipy.stats import binomtest

    ci = binomtest(round(accuracy * n), n).proportion_ci(0.95, method="wilson")
    return 100 * ci.low, 100 * ci.high


def plot_scaling(rows: dict[str, dict], params: dict[str, int], path: Path) -> bool:
    """Spoken QA against parameter count per family: text-only facts (the transfer line, with 95% intervals, since
    differences of a few points are noise at these n), heard facts above it, and chance; the y axis spans 0-100 so
    a flat line at chance reads as one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families: dict[str, list[tuple[int, dict]]] = {}
    for name, n in params.items():
        if rows.get(name, {}).get("qa_speech_text_only") is not None:
            families.setdefault(name.rsplit("_", 1)[0], []).append((n, rows[name]))
    if not families:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, (family, points) in enumerate(sorted(families.items())):
        points.sort(key=lambda p: p[0])
        sizes = [n for n, _ in points]
        acc = [100 * r["qa_speech_text_only"] for _, r in points]
        ci = [_ci95(r["qa_speech_text_only"], r["qa_speech_text_only_n"]) if r.get("qa_speech_text_only_n")
              else (a, a) for a, (_, r) in zip(acc, points, strict=True)]
        err = [[a - lo for a, (lo, _) in zip(acc, ci, strict=True)],
               [hi - a for a, (_, hi) in zip(acc, ci, strict=True)]]
        color = f"C{k}"
        ax.errorbar(sizes, acc, yerr=err, marker="o", capsize=3, color=color, label=f"{family}: text-only facts")
        heard = [(n, 100 * r["qa_speech_text_and_speech"]) for n, r in points
                 if r.get("qa_speech_text_and_speech") is not None]
        if heard:
            ax.plot(*zip(*heard, strict=True), marker="s", linestyle="--", color=color,
                    label=f"{family}: heard facts")
    ax.axhline(25.0, color="gray", linestyle=":", label="chance (4 candidates)")
    ax.set(xscale="log", ylim=(0, 100), xlabel="parameters", ylabel="spoken QA accuracy (%)",
           title="text-to-speech knowledge transfer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def read_num_params(train_dir: str) -> int | None:
    path = Path(train_dir) / "train_summary.json"
    return json.loads(path.read_text()).get("num_params") if path.exists() else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _pair(cell: dict | None) -> str:
    if cell is None:
        return "n/a"
    p = cell.get("p_value")
    return f"{100 * cell['accuracy']:.1f} (p={p:.1g})" if p is not None else f"{100 * cell['accuracy']:.1f}"


def render_table(rows: dict[str, dict]) -> str:
    head = ["model", "lexical %", "syntactic %", "semantic %", "QA text %", "QA speech %", "speech/text",
            "QA speech, text-only facts %", "QA speech, heldout facts %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name, _pair(r["lexical"]), _pair(r["syntactic"]), _pair(r["semantic"]), _pct(r["qa_text"]),
                 _pct(r["qa_speech"]), "n/a" if r["qa_ratio"] is None else f"{r['qa_ratio']:.2f}",
                 _pct(r["qa_speech_text_only"]), _pct(r["qa_speech_heldout"])]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nSpeech accuracy on speech sides (units). Chance: 50% for pairs, 25% for QA with 4 candidates. "
            "Text-only facts were never spoken in training (their names only alone): speech accuracy on them above "
            "the heldout row shows text-to-speech knowledge transfer.\n")
    return "\n".join(lines) + "\n" + note


def plot_losses(train_dirs: dict[str, str], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for name, folder in train_dirs.items():
        metrics = Path(folder) / "metrics.jsonl"
        if not metrics.exists():
            continue
        rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        points = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        if points:
            ax.plot(*zip(*points, strict=True), label=name)
            drawn = True
    ax.set(xlabel="step", ylabel="train loss (nats/token)", title="training loss")
    if drawn:
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def run_report(cfg: ReportConfig) -> StageReport:
    report = StageReport("report", cfg.out_dir, items_in=len(cfg.evals))
    rows = {}
    for name, folder in cfg.evals.items():
        path = Path(folder) / "results.json"
        if not path.exists():
            report.fail(name, f"missing: {path}: run `koe eval` first")
            continue
        rows[name] = summarize_model(json.loads(path.read_text()))
        report.ok()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    table = render_table(rows)
    params = {name: n for name, folder in cfg.sizes.items() if (n := read_num_params(folder)) is not None}
    for name in sorted(set(cfg.sizes) - set(params)):
        report.fail(name, f"missing: {Path(cfg.sizes[name]) / 'train_summary.json'}")
    if params:
        table += render_scaling(rows, params)
        if plot_scaling(rows, params, cfg.out_dir / "scaling.png"):
            report.extra["scaling_plot"] = str(cfg.out_dir / "scaling.png")
    atomic_write_text(cfg.out_dir / "results.md", "# koe results\n\n" + table)
    write_json(cfg.out_dir / "results.json", rows)
    if cfg.train_dirs and plot_losses(cfg.train_dirs, cfg.out_dir / "loss_curves.png"):
        report.extra["loss_curves"] = str(cfg.out_dir / "loss_curves.png")
    for png in cfg.plots:
        src = Path(png)
        if src.exists():
            shutil.copy(src, cfg.out_dir / f"{src.parent.name}_{src.name}")
        else:
            report.fail(src.name, f"missing: {src}")
    return report.finish()
