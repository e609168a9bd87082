"""Speaker perturbation for disentangled training: Praat "Change gender" (pitch + formants), then a random EQ.

    rng = np.random.default_rng(0)
    y = perturb_speaker(wav, PerturbConfig(), rng)        # 16 kHz float32 in, same length out
    f0 = median_f0(y)                                     # Praat's pitch tracker, None when nothing is voiced

As in Komatsu et al.'s code (after NANSY / ContentVec): a voice whose median f0 is above `f0_threshold_hz` gets its
pitch median moved to `low_pitch_hz`, formants scaled by 1/formant_ratio and pitch range by 1/pitch_range_ratio; a
lower voice moves the other way. The EQ is a low shelf (60 Hz), 8 peaking bands and a high shelf (7.6 kHz) at
log-spaced centres, gains uniform in +-eq_gain_db, Q log-uniform in eq_q_range (RBJ cookbook biquads). Unlike their
causal IIR filtering, the EQ here applies the cascade's magnitude response with zero phase (in the FFT domain), so
the perturbed copy stays sample-aligned with the original and teacher and student frames match exactly.
"""

from __future__ import annotations

import numpy as np

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.ssl.config import PerturbConfig

EQ_CENTRES_HZ = np.exp(np.linspace(np.log(60.0), np.log(7600.0), 10))
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 65.0, 400.0


def median_f0(wav: np.ndarray, sr: int = TARGET_SAMPLE_RATE_HZ) -> float | None:
    """Median f0 (Hz) of the voiced frames by Praat's autocorrelation tracker; None when no frame is voiced."""
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(wav, dtype=np.float64), sampling_frequency=sr).to_pitch(
        pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else None


def change_gender(wav: np.ndarray, cfg: PerturbConfig, rng: np.random.Generator,
                  sr: int = TARGET_SAMPLE_RATE_HZ) -> np.ndarray:
    """Praat's Change gender (PSOLA), moving a high voice down and a low voice up; unvoiced input (or input Praat
    cannot process, e.g. shorter than its analysis window) comes back unchanged. Praat draws random numbers of its
    own, so its generator is seeded from `rng` first: the same rng state gives the same output."""
    import parselmouth

    f0 = median_f0(wav, sr)
    if f0 is None:
        return np.asarray(wav, dtype=np.float32).copy()
    if f0 > cfg.f0_threshold_hz:
        lo, hi, formant, new_f0, pitch_range = 100.0, 400.0, 1 / cfg.formant_ratio, cfg.low_pitch_hz, \
            1 / cfg.pitch_range_ratio
    else:
        lo, hi, formant, new_f0, pitch_range = 75.0, 250.0, cfg.formant_ratio, cfg.high_pitch_hz, \
            cfg.pitch_range_ratio
    sound = parselmouth.Sound(np.asarray(wav, dtype=np.float64), sampling_frequency=sr)
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({int(rng.integers(2**31))})")
    try:
        out = parselmouth.praat.call(sound, "Change gender", lo, hi, formant, new_f0, pitch_range, 1.0)
    except parselmouth.PraatError:
        return np.asarray(wav, dtype=np.float32).copy()
    y = out.values[0]
    return _fit_length(y, len(wav)).astype(np.float32)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _biquad(kind: str, gain_db: float, fc: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of an RBJ-cookbook low shelf, peaking or high shelf filter."""
    a_lin = 10 ** (gain_db / 40)
    w = 2 * np.pi * fc / sr
    cos, alpha = np.cos(w), np.sin(w) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a_lin, -2 * cos, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cos, 1 - alpha / a_lin]
    else:
        s = 1 if kind == "low" else -1  # the high shelf is the low shelf with cos(w) negated in the +-1 terms
        beta = 2 * np.sqrt(a_lin) * alpha
        b = [a_lin * ((a_lin + 1) - s * (a_lin - 1) * cos + beta),
             s * 2 * a_lin * ((a_lin - 1) - s * (a_lin + 1) * cos),
             a_lin * ((a_lin + 1) - s * (a_lin - 1) * cos - beta)]
        a = [(a_lin + 1) + s * (a_lin - 1) * cos + beta, -s * 2 * ((a_lin - 1) + s * (a_lin + 1) * cos),
             (a_lin + 1) + s * (a_lin - 1) * cos - beta]
    return np.asarray(b), np.asarray(a)


def eq_response(gains_db: np.ndarray, qs: np.ndarray, freqs_hz: np.ndarray, sr: int = TARGET_SAMPLE_RATE_HZ
                ) -> np.ndarray:
    """|H(f)| of the 10-band cascade (low shelf, 8 peaks, high shelf at EQ_CENTRES_HZ) at the given frequencies."""
    z = np.exp(-1j * 2 * np.pi * np.asarray(freqs_hz) / sr)
    h = np.ones(len(z), dtype=complex)
    kinds = ["low"] + ["peak"] * 8 + ["high"]
    for kind, g, fc, q in zip(kinds, gains_db, EQ_CENTRES_HZ, qs, strict=True):
        b, a = _biquad(kind, g, fc, q, sr)
        h *= (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return np.abs(h)


def random_eq(wav: np.ndarray, cfg: PerturbConfig, rng: np.random.Generator,
              sr: int = TARGET_SAMPLE_RATE_HZ) -> np.ndarray:
    """The waveform through a random 10-band EQ, zero phase (magnitude response applied to its spectrum)."""
    lo, hi = cfg.eq_q_range
    qs = lo * (hi / lo) ** rng.random(10)
    gains = rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db, 10)
    n = len(wav)
    size = 1 << int(np.ceil(np.log2(n + sr // 10)))  # 100 ms of zero padding keeps the circular wrap out of the signal
    spectrum = np.fft.rfft(wav, size)
    y = np.fft.irfft(spectrum * eq_response(gains, qs, np.fft.rfftfreq(size, 1 / sr), sr), size)[:n]
    return y.astype(np.float32)


def perturb_speaker(wav: np.ndarray, cfg: PerturbConfig, rng: np.random.Generator,
                    sr: int = TARGET_SAMPLE_RATE_HZ) -> np.ndarray:
    """Change gender, then random EQ; same length as the input, float32."""
    return random_eq(change_gender(wav, cfg, rng, sr), cfg, rng, sr)
