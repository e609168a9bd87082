"""The neural unit vocoder: deduplicated units + speaker -> durations -> HiFi-GAN generator -> 16 kHz waveform.

    vocoder = UnitVocoder.load("runs/voc")               # any kind; this class when vocoder.json says unit-hifigan
    audio = units_to_audio(vocoder, units, speaker="en-us")  # durations from the duration predictor

Speech resynthesis from units (Polyak et al., 2021): unit embeddings plus a speaker embedding, repeated to the mel
frame rate, feed a HiFi-GAN generator (Kong et al., 2020: transposed-conv upsampling with multi-receptive-field
residual blocks). Every layer is a convolution with no normalisation across time, so the output at a sample depends
only on a bounded window of input frames: that is what makes chunked streaming exact (koe.vocoder.streaming).
A small duration predictor (two convolutions, log-duration regression) gives deduplicated units their length.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from koe.audio.mel import MelSpec
from koe.vocoder.requests import check_request, speaker_index, to_mel_rate

KIND = "unit-hifigan"
LRELU = 0.1


@dataclasses.dataclass
class GeneratorShape:
    """Architecture numbers saved in vocoder.json (a subset of HifiGanConfig)."""

    num_units: int
    num_speakers: int
    unit_embed_dim: int = 128
    prenet_layers: int = 2
    upsample_initial_channel: int = 64
    upsample_rates: list[int] = dataclasses.field(default_factory=lambda: [5, 4, 4, 2])
    resblock_kernel_sizes: list[int] = dataclasses.field(default_factory=lambda: [3, 7, 11])
    resblock_dilations: list[int] = dataclasses.field(default_factory=lambda: [1, 3, 5])


class MRFBlock(nn.Module):
    """HiFi-GAN ResBlock1: per dilation, lrelu -> dilated conv -> lrelu -> conv, added back to the input."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.dilated = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d,
                                                           padding=d * (kernel - 1) // 2)) for d in dilations)
        self.plain = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2))
                                   for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.dilated, self.plain, strict=True):
            x = x + c2(nn.functional.leaky_relu(c1(nn.functional.leaky_relu(x, LRELU)), LRELU))
        return x


class Generator(nn.Module):
    """[batch, mel_frames] unit ids + [batch] speaker rows -> [batch, mel_frames * hop] waveform in [-1, 1]."""

    def __init__(self, shape: GeneratorShape):
        super().__init__()
        e, c = shape.unit_embed_dim, shape.upsample_initial_channel
        self.units = nn.Embedding(shape.num_units, e)
        self.speakers = nn.Embedding(shape.num_speakers, e)
        self.prenet = nn.ModuleList(nn.Conv1d(e, e, 5, padding=2) for _ in range(shape.prenet_layers))
        self.conv_pre = weight_norm(nn.Conv1d(e, c, 7, padding=3))
        self.ups, self.mrfs = nn.ModuleList(), nn.ModuleList()
        for i, rate in enumerate(shape.upsample_rates):
            c_in, c_out = c // 2 ** i, c // 2 ** (i + 1)
            k = 2 * rate + rate % 2  # even (k - rate) keeps the output exactly `rate` times longer
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, rate, padding=(k - rate) // 2)))
            self.mrfs.append(nn.ModuleList(MRFBlock(c_out, k_r, shape.resblock_dilations)
                                           for k_r in shape.resblock_kernel_sizes))
        self.conv_post = weight_norm(nn.Conv1d(c // 2 ** len(shape.upsample_rates), 1, 7, padding=3))

    def forward(self, units: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        x = (self.units(units) + self.speakers(speakers)[:, None]).transpose(1, 2)
        for conv in self.prenet:
            x = x + conv(nn.functional.leaky_relu(x, LRELU))
        x = self.conv_pre(x)
        for up, mrf in zip(self.ups, self.mrfs, strict=True):
            x = up(nn.functional.leaky_relu(x, LRELU))
            x = sum(block(x) for block in mrf) / len(mrf)
        return torch.tanh(self.conv_post(nn.functional.leaky_relu(x))).squeeze(1)


class DurationPredictor(nn.Module):
    """[batch, units] dedup ids + [batch] speakers -> [batch, units] log(1 + frames) (FastSpeech-style)."""

    def __init__(self, num_units: int, num_speakers: int, dim: int = 128):
        super().__init__()
        self.units = nn.Embedding(num_units, dim)
        self.speakers = nn.Embedding(num_speakers, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, 3, padding=1) for _ in range(2))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.out = nn.Linear(dim, 1)

    def forward(self, units: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        x = self.units(units) + self.speakers(speakers)[:, None]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(torch.relu(conv(x.transpose(1, 2)).transpose(1, 2)))
        return self.out(x).squeeze(-1)


class HifiGanVocoder(nn.Module):
    """Generator + duration predictor + the speaker table and unit frame rate they were trained with."""

    kind = KIND

    def __init__(self, shape: GeneratorShape, speakers: list[str], unit_frame_rate_hz: float,
                 mel: MelSpec | None = None):
        super().__init__()
        if len(speakers) != shape.num_speakers:
            raise ValueError(f"{len(speakers)} speaker names for num_speakers={shape.num_speakers}")
        self.shape, self.speakers, self.unit_frame_rate_hz = shape, list(speakers), unit_frame_rate_hz
        self.mel = mel or MelSpec()
        self.num_units = shape.num_units
        self.generator = Generator(shape)
        self.durations = DurationPredictor(shape.num_units, shape.num_speakers, shape.unit_embed_dim)
        self.source = "<unsaved>"

    @property
    def sample_rate_hz(self) -> int:
        return self.mel.sample_rate_hz

    def mel_rate_units(self, units: np.ndarray, durations: np.ndarray) -> np.ndarray:
        """Dedup units + durations (unit frames) -> one unit id per mel frame."""
        return to_mel_rate(np.repeat(units, durations), self.unit_frame_rate_hz, self.mel.frame_rate_hz)

    @torch.no_grad()
    def predict_durations(self, units: np.ndarray, speaker: int) -> np.ndarray:
        device = next(self.parameters()).device
        log_d = self.durations(torch.from_numpy(units)[None].to(device), torch.tensor([speaker], device=device))
        return np.maximum(1, np.rint(np.expm1(log_d[0].float().cpu().numpy()))).astype(np.int64)

    def prepare(self, units, durations=None, speaker: str | None = None) -> tuple[np.ndarray, int]:
        """Checked request -> (mel-rate unit ids, speaker row); KoeInputError for bad units/durations/speaker."""
        units, durations = check_request(units, durations, self.num_units, self.source)
        row = speaker_index(speaker, self.speakers, self.source)
        if durations is None:
            durations = self.predict_durations(units, row)
        return self.mel_rate_units(units, durations), row

    @torch.no_grad()
    def synthesize(self, units, durations=None, speaker: str | None = None) -> np.ndarray:
        """Dedup units (+ durations in unit frames; predicted when None) -> float32 audio at sample_rate_hz."""
        frames, row = self.prepare(units, durations, speaker)
        device = next(self.parameters()).device
        audio = self.generator(torch.from_numpy(frames)[None].to(device), torch.tensor([row], device=device))
        return audio[0].float().cpu().numpy()

    def save(self, out_dir: str | Path, extra: dict | None = None) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"schema_version": 1, "kind": KIND, "shape": dataclasses.asdict(self.shape), "speakers": self.speakers,
                "unit_frame_rate_hz": self.unit_frame_rate_hz, "mel": vars(self.mel), **(extra or {})}
        (out / "vocoder.json").write_text(json.dumps(meta, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(out / "vocoder.safetensors"))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> HifiGanVocoder:
        path = Path(path)
        meta = json.loads((path / "vocoder.json").read_text())
        model = cls(GeneratorShape(**meta["shape"]), meta["speakers"], meta["unit_frame_rate_hz"],
                    MelSpec(**meta["mel"]))
        model.load_state_dict(load_file(str(path / "vocoder.safetensors"), device="cpu"))
        model.source = str(path)
        return model.to(device).eval()


def batch_log_mel(wav: torch.Tensor, spec: MelSpec, filterbank: torch.Tensor) -> torch.Tensor:
    """[batch, samples] -> [batch, n_mels, frames] natural-log mel (the 45x L1 target; fp32 whatever the input)."""
    window = torch.hann_window(spec.n_fft, device=wav.device)
    stft = torch.stft(wav.float(), spec.n_fft, spec.hop_length, window=window, return_complex=True, center=True)
    return torch.log((filterbank @ stft.abs()).clamp_min(1e-5))
