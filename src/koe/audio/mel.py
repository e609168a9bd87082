"""Log-mel spectrograms and their inversion to audio with fast Griffin-Lim, in plain torch.

The mel settings (16 kHz, 25 ms window, 10 ms hop, 80 bins, Slaney scale) are fixed here because the vocoder's
targets and its inversion must agree; they are saved in the vocoder folder. It lives in koe.audio (it was
koe.vocoder.griffin_lim) because both koe.vocoder and koe's own mel codec in koe.units use it, and koe.units must not
import koe.vocoder (koe.vocoder reads unit shards: tests/core/test_layering.py forbids the cycle).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank


@dataclasses.dataclass(frozen=True)
class MelSpec:
    sample_rate_hz: int = 16_000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min_hz: float = 0.0
    f_max_hz: float = 8_000.0

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_length

    def filterbank(self) -> torch.Tensor:
        """[n_mels, n_fft // 2 + 1]."""
        fb = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=self.n_mels, min_frequency=self.f_min_hz,
            max_frequency=self.f_max_hz, sampling_rate=self.sample_rate_hz, norm="slaney", mel_scale="slaney",
        )
        return torch.from_numpy(np.ascontiguousarray(fb.T)).float()


def log_mel(wav: torch.Tensor, spec: MelSpec) -> torch.Tensor:
    """[samples] -> [frames, n_mels] natural-log mel magnitudes (floored at 1e-5)."""
    window = torch.hann_window(spec.n_fft, device=wav.device)
    stft = torch.stft(wav, spec.n_fft, spec.hop_length, window=window, return_complex=True, center=True)
    mel = spec.filterbank().to(wav.device) @ stft.abs()
    return torch.log(mel.clamp_min(1e-5)).T


def griffin_lim(log_mel_frames: torch.Tensor, spec: MelSpec, iterations: int = 48, momentum: float = 0.99,
                seed: int = 0) -> torch.Tensor:
    """[frames, n_mels] -> [samples] audio. Mel -> linear magnitudes by non-negative least squares (pseudo-inverse,
    clamped), then fast Griffin-Lim (Perraudin et al., 2013) from a seeded random phase."""
    fb = spec.filterbank().to(log_mel_frames.device)
    mel = log_mel_frames.exp().T  # [n_mels, frames]
    magnitude = (torch.linalg.pinv(fb) @ mel).clamp_min(0.0)
    length = (magnitude.shape[1] - 1) * spec.hop_length
    # A few frames are shorter than one STFT window (a one-unit answer, a first streaming chunk): pad with silent
    # frames so istft/stft have a window to work on, and cut the audio back to the frames' own length.
    min_frames = spec.n_fft // spec.hop_length + 2
    if magnitude.shape[1] < min_frames:
        magnitude = torch.nn.functional.pad(magnitude, (0, min_frames - magnitude.shape[1]))
    window = torch.hann_window(spec.n_fft, device=mel.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=gen)).to(mel.device)
    previous = torch.zeros_like(phase)
    padded = (magnitude.shape[1] - 1) * spec.hop_length
    for _ in range(iterations):
        audio = torch.istft(magnitude * phase, spec.n_fft, spec.hop_length, window=window, length=padded)
        rebuilt = torch.stft(audio, spec.n_fft, spec.hop_length, window=window, return_complex=True)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        phase = accelerated / accelerated.abs().clamp_min(1e-8)
    audio = torch.istft(magnitude * phase, spec.n_fft, spec.hop_length, window=window, length=padded)[:length]
    return audio / audio.abs().max().clamp_min(1e-4) * 0.9 if length else audio
