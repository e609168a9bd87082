"""Scoring rules of `koe eval` as pure functions (no model): side scores, item scores, averaging, statistics.

    side_score(np.array([-2.0, -1.0]), "mean")              # -1.5
    item_score([-1.5, -1.5], label=0)                        # 0.5 (a tie)
    acc = group_accuracy([("p1", 1.0), ("p1", 0.0), ("p2", 1.0)])   # {"p1": 0.5, "p2": 1.0}
    bootstrap_ci([0.5, 1.0, 0.0], num_resamples=1000, seed=0)
    binomial_pvalue(successes=70, n=100, p0=0.5)

The rules are specified in docs/evaluation.md; tests check them on hand-made cases.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

TIE_TOLERANCE = 1e-6


def side_score(logprobs: np.ndarray, reduce: str = "mean") -> float:
    """Score of one side from the log-probabilities of its scored tokens: their mean (default) or sum."""
    if len(logprobs) == 0:
        raise ValueError("a side needs at least one scored token")
    if reduce == "mean":
        return float(np.mean(logprobs))
    if reduce == "sum":
        return float(np.sum(logprobs))
    raise ValueError(f"reduce={reduce!r} must be 'mean' or 'sum'")


def item_score(scores: Sequence[float], label: int) -> float:
    """1/k when the labelled candidate is among the k candidates tied for the best score, else 0.

    With two candidates this is 1 (right side higher), 0.5 (tie) or 0. Scores within TIE_TOLERANCE (relative to
    max(1, |best|)) count as tied, so batch-order float noise never breaks a true tie.
    """
    best = max(scores)
    tol = TIE_TOLERANCE * max(1.0, abs(best))
    tied = [i for i, s in enumerate(scores) if s >= best - tol]
    return 1.0 / len(tied) if label in tied else 0.0


def group_accuracy(scored: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Average item scores within each group (the voices of one pair): {group: mean score}."""
    sums: dict[str, list[float]] = defaultdict(list)
    for group, score in scored:
        sums[group].append(score)
    return {g: float(np.mean(v)) for g, v in sums.items()}


def bootstrap_ci(values: Sequence[float], num_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over the groups: scipy.stats.bootstrap, seeded.

    One group has no spread to resample: its interval is its own value. No groups: (nan, nan).
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    res = stats.bootstrap((x,), np.mean, n_resamples=num_resamples, confidence_level=confidence,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def binomial_pvalue(successes: int, n: int, p0: float) -> float:
    """Exact two-sided binomial test (scipy.stats.binomtest): the probability, under Binomial(n, p0), of outcomes
    no likelier than the observed one. No trials: nan."""
    if n == 0:
        return float("nan")
    if not 0 <= successes <= n or not 0 < p0 < 1:
        raise ValueError(f"need 0 <= successes={successes} <= n={n} and 0 < p0={p0} < 1")
    return float(stats.binomtest(successes, n, p0).pvalue)


def summarize(group_scores: dict[str, float], categories: dict[str, str], chance: dict[str, float],
              num_resamples: int, confidence: float, seed: int) -> dict:
    """Accuracy over groups with its bootstrap CI, the binomial p-value against chance, and per-category accuracy.

    The p-value counts round(sum of group scores) successes out of the number of groups, against the mean chance
    level of the groups (1/number of candidates); a tie thus counts as half a success.
    """
    groups = sorted(group_scores)
    values = [group_scores[g] for g in groups]
    n = len(values)
    p0 = float(np.mean([chance[g] for g in groups])) if groups else float("nan")
    lo, hi = bootstrap_ci(values, num_resamples, confidence, seed)
    by_cat: dict[str, list[float]] = defaultdict(list)
    for g in groups:
        by_cat[categories[g]].append(group_scores[g])
    return {
        "accuracy": float(np.mean(values)) if n else float("nan"),
        "num_groups": n,
        "ci_low": lo,
        "ci_high": hi,
        "chance": p0,
        "p_value": binomial_pvalue(round(sum(values)), n, p0) if n else float("nan"),
        "by_category": {c: {"accuracy": float(np.mean(v)), "num_groups": len(v)} for c, v in sorted(by_cat.items())},
    }


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation: lowercase, drop punctuation and articles, squeeze whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, references: Iterable[str]) -> bool:
    """The normalised prediction equals one normalised reference."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(r) for r in references)


def contains_match(prediction: str, references: Iterable[str]) -> bool:
    """A normalised reference occurs, as whole words, in the normalised prediction (lenient match)."""
    pred = f" {normalize_answer(prediction)} "
    return any(ref and f" {ref} " in pred for ref in (normalize_answer(r) for r in references))
