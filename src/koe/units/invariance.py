"""Speaker invariance of units: how differently two voices saying the same sentence are tokenized.

    pairs = same_text_pairs(texts, speakers, max_pairs=2000, seed=0)   # [(i, j), ...] same text, other speaker
    d = normalized_edit_distance(units_a, units_b)                     # Levenshtein / max(len), in [0, 1]

Reported by `koe units stats` when the manifest has several speakers per text (TinySpeech from `koe synth
voices_per_item=3`): the mean normalised edit distance over same-text pairs, and as a baseline the same over pairs
of different texts (each same-text pair's first utterance with a seeded random utterance of another text). A unit
stream that ignores the speaker scores far below the baseline; frame units (tens of tokens per second) and syllable
units (a few) are compared on the same scale because the distance is normalised by length.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict

import numpy as np

from koe.seed import rng_for


def normalized_edit_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Levenshtein distance (unit cost) / max(len a, len b); 0 for two empty sequences.

    One numpy row per element of a: substitution and deletion are elementwise, insertion is a running minimum
    (D[i, j] = j + min_{k <= j} (T[k] - k)), so a 300 x 300 pair takes well under a millisecond.
    """
    a, b = np.asarray(a), np.asarray(b)
    if not len(a) or not len(b):
        return 0.0 if len(a) == len(b) else 1.0
    cols = np.arange(len(b) + 1)
    row = cols.astype(np.int64)
    for i, x in enumerate(a, start=1):
        step = np.empty_like(row)
        step[0] = i
        step[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != x))
        row = cols + np.minimum.accumulate(step - cols)
    return float(row[-1]) / max(len(a), len(b))


def normalize_text(text: str) -> str:
    """Lower case, letters, digits and single spaces: the key that groups utterances of one sentence."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def same_text_pairs(texts: list[str | None], speakers: list[str | None], max_pairs: int, seed: int
                    ) -> list[tuple[int, int]]:
    """Index pairs with the same normalised text and different speakers; a seeded sample of max_pairs if more."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(texts):
        if t:
            groups[normalize_text(t)].append(i)
    pairs = [(i, j) for members in groups.values() for i, j in itertools.combinations(members, 2)
             if speakers[i] != speakers[j]]
    if len(pairs) > max_pairs:
        keep = np.sort(rng_for(seed, "invariance-pairs").choice(len(pairs), max_pairs, replace=False))
        pairs = [pairs[k] for k in keep]
    return pairs


def speaker_invariance(units: list[np.ndarray], texts: list[str | None], speakers: list[str | None],
                       max_pairs: int = 2000, seed: int = 0) -> dict | None:
    """Mean normalised edit distance over same-text, different-speaker pairs and over different-text pairs."""
    pairs = same_text_pairs(texts, speakers, max_pairs, seed)
    if not pairs:
        return None
    keys = [normalize_text(t) if t else None for t in texts]
    rng = rng_for(seed, "invariance-baseline")
    same, other = [], []
    for i, j in pairs:
        same.append(normalized_edit_distance(units[i], units[j]))
        candidates = [k for k in rng.choice(len(units), size=min(len(units), 8), replace=False) if keys[k] != keys[i]]
        if candidates:
            other.append(normalized_edit_distance(units[i], units[candidates[0]]))
    return {"pairs": len(pairs), "same_text_ned": float(np.mean(same)),
            "different_text_ned": float(np.mean(other)) if other else None}
