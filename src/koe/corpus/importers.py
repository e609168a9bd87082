"""`koe corpus import`: audio + transcripts from folders, LibriSpeech, file-name labels, HF datasets or VAD cuts.

    koe corpus import dir path=my_corpus out_dir=corpus/mine
    koe corpus import pattern path=../shared/data/fsdd/recordings out_dir=corpus/fsdd split_field=take \
        'split_map={0-4: test}'

    from koe.corpus.config import ImportConfig
    from koe.corpus.importers import run_import
    report = run_import(ImportConfig(source="dir", path=Path("my_corpus"), out_dir=Path("corpus/mine")))

Writes out_dir/manifest.jsonl (docs/formats.md#manifest), config.yaml, corpus_import_summary.json (utterances,
hours and speakers per split, failures by reason) and corpus_import_failures.jsonl. Every candidate file is probed
(koe.corpus.checks); each bad one is listed with its reason and the rest are imported, and the exit status is 1
when anything failed. Splits: the importer's own (LibriSpeech dev/test folders, HF split names), then
`split_field`/`split_map`, then a seeded random valid/test carve-out of the train pool. See docs/corpus.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from koe.config import save_config
from koe.corpus.config import ImportConfig
from koe.corpus.manifest import SPLITS, Utterance, write_manifest
from koe.corpus.splits import apply_split_rule, carve_random_splits
from koe.stage import StageReport

STAGE = "corpus import"


def run_import(cfg: ImportConfig) -> StageReport:
    """Import `cfg.path` with the `cfg.source` importer; returns the report (exit_code 1 when any file failed)."""
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir)
    report = StageReport(STAGE, out_dir)
    utts = _dedupe(import_source(cfg, report), report)
    if cfg.split_field:
        apply_split_rule(utts, cfg.split_field, cfg.split_map)
    carve_random_splits(utts, cfg.valid_fraction, cfg.test_fraction, cfg.split_by, cfg.seed)
    write_manifest(out_dir / "manifest.jsonl", utts)
    report.ok(len(utts))
    report.extra.update(summarize(utts))
    return report.finish()


def import_source(cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    """Dispatch to one importer; heavy libraries (datasets, torch) load only for the sources that need them."""
    if cfg.source in ("dir", "pattern"):
        from koe.corpus.files import import_files

        return import_files(cfg, report)
    if cfg.source == "librispeech":
        from koe.corpus.files import import_librispeech

        return import_librispeech(cfg, report)
    if cfg.source == "hf":
        from koe.corpus.hf import import_hf

        return import_hf(cfg, report)
    from koe.corpus.vad import import_vad

    return import_vad(cfg, report)


def _dedupe(utts: list[Utterance], report: StageReport) -> list[Utterance]:
    """Keep the first utterance of each id and list the others (two files whose paths map to one id)."""
    seen: dict[str, str] = {}
    kept = []
    for u in utts:
        if u.id in seen:
            report.fail(u.id, f"duplicate id: {u.audio_path}: {u.id!r} is already taken by {seen[u.id]}", u.audio_path)
            continue
        seen[u.id] = u.audio_path
        kept.append(u)
    return kept


def summarize(utts: list[Utterance]) -> dict:
    """Per-split utterances, hours and speakers: the numbers a reader checks first after an import."""
    by_split = {s: [u for u in utts if u.split == s] for s in SPLITS}
    return {
        "utterances": {s: len(us) for s, us in by_split.items()},
        "hours": {s: round(sum(u.duration_s for u in us) / 3600, 4) for s, us in by_split.items()},
        "speakers": {s: len({u.speaker for u in us}) for s, us in by_split.items()},
        "num_speakers": len({u.speaker for u in utts}),
        "total_hours": round(sum(u.duration_s for u in utts) / 3600, 4),
        "with_text": sum(u.text is not None for u in utts),
        "sample_rates_hz": dict(Counter(str(u.sample_rate_hz) for u in utts)),
    }
