"""koe.ssl.targets: 100 Hz labels land on the right 50 Hz frames, span masks follow HuBERT's recipe."""

from __future__ import annotations

import numpy as np
import pytest

from koe.ssl.encoder import FrameGeometry
from koe.ssl.targets import align_labels, label_grid, span_mask
from koe.stage import KoeInputError
from koe.units.features import FeatureSpec

HUBERT = FrameGeometry(stride=320, receptive=400)


def test_frame_geometry_of_hubert_config():
    from transformers import HubertConfig

    geometry = FrameGeometry.of(HubertConfig())
    assert geometry == HUBERT
    assert geometry.num_frames(16000) == 49 and geometry.num_frames(399) == 0
    assert geometry.centre(0) == 199.5


def test_mfcc_labels_map_to_the_nearest_centre():
    """HuBERT frame i (centre 320 i + 199.5) takes MFCC frame 2 i + 1 (centre 160 (2 i + 1)); a crop offset moves it."""
    grid = label_grid(FeatureSpec(backend="mfcc", frame_rate_hz=100.0, dim=39, params={"hop": 160}))
    labels = np.arange(101)  # label j = index of the MFCC frame
    np.testing.assert_array_equal(align_labels(labels, grid, HUBERT, 0, 49), 2 * np.arange(49) + 1)
    np.testing.assert_array_equal(align_labels(labels, grid, HUBERT, 3200, 10), 2 * np.arange(10) + 21)
    assert align_labels(labels, grid, HUBERT, 16000, 5)[-1] == 100  # clipped at the last label frame


def test_hf_labels_map_one_to_one():
    grid = label_grid(FeatureSpec(backend="hf", frame_rate_hz=50.0, dim=8, source="x", layer=3,
                                  params={"stride": 320, "receptive_field": 400, "model_type": "hubert"}))
    np.testing.assert_array_equal(align_labels(np.arange(49), grid, HUBERT, 0, 49), np.arange(49))


def test_whisper_tokenizer_is_refused():
    with pytest.raises(KoeInputError, match="no uniform frame grid"):
        label_grid(FeatureSpec(backend="hf", frame_rate_hz=50.0, dim=8, params={"model_type": "whisper"}))


def test_span_mask_follows_hubert():
    rng = np.random.default_rng(0)
    mask = span_mask(rng, 64, 500, 0.08, 10)
    assert mask.shape == (64, 500) and mask.dtype == bool
    assert 0.50 < mask.mean() < 0.60  # 1 - (1 - 0.08) ** 10 = 0.57 with overlaps
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], mask[0].astype(int), [0]]))))[::2]
    assert runs.min() >= 10  # every masked run is at least one whole span
    np.testing.assert_array_equal(span_mask(np.random.default_rng(5), 2, 30, 0.08, 10),
                                  span_mask(np.random.default_rng(5), 2, 30, 0.08, 10))
    short = span_mask(rng, 3, 4, 0.08, 10)  # shorter than a span: one span covering everything
    assert short.all()
