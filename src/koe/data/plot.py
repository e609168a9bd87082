"""token_stats.png: document lengths per kind and the modality make-up of each kind, to eyeball a build.

    plot_token_stats({"text": [12, 40], ...}, split_stats.tokens_by_kind, "out/data/token_stats.png")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from koe.data.shards import KINDS, MODALITIES

COLOURS = {"text": "tab:blue", "speech": "tab:orange", "marker": "tab:gray", "interleaved": "tab:green",
           "paired": "tab:purple"}


def plot_token_stats(lengths_by_kind: dict[str, list[int]], tokens_by_kind: dict[str, dict[str, int]],
                     path: str | Path, title: str = "train") -> Path:
    """Left: histogram of document lengths per kind (log y). Right: fraction of text/speech/marker tokens per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    every = [n for kind in KINDS for n in lengths_by_kind.get(kind, [])]
    bins = np.histogram_bin_edges(every, bins=40) if every else 40  # shared bins, so kinds compare bar for bar
    for kind in KINDS:
        lengths = lengths_by_kind.get(kind, [])
        if lengths:
            left.hist(lengths, bins=bins, alpha=0.5, label=f"{kind} ({len(lengths)} docs)", color=COLOURS[kind])
    left.set_xlabel("document length (tokens)")
    left.set_ylabel("documents")
    left.set_yscale("log")
    left.legend()
    left.set_title(f"{title}: document lengths")
    kinds = [k for k in KINDS if sum(tokens_by_kind.get(k, {}).values()) > 0]
    bottom = [0.0] * len(kinds)
    for modality in MODALITIES:
        fractions = [tokens_by_kind[k][modality] / sum(tokens_by_kind[k].values()) for k in kinds]
        right.bar(kinds, fractions, bottom=bottom, label=modality, color=COLOURS[modality])
        bottom = [b + f for b, f in zip(bottom, fractions, strict=True)]
    totals = [sum(tokens_by_kind[k].values()) for k in kinds]
    right.set_xticks(range(len(kinds)), [f"{k}\n{n:,} tok" for k, n in zip(kinds, totals, strict=True)])
    right.set_ylabel("fraction of tokens")
    right.legend()
    right.set_title(f"{title}: modality by kind")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
