"""`koe eval`: zero-shot evaluation of a speech-text LM on any number of koe benchmarks in one run.

    koe eval runs/tiny/interleaved/final bench=[bench] ppl_data=runs/tiny/data
    koe eval old_model bench=[bench] unit_tokenizer=runs/tiny/tokenizer    # a model dir without its own tokenizer
    cat eval/results.md

The unit tokenizer is the model's own (`<model>/unit_tokenizer`, koe.data.speech_tokens); `unit_tokenizer=` must
have the same content hash, and is needed only for model dirs trained before models carried one. Each benchmark's
audio is tokenized once per unit tokenizer (cached in `<bench>/tokens/<hash>.jsonl`, see
koe.bench.tokens); the model scores every item under every modality condition (koe.eval.tasks), and the run writes
results.json (every number, config and vocabulary) and results.md (tables) to out_dir, with config.yaml and the
stage summary beside them. Rules: docs/evaluation.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from koe.bench.items import ITEMS_FILE, BenchItem, read_info, read_items
from koe.bench.tokens import tokenize_bench
from koe.config import save_config, to_dict
from koe.eval.config import EvalConfig
from koe.eval.oov import oov_report, training_vocabulary
from koe.eval.report import write_results
from koe.eval.tasks import evaluate_items
from koe.model.speech_text_lm import SpeechTextLM
from koe.stage import KoeInputError, StageReport


def find_benchmarks(paths: list[str]) -> list[Path]:
    """Benchmark dirs named directly, or found one level below a folder; a path that holds neither is an error."""
    found = []
    for p in map(Path, paths):
        if (p / ITEMS_FILE).exists():
            found.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if (d / ITEMS_FILE).exists()) if p.is_dir() else []
        if not subs:
            raise KoeInputError(f"no-bench: {p}: neither a benchmark dir nor a folder of them (no items.jsonl)")
        found += subs
    return list(dict.fromkeys(found))


def _limit(items: list[BenchItem], max_groups: int) -> list[BenchItem]:
    if not max_groups:
        return items
    keep = set(list(dict.fromkeys(it.group for it in items))[:max_groups])
    return [it for it in items if it.group in keep]


def _oov(items: list[BenchItem], vocab, cfg: EvalConfig, name: str, report: StageReport) -> dict:
    """The benchmark's share of words unseen in training, with a warning above cfg.oov_warn_share."""
    oov = oov_report(items, vocab, cfg.oov_warn_share)
    if oov.get("warning"):
        print(f"[eval] WARNING: {name}: {100 * oov['oov_type_share']:.0f}% of its {oov['num_types']} word types "
              f"never occur in the model's training text (e.g. {', '.join(oov['examples'][:5])}); its scores "
              "test unseen words", file=sys.stderr)
        report.extra.setdefault("oov_warnings", {})[name] = oov["oov_type_share"]
    return oov


@torch.no_grad()  # scoped: a global switch would leak into whatever runs next in the process (a recipe's training)
def run_eval(cfg: EvalConfig) -> StageReport:
    out_dir = Path(cfg.out_dir)
    report = StageReport("eval", out_dir)
    benches = find_benchmarks(cfg.bench_list)
    want_speech = "speech" in cfg.modalities
    lm = SpeechTextLM.load(cfg.model, cfg.device, cfg.dtype, cfg.mask_modality, cfg.max_length,
                           unit_tokenizer=cfg.unit_tokenizer, require_unit_tokenizer=want_speech)
    unit_tok = lm.unit_tokenizer if want_speech else None
    results: dict = {"model": cfg.model, "speech_only": not lm.has_text, "vocab": lm.vocab.to_dict(),
                     "unit_tokenizer_hash": unit_tok.content_hash if unit_tok else None, "benchmarks": {}}
    vocab = training_vocabulary(cfg.model, cfg.train_text_vocab)
    results["training_text_vocab"] = {"sources": vocab.sources, "reason": vocab.reason}
    for bench_dir in benches:
        try:
            items = _limit(read_items(bench_dir), cfg.max_groups)
            info = read_info(bench_dir)
            units = tokenize_bench(bench_dir, unit_tok)[0] if unit_tok is not None else None
        except KoeInputError as e:
            report.fail(bench_dir.name, str(e), path=bench_dir)
            continue
        report.items_in += len(items)
        failed_before = len(report.failures)
        res = evaluate_items(items, lm, units, cfg, report, info.name)
        report.ok(len(items))
        results["benchmarks"][info.name] = {"path": str(bench_dir), "source": info.source, "tasks": info.tasks,
                                            "voices": info.voices, "num_items": len(items),
                                            "num_groups": len({it.group for it in items}),
                                            "num_failures": len(report.failures) - failed_before, **res,
                                            "oov": _oov(items, vocab, cfg, info.name, report)}
    if cfg.ppl_data is not None:
        from koe.eval.perplexity import modality_perplexity

        try:
            results["perplexity"] = modality_perplexity(lm, cfg.ppl_data, cfg.ppl_split, cfg.ppl_max_docs,
                                                        cfg.batch_tokens)
        except KoeInputError as e:
            report.fail("perplexity", str(e), path=cfg.ppl_data)
    results["config"] = to_dict(cfg)
    json_path, md_path = write_results(out_dir, results)
    save_config(cfg, out_dir)
    report.extra.update({"results_json": str(json_path), "results_md": str(md_path),
                         "benchmarks": list(results["benchmarks"])})
    return report.finish()
