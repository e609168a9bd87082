"""The one place that maps a benchmark kind to its builder module.

    for src in benchmark_sources(cfg):     # BenchSource(name="syntactic-blimp", source="blimp", ...)
        drafts = src.make()

Each kind module (lexical, syntactic, semantic, qa) exposes `sources(cfg) -> list[BenchSource]`, one per source the
config enables; `make()` reads the source and returns text-only `Draft`s (and `Skipped` entries), so a missing or
malformed source fails only its own benchmark.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Skipped, Spoken, safe_id

KIND_MODULES = {
    "lexical": "koe.bench.lexical",
    "syntactic": "koe.bench.syntactic",
    "semantic": "koe.bench.semantic",
    "qa": "koe.bench.qa",
}


@dataclasses.dataclass
class BenchSource:
    name: str  # the benchmark directory name, `<kind>-<source>`
    source: str
    description: str
    make: Callable[[], list[Draft | Skipped]]


def benchmark_sources(cfg: BenchBuildConfig) -> list[BenchSource]:
    out = []
    for kind in cfg.kinds:
        out.extend(importlib.import_module(KIND_MODULES[kind]).sources(cfg))
    return out


def tiny_pair_drafts(function: str, cfg: BenchBuildConfig) -> list[Draft]:
    """TinySpeech minimal pairs (`lexical_pairs`, `syntactic_pairs`, `semantic_pairs`) as drafts.

    A pair with a prompt becomes a cloze item (the prompt is the story, good/bad the endings), one without a pair.
    """
    from koe import tinyspeech

    drafts = []
    for p in getattr(tinyspeech, function)(cfg.tiny_num, cfg.seed):
        prompt = Spoken(p.prompt) if p.prompt else None
        drafts.append(Draft(group=safe_id(f"tiny-{p.id}"), task="cloze" if prompt else "pair", category=p.category,
                            candidates=[Spoken(p.good), Spoken(p.bad)], prompt=prompt, meta={"kind": p.kind}))
    return drafts
