"""Semantic benchmarks (sStoryCloze / tStoryCloze-style): which ending fits the story, from StoryCloze and TinySpeech.

    koe bench build kinds=[semantic] storycloze=cloze_test_val__spring2016.csv

From one StoryCloze CSV two benchmarks are built: `semantic-sstorycloze` keeps the real wrong ending (hard), and
`semantic-tstorycloze` replaces it with the right ending of another story drawn with the config seed (easier: the
wrong ending is off-topic). The prompt is the four context sentences joined by spaces.
"""

from __future__ import annotations

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Spoken, safe_id
from koe.bench.registry import BenchSource, tiny_pair_drafts
from koe.bench.sources import Story, read_storycloze
from koe.seed import rng_for


def _stories(cfg: BenchBuildConfig) -> list[Story]:
    stories = read_storycloze(cfg.storycloze)
    if cfg.storycloze_num and cfg.storycloze_num < len(stories):
        picks = rng_for(cfg.seed, "storycloze-sample").choice(len(stories), size=cfg.storycloze_num, replace=False)
        stories = [stories[int(i)] for i in sorted(picks)]
    return stories


def storycloze_drafts(cfg: BenchBuildConfig, topical: bool) -> list[Draft]:
    """sStoryCloze (`topical=True`: the real wrong ending) or tStoryCloze (a random other story's right ending)."""
    stories = _stories(cfg)
    if not topical and len(stories) < 2:
        raise ValueError("tStoryCloze needs at least two stories")
    rng = rng_for(cfg.seed, "tstorycloze")
    drafts = []
    for i, s in enumerate(stories):
        right = s.endings[s.right]
        if topical:
            endings, label = list(s.endings), s.right
        else:
            other = int(rng.integers(len(stories) - 1))
            other += other >= i  # any story but this one
            wrong = stories[other].endings[stories[other].right]
            label = int(rng.integers(2))
            endings = [right, wrong] if label == 0 else [wrong, right]
        prefix = "ssc" if topical else "tsc"
        drafts.append(Draft(group=safe_id(f"{prefix}-{s.id}"), task="cloze", category="all",
                            prompt=Spoken(" ".join(s.prompt)), candidates=[Spoken(e) for e in endings], label=label,
                            meta={"story_id": s.id}))
    return drafts


def sources(cfg: BenchBuildConfig) -> list[BenchSource]:
    out = []
    if cfg.tinyspeech:
        out.append(BenchSource("semantic-tiny", "tinyspeech", "TinySpeech stories with a fitting and a wrong ending",
                               lambda: tiny_pair_drafts("semantic_pairs", cfg)))
    if cfg.storycloze is not None:
        out.append(BenchSource("semantic-sstorycloze", "storycloze", "sStoryCloze-style: the real wrong ending",
                               lambda: storycloze_drafts(cfg, topical=True)))
        out.append(BenchSource("semantic-tstorycloze", "storycloze",
                               "tStoryCloze-style: the wrong ending is another story's ending",
                               lambda: storycloze_drafts(cfg, topical=False)))
    return out
