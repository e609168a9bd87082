import numpy as np
import pytest
import torch

from koe.vocoder import MelSpec, UnitVocoder, griffin_lim, log_mel, units_to_audio


def _chirp(seconds: float = 1.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return (0.5 * torch.sin(2 * torch.pi * (200 + 300 * t) * t)).float()


def test_griffin_lim_recovers_the_mel_it_was_given():
    spec = MelSpec()
    mel = log_mel(_chirp(), spec)
    audio = griffin_lim(mel, spec, iterations=32)
    again = log_mel(audio * (0.5 / audio.abs().max()), spec)
    n = min(len(mel), len(again))
    # Compare shapes of the spectra (GL normalises loudness): correlation of log-mels over time and bins.
    a, b = mel[:n].flatten(), again[:n].flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert corr > 0.9


@pytest.mark.parametrize("frames", [1, 2, 3, 4])
def test_griffin_lim_speaks_fewer_frames_than_one_window(frames):
    """A one-unit answer or a first streaming chunk can be 1-4 mel frames, shorter than one STFT window (it used to
    fail inside torch.istft); the audio keeps the frames' own length."""
    spec = MelSpec()
    mel = log_mel(_chirp(), spec)[:frames]
    audio = griffin_lim(mel, spec, iterations=4)
    assert audio.shape == ((frames - 1) * spec.hop_length,) and torch.isfinite(audio).all()


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    vocoder = UnitVocoder(num_units=20, unit_frame_rate_hz=50.0, hidden_size=16, num_layers=2, kernel_size=3)
    units = torch.randint(0, 20, (1, 30))
    expanded = vocoder.frames_to_mel_rate(units)
    assert expanded.shape[1] == 60 and torch.equal(expanded[0, ::2], units[0])
    vocoder.save(tmp_path)
    loaded = UnitVocoder.load(tmp_path)
    assert torch.allclose(loaded(expanded), vocoder.eval()(expanded))


def test_units_to_audio_uses_durations():
    vocoder = UnitVocoder(num_units=5, unit_frame_rate_hz=100.0, hidden_size=8, num_layers=1, kernel_size=3).eval()
    audio = units_to_audio(vocoder, [1, 2, 3], durations=[10, 20, 30], iterations=2)
    assert audio.dtype == np.float32 and abs(len(audio) - 59 * 160) <= 160
    vocoder.mean_duration_frames = [4.0] * 5
    assert abs(len(units_to_audio(vocoder, [1, 2, 3], iterations=2)) - 11 * 160) <= 160
