"""EchoX's streaming trigger: where to cut the text being generated so its speech can start early.

    scores = trigger_scores(hidden, lm_head_weight[period_id])          # s_t = cos(h_t, lm_head["."])
    cutter = SegmentCutter()
    for t, s in enumerate(scores): cut = cutter.push(s)                   # a cut position, or None

Rule (FIELD.md "EchoX"): a cut is decided LAG = 5 tokens after the candidate position c, when c is a local maximum of
s over [c - 5, c + 5] and either >= 50 tokens have passed since the last cut, or s_c > 0.1 and >= 20 tokens have.
The segment is tokens (last_cut, c]; the speech of a segment is decoded and vocoded while the next one is generated
(`koe.echox.pipeline.stream_answer`).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

LAG = 5
MAX_GAP = 50
MIN_GAP = 20
THRESHOLD = 0.1


def trigger_scores(hidden: torch.Tensor, period_row: torch.Tensor) -> torch.Tensor:
    """s_t = cos(h_t, lm_head["."]) for hidden [T, dim] and the lm_head row of the period token [dim]."""
    return F.cosine_similarity(hidden.float(), period_row.float()[None, :], dim=-1)


@dataclasses.dataclass
class SegmentCutter:
    """Feed s_t one token at a time; `push` returns the index of a cut (last token of a segment) or None."""

    lag: int = LAG
    max_gap: int = MAX_GAP
    min_gap: int = MIN_GAP
    threshold: float = THRESHOLD
    scores: list[float] = dataclasses.field(default_factory=list)
    last_cut: int = -1

    def push(self, score: float) -> int | None:
        self.scores.append(float(score))
        c = len(self.scores) - 1 - self.lag
        if c < 0:
            return None
        window = self.scores[max(0, c - self.lag): c + self.lag + 1]
        if self.scores[c] < max(window):
            return None
        gap = c - self.last_cut
        if gap >= self.max_gap or (self.scores[c] > self.threshold and gap >= self.min_gap):
            self.last_cut = c
            return c
        return None


def cut_points(scores: list[float], **rule) -> list[int]:
    """Every cut the rule makes over a whole score sequence (for tests and offline analysis)."""
    cutter = SegmentCutter(**rule)
    return [c for s in scores if (c := cutter.push(s)) is not None]
