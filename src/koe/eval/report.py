"""results.json and results.md of `koe eval`: every number in JSON, the headline numbers as markdown tables.

    write_results(out_dir, results)     # results = {"model": ..., "benchmarks": {...}, "perplexity": ...}

Conditions that cannot be scored (text sides of a units-only model, speech without a unit tokenizer) appear as
`{"status": "n/a", "reason": ...}` in JSON and as `n/a` in the tables, never as 0.
"""

from __future__ import annotations

from pathlib import Path

from koe.stage import atomic_write_text, write_json

SCHEMA_VERSION = 1


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.2g}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows), ""]


def render_markdown(results: dict) -> str:
    lines = [f"# koe eval: {results['model']}", ""]
    if results.get("speech_only"):
        lines += ["Units-only (speech-only) vocabulary: text conditions are n/a.", ""]
    acc_rows, cat_rows, qa_rows, gen_rows = [], [], [], []
    for name, bench in results["benchmarks"].items():
        for cond, r in bench.get("conditions", {}).items():
            if r.get("status") == "n/a":
                acc_rows.append([name, cond, "n/a", "-", "-", "-", r["reason"]])
                continue
            ci = f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]"
            acc_rows.append([name, cond, _pct(r["accuracy"]), ci, _pct(r["chance"]), _p(r["p_value"]),
                             str(r["num_groups"])])
            if not cond.endswith("/whole") and len(r["by_category"]) > 1:
                cat_rows += [[name, cond, c, _pct(v["accuracy"]), str(v["num_groups"])]
                             for c, v in r["by_category"].items()]
        if "qa_ratio" in bench:
            conds = bench["conditions"]
            acc = {c: conds.get(c, {}).get("accuracy") for c in ("text_text", "speech_text", "speech_speech")}
            ratio = bench["qa_ratio"]
            qa_rows.append([name, _pct(acc["text_text"]), _pct(acc["speech_text"]),
                            _ratio(ratio.get("speech_text/text_text")), _pct(acc["speech_speech"]),
                            _ratio(ratio.get("speech_speech/text_text"))])
        for key, g in bench.get("generation", {}).items():
            if g.get("status") == "n/a":
                gen_rows.append([name, key, "n/a", "n/a"])
            else:
                gen_rows.append([name, key, _pct(g["exact_match"].get("accuracy")),
                                 _pct(g["contains"].get("accuracy"))])
    lines += ["## Accuracy", ""]
    lines += _table(["benchmark", "condition", "accuracy %", "CI %", "chance %", "p", "groups / reason"], acc_rows)
    if qa_rows:
        lines += ["## Spoken QA (likelihood ranking)", ""]
        lines += _table(["benchmark", "text %", "speech q, text a %", "ratio", "speech q, speech a %", "ratio"],
                        qa_rows)
    if gen_rows:
        lines += ["## Spoken QA (greedy answers)", ""]
        lines += _table(["benchmark", "question_answer", "exact match %", "contains %"], gen_rows)
    if cat_rows:
        lines += ["## By category", ""]
        lines += _table(["benchmark", "condition", "category", "accuracy %", "groups"], cat_rows)
    oov_rows = [[name, _pct(o.get("oov_type_share")), _pct(o.get("oov_token_share")), str(o.get("num_types", 0)),
                 ("WARNING: " if o.get("warning") else "") + (o.get("reason") or ", ".join(o.get("examples", [])[:5]))]
                for name, b in results["benchmarks"].items() if (o := b.get("oov"))]
    if oov_rows:
        lines += ["## Words unseen in the training text", ""]
        lines += _table(["benchmark", "OOV types %", "OOV tokens %", "word types", "examples / reason"], oov_rows)
    if results.get("perplexity"):
        lines += ["## Perplexity (held-out shards)", ""]
        lines += _table(["modality", "perplexity", "tokens"],
                        [[m, "n/a" if v["perplexity"] is None else f"{v['perplexity']:.3f}", str(v["num_tokens"])]
                         for m, v in results["perplexity"].items()])
    return "\n".join(lines)


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_results(out_dir: str | Path, results: dict) -> tuple[Path, Path]:
    out = Path(out_dir)
    results = {"schema_version": SCHEMA_VERSION, **results}
    write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", render_markdown(results))
    return out / "results.json", out / "results.md"
