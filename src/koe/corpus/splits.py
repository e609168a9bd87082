"""Train/valid/test assignment: a rule on a label field first, then a seeded random carve-out of what is left.

    apply_split_rule(utts, "take", {"0-4": "test"})        # FSDD's official test split
    carve_random_splits(utts, valid_fraction=0.1, test_fraction=0.0, split_by="speaker", seed=0)

The random part draws whole groups (utterances, speakers or recordings) from the train pool only, so a rule or an
importer's own split (LibriSpeech dev/test folders, HF dataset splits) is never overridden, and VAD segments of one
recording can be kept on one side (`split_by=recording`). It depends only on the sorted group names and the seed,
not on file order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from koe.corpus.manifest import Utterance
from koe.seed import rng_for

_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


def rule_split(value: str, split_map: Mapping[str, str]) -> str | None:
    """The split a value maps to: exact key first, then inclusive integer ranges 'a-b'; None when nothing matches."""
    table = {str(k): str(v) for k, v in split_map.items()}
    if value in table:
        return table[value]
    if not re.fullmatch(r"-?\d+", value):
        return None
    for key, split in table.items():
        m = _RANGE.match(key)
        if m and int(m.group(1)) <= int(value) <= int(m.group(2)):
            return split
    return None


def apply_split_rule(utts: list[Utterance], field: str, split_map: Mapping[str, str]) -> None:
    """Set `split` from `meta[field]` (or the speaker when field == 'speaker'); unmatched values keep their split."""
    for u in utts:
        value = u.speaker if field == "speaker" else u.meta.get(field)
        split = rule_split(str(value), split_map) if value is not None else None
        if split is not None:
            u.split = split


def carve_random_splits(
    utts: list[Utterance], valid_fraction: float, test_fraction: float, split_by: str, seed: int
) -> None:
    """Move round(fraction x groups) whole groups of the train pool to valid and to test."""
    if valid_fraction <= 0 and test_fraction <= 0:
        return
    pool = [u for u in utts if u.split == "train"]
    groups = sorted({_group(u, split_by) for u in pool})
    order = rng_for(seed, "split").permutation(len(groups))
    n_test = round(test_fraction * len(groups))
    n_valid = round(valid_fraction * len(groups))
    target = {groups[i]: "test" for i in order[:n_test]}
    target.update({groups[i]: "valid" for i in order[n_test : n_test + n_valid]})
    for u in pool:
        u.split = target.get(_group(u, split_by), "train")


def _group(u: Utterance, split_by: str) -> str:
    if split_by == "speaker":
        return u.speaker
    if split_by == "recording":
        return u.audio_path
    return u.id
