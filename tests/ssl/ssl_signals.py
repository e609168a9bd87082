"""Speech-like test signals for koe.ssl tests (a uniquely named module: `from conftest import` clashes with the
other test folders' conftest modules when pytest collects only some of them)."""

from __future__ import annotations

import numpy as np

SR = 16000


def harmonic_tone(f0_hz: float | np.ndarray, seconds: float, seed: int = 0, formant_hz: float | None = None
                  ) -> np.ndarray:
    """A voiced, speech-like signal: 12 harmonics of f0 (a constant or a per-sample contour), weighted by a
    Gaussian "formant" around formant_hz when given (else 1/k), plus a little noise."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    ks = range(1, 13)
    amps = [1 / k if formant_hz is None else np.exp(-(((k * f0.mean()) - formant_hz) / 400) ** 2) + 0.05 for k in ks]
    wav = sum(a * np.sin(k * phase) for a, k in zip(amps, ks, strict=True)) * 0.2
    return (wav + 0.005 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
