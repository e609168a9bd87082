"""Mix document pools by token budget: each kind gets `weight * budget` tokens, drawn in a seeded order.

    chosen, info = mix_pools({"text": docs_t, "speech": docs_s}, {"text": 0.4, "speech": 0.6}, rng, fill="downsample")

Weights are by tokens rather than documents because kinds differ wildly in length (a speech-only document is ~10x
its text), and SlamKit's weights are what the model sees per step. `downsample` picks the largest budget that repeats
nothing (the scarcest kind relative to its weight is used whole); `upsample` the smallest that uses every document;
an explicit budget repeats documents as needed. Repeats are counted, never hidden.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from koe.data.documents import Doc
from koe.stage import KoeInputError


def mix_pools(
    pools: dict[str, list[Doc]],
    weights: dict[str, float],
    rng: np.random.Generator,
    fill: Literal["downsample", "upsample"] = "downsample",
    budget_tokens: int = 0,
) -> tuple[list[tuple[str, Doc]], dict]:
    """Draw documents from each weighted pool; returns (kind, doc) pairs in a seeded shuffled order and stats.

    Raises KoeInputError when a kind has a positive weight but no documents: the mixture could not be honoured.
    """
    available = {k: sum(len(d) for d in pools.get(k, [])) for k in weights}
    empty = [k for k, n in available.items() if n == 0]
    if empty:
        raise KoeInputError(f"mixture: no {'/'.join(empty)} documents, but their weight is > 0 "
                            f"(add the inputs or set mixture.{empty[0]}=0)")
    ratios = [available[k] / w for k, w in weights.items()]
    total = budget_tokens or (min(ratios) if fill == "downsample" else max(ratios))
    repeat = bool(budget_tokens) or fill == "upsample"
    chosen: list[tuple[str, Doc]] = []
    info: dict = {"budget_tokens": round(total), "target_tokens": {}, "repeated_documents": {}}
    for kind, w in weights.items():
        target = w * total
        docs = pools[kind]
        taken = tokens = 0
        while tokens < target:
            order = rng.permutation(len(docs))
            for i in order:
                if tokens >= target:
                    break
                chosen.append((kind, docs[i]))
                tokens += len(docs[i])
                taken += 1
            if not repeat:
                break
        info["target_tokens"][kind] = round(target)
        info["repeated_documents"][kind] = max(0, taken - len(docs))
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order], info


def realised_weights(tokens_by_kind: dict[str, int]) -> dict[str, float]:
    total = sum(tokens_by_kind.values()) or 1
    return {k: round(n / total, 4) for k, n in tokens_by_kind.items()}
