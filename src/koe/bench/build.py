"""`koe bench build`: speak every benchmark side with every voice and write one directory per benchmark.

    koe bench build out_dir=bench blimp=../shared/data/blimp/data blimp_per_paradigm=20 \
        webquestions=../shared/data/webquestions/main/test.json \
        triviaqa=../shared/data/triviaqa_subset/triviaqa_sm_sub.jsonl
    ls bench/   # lexical-tiny syntactic-tiny syntactic-blimp semantic-tiny qa-tiny qa-webquestions qa-triviaqa

Each benchmark directory gets items.jsonl + bench.json (docs/evaluation.md), `audio/<voice>/<hash>.wav` (16 kHz,
16-bit; the hash covers voice, rate, pitch and what is spoken, so identical sides are synthesized once),
skipped.jsonl (source entries no item could be made of, with reasons), config.yaml and a `.done` marker keyed by the
config hash: a rerun skips finished benchmarks unless `force=true`. With `model=DIR` (its own unit tokenizer) or
`unit_tokenizer=DIR` the audio is also encoded into the token cache (koe.bench.tokens), so `koe eval` starts scoring
at once; given both, their tokenizers must have the same content hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import soundfile as sf

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Skipped, Spoken, safe_id
from koe.bench.items import BenchInfo, BenchItem, Side, write_items
from koe.bench.registry import BenchSource, benchmark_sources
from koe.bench.speak import speak
from koe.config import save_config, to_dict
from koe.stage import KoeInputError, StageReport, atomic_write_text, done_key, is_done, mark_done, progress


def run_bench_build(cfg: BenchBuildConfig) -> StageReport:
    """Build every benchmark the config enables; a failing source or item is listed, the rest still built."""
    out_dir = Path(cfg.out_dir)
    report = StageReport("bench build", out_dir)
    built: dict[str, int] = {}
    for src in benchmark_sources(cfg):
        bench_dir = out_dir / src.name
        source_path = getattr(cfg, src.source, None)
        key = done_key({**to_dict(cfg), "benchmark": src.name, "unit_tokenizer": None, "model": None},
                       [source_path] if isinstance(source_path, Path) else [])
        if is_done(bench_dir, key) and not cfg.force:
            built[src.name] = (bench_dir / "items.jsonl").read_text().count("\n")
            report.items_in += built[src.name]
            report.ok(built[src.name])
            continue
        try:
            entries = src.make()
        except (KoeInputError, ValueError, OSError) as e:
            report.fail(src.name, f"source: {e}", path=source_path if isinstance(source_path, Path) else None)
            continue
        built[src.name] = _build_one(src, [e for e in entries if isinstance(e, Draft)],
                                     [e for e in entries if isinstance(e, Skipped)], bench_dir, cfg, report)
        save_config(cfg, bench_dir)
        mark_done(bench_dir, key)
    if cfg.unit_tokenizer is not None or cfg.model is not None:
        _tokenize(out_dir, list(built), cfg, report)
    report.extra["benchmarks"] = built
    save_config(cfg, out_dir)
    return report.finish()


def _build_one(src: BenchSource, drafts: list[Draft], skipped: list[Skipped], bench_dir: Path,
               cfg: BenchBuildConfig, report: StageReport) -> int:
    """Speak every draft with every voice; an item whose side cannot be spoken is listed, not written."""
    items: list[BenchItem] = []
    report.items_in += len(drafts) * len(cfg.voices)
    jobs = [(d, v) for d in drafts for v in cfg.voices]
    for draft, voice in progress(jobs, desc=f"bench {src.name}", unit="item"):
        item_id = f"{draft.group}@{voice}"
        try:
            prompt = _side(draft.prompt, voice, bench_dir, cfg) if draft.prompt else None
            cands = [_side(c, voice, bench_dir, cfg) for c in draft.candidates]
        except KoeInputError as e:
            report.fail(f"{src.name}/{item_id}", str(e))
            continue
        items.append(BenchItem(id=item_id, group=draft.group, benchmark=src.name, task=draft.task, source=src.source,
                               category=draft.category, voice=voice, candidates=cands, label=draft.label,
                               prompt=prompt, references=draft.references, meta=draft.meta))
        report.ok()
    info = BenchInfo(name=src.name, tasks=sorted({d.task for d in drafts}), source=src.source, voices=list(cfg.voices),
                     num_groups=len({it.group for it in items}), num_items=len(items), description=src.description)
    write_items(bench_dir, items, info)
    atomic_write_text(bench_dir / "skipped.jsonl",
                      "".join(json.dumps({"item": s.item, "reason": s.reason}) + "\n" for s in skipped))
    if skipped:
        report.extra[f"skipped_{src.name}"] = len(skipped)
    return len(items)


def _side(spoken: Spoken, voice: str, bench_dir: Path, cfg: BenchBuildConfig) -> Side:
    """Synthesize a side once per (voice, rate, pitch, input); the WAV name is a hash of exactly those."""
    digest = hashlib.sha1(f"{voice}|{cfg.rate_wpm}|{cfg.pitch}|{spoken.speak}".encode()).hexdigest()[:16]
    rel = f"audio/{safe_id(voice)}/{digest}.wav"
    path = bench_dir / rel
    if not path.exists():
        audio = speak(spoken, voice, cfg.rate_wpm, cfg.pitch)
        if len(audio) == 0:
            raise KoeInputError(f"empty-audio: {spoken.speak[:60]!r}: espeak produced no samples with {voice}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.wav")
        sf.write(tmp, audio, 16_000, subtype="PCM_16")
        tmp.replace(path)
    return Side(text=spoken.text, audio=rel, phonemes=spoken.phonemes)


def _tokenize(out_dir: Path, names: list[str], cfg: BenchBuildConfig, report: StageReport) -> None:
    from koe.bench.tokens import tokenize_bench
    from koe.data.speech_tokens import resolve_unit_tokenizer
    from koe.units.tokenizer import UnitTokenizer

    if cfg.model is not None:
        tok = resolve_unit_tokenizer(cfg.model, cfg.unit_tokenizer, required=True)
    else:
        tok = UnitTokenizer.load(cfg.unit_tokenizer)
    encoded = 0
    for name in names:
        try:
            encoded += tokenize_bench(out_dir / name, tok)[1]
        except KoeInputError as e:
            report.fail(name, str(e), path=out_dir / name)
    report.extra["wavs_tokenized"] = encoded
