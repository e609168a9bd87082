"""Spoken benchmarks for zero-shot evaluation of speech-text LMs (`koe bench build`).

    koe bench build blimp=../shared/data/blimp/data storycloze=storycloze_val.csv wordlist=words.txt
    items = read_items("bench/syntactic-blimp")          # list[BenchItem], one per (pair, voice)

Kinds: lexical (sWUGGY-style), syntactic (sBLIMP-style), semantic (s/tStoryCloze-style), qa (spoken QA); each
module builds text drafts from its sources and `build` speaks them. Formats: docs/evaluation.md.
"""

from koe.bench.items import BenchInfo, BenchItem, Side, read_info, read_items, write_items

__all__ = ["BenchInfo", "BenchItem", "Side", "read_info", "read_items", "write_items"]
