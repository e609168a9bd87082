"""Units to audio: a baseline units-to-log-mel regressor inverted with Griffin-Lim (see koe.vocoder.train)."""

from koe.vocoder.griffin_lim import MelSpec, griffin_lim, log_mel
from koe.vocoder.model import UnitVocoder

__all__ = ["MelSpec", "UnitVocoder", "griffin_lim", "log_mel", "units_to_audio"]


def units_to_audio(vocoder: UnitVocoder, units, durations=None, iterations: int = 48):
    """Dedup units (+ optional durations in unit frames) -> float32 numpy audio at the mel sample rate.

    Without durations each unit gets its mean training duration (saved in vocoder.json by `koe vocoder train`).
    """
    import numpy as np
    import torch

    units = np.asarray(units, dtype=np.int64)
    if durations is None:
        means = np.asarray(getattr(vocoder, "mean_duration_frames", None) or [1.0] * vocoder.num_units)
        durations = np.maximum(1, np.rint(means[units])).astype(np.int64)
    frames = torch.from_numpy(np.repeat(units, durations))[None]
    with torch.no_grad():
        mel = vocoder(vocoder.frames_to_mel_rate(frames))[0]
    return griffin_lim(mel, vocoder.mel, iterations=iterations).numpy().astype(np.float32)
