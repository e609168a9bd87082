"""Boundary evaluation of unit segmentations, and syllable truth derived from word and phone alignments.

    ref = span_boundaries(utt.words)                           # sorted unique times (s) of word starts and ends
    hits = match_boundaries(pred_s, ref, tolerance_s=0.05)     # one-to-one matches within the tolerance
    counts = BoundaryCounts(); counts.add(pred_s, ref); counts.scores()  # precision, recall, f1, r_value, os
    syllables = syllable_spans(utt.words, utt.phones)          # [(label, start_s, end_s)] by the vowel-nucleus rule

Boundaries are the starts and ends of every span (a word ending where the next starts gives one boundary, a pause
gives two). A predicted boundary is a hit when it is matched one-to-one, closest pairs first, to a reference within
the tolerance (50 ms, as in SD-HuBERT and Sylber). Over a corpus the counts are summed before the scores are taken.
R-value (Räsänen et al. 2009) penalises over-segmentation, which F1 rewards when boundaries are cheap:
HR = recall, OS = predicted / reference - 1, r1 = sqrt((1 - HR)^2 + OS^2), r2 = (HR - OS - 1) / sqrt(2),
R = 1 - (|r1| + |r2|) / 2.

Syllables: neither espeak nor pocketsphinx marks them, so they are derived from phones inside each word. Every vowel
(first character, after stress marks, one of `aeiouAEIOUV@03`: espeak mnemonics such as 'eI, @L, 3: and ARPAbet
such as ah0, er) or espeak syllabic consonant (a name ending in "-", e.g. n-) is a nucleus. A word has one syllable
per nucleus (one if it has none); between two nuclei the syllable boundary lies before the last consonant (a
one-consonant onset: "capital" = k'a | pI | t@L), or at the second nucleus when no consonant lies between.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from koe.corpus.manifest import Span

VOWEL_INITIALS = frozenset("aeiouAEIOUV@03")


def is_nucleus(phone: str) -> bool:
    """True for a vowel or syllabic consonant in espeak mnemonics or ARPAbet (see the module docstring)."""
    name = phone.lstrip("',")
    return bool(name) and (name[0] in VOWEL_INITIALS or (len(name) > 1 and name.endswith("-")))


def syllable_spans(words: list[Span] | None, phones: list[Span] | None) -> list[Span]:
    """Syllables of each word from the phones whose midpoints lie inside it; label = the phones joined."""
    if not words or not phones:
        return []
    mids = np.array([(s + e) / 2 for _, s, e in phones])
    order = np.argsort(mids, kind="stable")
    out: list[Span] = []
    for _, ws, we in sorted(words, key=lambda w: w[1]):
        lo, hi = np.searchsorted(mids[order], [ws, we])
        inside = [phones[i] for i in order[lo:hi]]
        if not inside:
            continue
        nuclei = [i for i, (p, _, _) in enumerate(inside) if is_nucleus(p)]
        cuts = [0] + [max(prev + 1, cur - 1) for prev, cur in itertools.pairwise(nuclei)] + [len(inside)]
        for a, b in itertools.pairwise(cuts):
            start = ws if a == 0 else inside[a][1]
            end = we if b == len(inside) else inside[b][1]
            out.append(("".join(p for p, _, _ in inside[a:b]), start, end))
    return out


def span_boundaries(spans: list[Span] | None) -> np.ndarray:
    """Sorted unique boundary times (s, rounded to 0.1 ms) of the spans' starts and ends."""
    if not spans:
        return np.zeros(0)
    return np.unique(np.round([t for _, s, e in spans for t in (s, e)], 4))


def match_boundaries(pred: np.ndarray, ref: np.ndarray, tolerance_s: float) -> int:
    """Number of one-to-one matches |pred - ref| <= tolerance, closest pairs matched first."""
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if not len(pred) or not len(ref):
        return 0
    dist = np.abs(pred[:, None] - ref[None, :])
    i, j = np.nonzero(dist <= tolerance_s + 1e-9)
    used_p, used_r, hits = set(), set(), 0
    for k in np.argsort(dist[i, j], kind="stable"):
        if i[k] not in used_p and j[k] not in used_r:
            used_p.add(i[k])
            used_r.add(j[k])
            hits += 1
    return hits


def boundary_scores(hits: int, num_pred: int, num_ref: int) -> dict[str, float | None]:
    """precision, recall, F1, over-segmentation OS and R-value from corpus counts (None where undefined)."""
    precision = hits / num_pred if num_pred else None
    recall = hits / num_ref if num_ref else None
    if precision is None or recall is None:
        return {"precision": precision, "recall": recall, "f1": None, "os": None, "r_value": None}
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    os_ = num_pred / num_ref - 1
    r1 = math.sqrt((1 - recall) ** 2 + os_**2)
    r2 = (recall - os_ - 1) / math.sqrt(2)
    return {"precision": precision, "recall": recall, "f1": f1, "os": os_, "r_value": 1 - (abs(r1) + abs(r2)) / 2}


@dataclasses.dataclass
class BoundaryCounts:
    """Hits and boundary counts summed over utterances."""

    tolerance_s: float = 0.05
    hits: int = 0
    num_pred: int = 0
    num_ref: int = 0
    utterances: int = 0

    def add(self, pred: np.ndarray, ref: np.ndarray) -> None:
        self.hits += match_boundaries(pred, ref, self.tolerance_s)
        self.num_pred += len(pred)
        self.num_ref += len(ref)
        self.utterances += 1

    def result(self) -> dict | None:
        if not self.utterances:
            return None
        return {**boundary_scores(self.hits, self.num_pred, self.num_ref), "tolerance_s": self.tolerance_s,
                "hits": self.hits, "predicted": self.num_pred, "reference": self.num_ref,
                "utterances": self.utterances}
