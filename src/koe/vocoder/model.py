"""The baseline unit vocoder: embeddings of frame-level units -> residual 1-D convolutions -> log-mel frames.

Units arrive at the tokenizer's frame rate (e.g. 50 Hz for HuBERT, 100 Hz for MFCC); each unit frame is repeated to
the mel frame rate (100 Hz) before the convolutions, so the model sees one input per output frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from koe.audio.mel import MelSpec, griffin_lim
from koe.vocoder.requests import check_request


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(nn.functional.gelu(self.conv(self.norm(x))))


class UnitVocoder(nn.Module):
    """The baseline (kind unit-mel-griffin-lim); `UnitVocoder.load` opens a vocoder folder of any kind."""

    def __init__(self, num_units: int, unit_frame_rate_hz: float, hidden_size: int = 256, num_layers: int = 4,
                 kernel_size: int = 5, mel: MelSpec | None = None):
        super().__init__()
        self.mel = mel or MelSpec()
        self.num_units = num_units
        self.mean_duration_frames: list[float] | None = None
        self.unit_frame_rate_hz = unit_frame_rate_hz
        self.source = "<unsaved>"
        self.hparams = {"num_units": num_units, "unit_frame_rate_hz": unit_frame_rate_hz, "hidden_size": hidden_size,
                        "num_layers": num_layers, "kernel_size": kernel_size}
        self.embed = nn.Embedding(num_units, hidden_size)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_size, kernel_size) for _ in range(num_layers)))
        self.out = nn.Conv1d(hidden_size, self.mel.n_mels, 1)

    def frames_to_mel_rate(self, frame_units: torch.Tensor) -> torch.Tensor:
        """[batch, unit_frames] -> [batch, mel_frames] by nearest-frame repetition."""
        ratio = self.mel.frame_rate_hz / self.unit_frame_rate_hz
        n_out = round(frame_units.shape[1] * ratio)
        index = (torch.arange(n_out, device=frame_units.device) / ratio).long().clamp_max(frame_units.shape[1] - 1)
        return frame_units[:, index]

    def forward(self, mel_rate_units: torch.Tensor) -> torch.Tensor:
        """[batch, mel_frames] unit ids -> [batch, mel_frames, n_mels] log-mel."""
        x = self.embed(mel_rate_units).transpose(1, 2)
        return self.out(self.blocks(x)).transpose(1, 2)

    @property
    def sample_rate_hz(self) -> int:
        return self.mel.sample_rate_hz

    @torch.no_grad()
    def synthesize(self, units, durations=None, speaker: str | None = None, iterations: int = 48):
        """Dedup units (+ durations in unit frames; mean training durations when None) -> float32 numpy audio.

        One voice: `speaker` is accepted so every vocoder kind takes the same call, and ignored.
        """
        import numpy as np

        units, durations = check_request(units, durations, self.num_units, self.source)
        if durations is None:
            means = np.asarray(self.mean_duration_frames or [1.0] * self.num_units)
            durations = np.maximum(1, np.rint(means[units])).astype(np.int64)
        frames = torch.from_numpy(np.repeat(units, durations))[None].to(self.embed.weight.device)
        mel = self(self.frames_to_mel_rate(frames))[0].cpu()
        return griffin_lim(mel, self.mel, iterations=iterations).numpy().astype(np.float32)

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"schema_version": 1, "kind": "unit-mel-griffin-lim", **self.hparams, "mel": vars(self.mel)}
        (out / "vocoder.json").write_text(json.dumps(meta, indent=2))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(out / "vocoder.safetensors"))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu"):
        """Any vocoder folder: this class for the baseline, the registered class for other kinds."""
        from koe.vocoder.registry import load_vocoder, vocoder_kind

        path = Path(path)
        if vocoder_kind(path) != "unit-mel-griffin-lim":
            return load_vocoder(path, device)
        meta = json.loads((path / "vocoder.json").read_text())
        hp = {k: meta[k] for k in ("num_units", "unit_frame_rate_hz", "hidden_size", "num_layers", "kernel_size")}
        model = cls(**hp, mel=MelSpec(**meta["mel"]))
        model.load_state_dict(load_file(str(path / "vocoder.safetensors"), device=device))
        model.mean_duration_frames = meta.get("mean_duration_frames")
        model.source = str(path)
        return model.to(device).eval()
