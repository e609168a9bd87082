"""koe.ssl.perturb: Praat moves the pitch (and keeps the length), the EQ is what its parameters say, seeds repeat."""

from __future__ import annotations

import numpy as np
import pytest
from ssl_signals import SR, harmonic_tone

from koe.ssl.config import PerturbConfig
from koe.ssl.perturb import EQ_CENTRES_HZ, change_gender, eq_response, median_f0, perturb_speaker, random_eq


@pytest.mark.parametrize(("f0_hz", "want_hz"), [(120.0, 300.0), (220.0, 100.0)])
def test_change_gender_moves_pitch_of_a_tone(f0_hz, want_hz):
    """A low voice goes up to high_pitch_hz, a high one down to low_pitch_hz; length is kept."""
    contour = f0_hz * (1 + 0.05 * np.sin(2 * np.pi * 2 * np.arange(SR) / SR))  # a little intonation
    wav = harmonic_tone(contour, 1.0)
    assert median_f0(wav) == pytest.approx(f0_hz, rel=0.03)
    out = change_gender(wav, PerturbConfig(), np.random.default_rng(0))
    assert len(out) == len(wav) and out.dtype == np.float32
    assert median_f0(out) == pytest.approx(want_hz, rel=0.05)


def test_perturb_speaker_moves_pitch_and_colours_spectrum():
    wav = harmonic_tone(130.0, 1.0)
    out = perturb_speaker(wav, PerturbConfig(), np.random.default_rng(0))
    assert len(out) == len(wav)
    assert median_f0(out) == pytest.approx(300.0, rel=0.05)
    again = perturb_speaker(wav, PerturbConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)  # seeded: the same rng state gives the same copy
    other = perturb_speaker(wav, PerturbConfig(), np.random.default_rng(1))
    assert not np.allclose(out, other)


def test_unvoiced_input_passes_change_gender_unchanged():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    np.testing.assert_array_equal(change_gender(noise, PerturbConfig(), np.random.default_rng(0)), noise)


def test_eq_response_matches_band_gains():
    """A single peaking band of +g dB at its centre gives +g dB; a flat EQ is the identity."""
    gains = np.zeros(10)
    gains[4] = 9.0
    resp = eq_response(gains, np.full(10, 3.0), np.array([EQ_CENTRES_HZ[4], 20.0, 7999.0]))
    assert 20 * np.log10(resp[0]) == pytest.approx(9.0, abs=0.01)
    assert 20 * np.log10(resp[1:]) == pytest.approx([0.0, 0.0], abs=0.5)
    wav = harmonic_tone(150.0, 0.5)
    flat = random_eq(wav, PerturbConfig(eq_gain_db=0.0), np.random.default_rng(0))
    np.testing.assert_allclose(flat, wav, atol=1e-5)


def test_random_eq_is_zero_phase():
    """The EQ keeps the signal in place (no filter delay), so student and teacher frames stay aligned."""
    click = np.zeros(4000, dtype=np.float32)
    click[2000] = 1.0
    out = random_eq(click, PerturbConfig(), np.random.default_rng(3))
    assert int(np.argmax(np.abs(out))) == 2000
    np.testing.assert_allclose(out[2000 - 500 : 2000], out[2001 : 2501][::-1], atol=1e-6)  # symmetric impulse response
