"""Syntactic benchmarks (sBLIMP-style): grammatical vs ungrammatical sentence pairs, from BLiMP and TinySpeech.

    koe bench build kinds=[syntactic] blimp=../shared/data/blimp/data blimp_per_paradigm=20

BLiMP pairs are sampled per paradigm (`UID`) with a seed derived from the config seed and the paradigm name, so the
sample of one paradigm does not change when other paradigms are added; the category is the paradigm.
"""

from __future__ import annotations

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Spoken, safe_id
from koe.bench.registry import BenchSource, tiny_pair_drafts
from koe.bench.sources import read_blimp
from koe.seed import rng_for


def blimp_drafts(cfg: BenchBuildConfig) -> list[Draft]:
    drafts = []
    for uid, pairs in sorted(read_blimp(cfg.blimp).items()):
        n = len(pairs) if cfg.blimp_per_paradigm == 0 else min(cfg.blimp_per_paradigm, len(pairs))
        picks = sorted(rng_for(cfg.seed, "blimp", uid).choice(len(pairs), size=n, replace=False))
        for i in picks:
            p = pairs[int(i)]
            drafts.append(Draft(group=safe_id(f"blimp-{uid}-{p.pair_id}"), task="pair", category=uid,
                                candidates=[Spoken(p.good), Spoken(p.bad)],
                                meta={"pair_id": p.pair_id, "field": p.field, "linguistics_term": p.term}))
    return drafts


def sources(cfg: BenchBuildConfig) -> list[BenchSource]:
    out = []
    if cfg.tinyspeech:
        out.append(BenchSource("syntactic-tiny", "tinyspeech", "TinySpeech grammatical/ungrammatical pairs",
                               lambda: tiny_pair_drafts("syntactic_pairs", cfg)))
    if cfg.blimp is not None:
        out.append(BenchSource("syntactic-blimp", "blimp", "sBLIMP-style: BLiMP minimal pairs, spoken",
                               lambda: blimp_drafts(cfg)))
    return out
