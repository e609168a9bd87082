"""Schedule shapes: WSD warms up, stays flat, decays over the last 10%; cosine decays smoothly; the frozen-text
warm-up gives the body a factor of 0 and then warms it up again."""

from __future__ import annotations

import itertools

import pytest

from koe.train.config import OptimConfig
from koe.training.schedule import group_factor, lr_factor


def test_wsd_shape():
    f = [lr_factor(s, 100, "wsd", warmup_steps=10, decay_fraction=0.1, min_ratio=0.05) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(x == 1.0 for x in f[10:90])
    assert all(a > b for a, b in itertools.pairwise(f[89:]))  # strictly decreasing in the last 10%
    assert f[99] == pytest.approx(0.05)


def test_cosine_shape():
    f = [lr_factor(s, 100, "cosine", warmup_steps=10, decay_fraction=0.1, min_ratio=0.0) for s in range(101)]
    assert f[9] == 1.0 and f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.5, abs=1e-9)
    assert all(a >= b for a, b in itertools.pairwise(f[10:])) and f[100] == pytest.approx(0.0)
    assert lr_factor(50, 100, "constant", 10, 0.1, 0.0) == 1.0


def test_frozen_groups_sit_out_then_warm_up_again():
    cfg = OptimConfig(warmup_steps=4, frozen_text_steps=6, schedule="constant")
    body = [group_factor(s, 100, cfg, frozen_steps=6) for s in range(12)]
    emb = [group_factor(s, 100, cfg, frozen_steps=0) for s in range(12)]
    assert body[:6] == [0.0] * 6 and body[6:10] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert emb[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and emb[5] == 1.0
