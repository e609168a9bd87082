from __future__ import annotations

import torch

from koe.echox.streaming import SegmentCutter, cut_points, trigger_scores


def test_trigger_score_is_cosine_with_period_row():
    period = torch.tensor([1.0, 0.0])
    hidden = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]])
    assert torch.allclose(trigger_scores(hidden, period), torch.tensor([1.0, 0.0, -1.0, 2 ** -0.5]))


def test_high_peak_cuts_after_twenty_tokens_five_late():
    scores = [0.0] * 40
    scores[10] = 0.9  # too early: only 11 tokens since the start
    scores[25] = 0.5  # local max above 0.1, 26 tokens in
    cutter = SegmentCutter()
    decided = {t: c for t, s in enumerate(scores) if (c := cutter.push(s)) is not None}
    assert decided == {30: 25}  # decided at token 30 = 5 tokens late


def test_low_scores_cut_only_after_fifty_tokens_at_a_local_max():
    scores = [0.05 * ((t % 7) == 3) for t in range(120)]  # small peaks every 7 tokens, never above 0.1
    cuts = cut_points(scores)
    assert cuts and all(s == 0.05 for s in (scores[c] for c in cuts))
    gaps = [b - a for a, b in zip([-1, *cuts], cuts, strict=False)]
    assert all(g >= 50 for g in gaps)
    assert cuts[0] == 52  # first peak at or after 50 tokens since -1 is t = 52 (52 % 7 == 3)


def test_no_cut_when_not_a_local_maximum():
    scores = [0.2 + 0.01 * t for t in range(60)]  # rising: the candidate always has a larger later score
    assert cut_points(scores) == []


def test_cut_counts_from_the_last_cut():
    scores = [0.0] * 80
    scores[21] = scores[35] = scores[62] = 0.5
    assert cut_points(scores) == [21, 62]  # 35 is only 14 after 21; 62 is 41 after 21 (>= 20)
