"""Coarse-to-fine: phonetic units + speaker -> codec tokens of every RVQ level -> the codec's decoder -> audio.

    vocoder = UnitVocoder.load("runs/c2f")              # vocoder.json kind unit-codec-c2f: this class
    audio = units_to_audio(vocoder, units, durations=None, speaker="en-us")
    codes = vocoder.codes(units, durations, speaker="en-us")    # int64 [levels, frames] for the codec

The AudioLM / VALL-E path (FIELD.md "Coarse-to-fine"): text -> phonetic (semantic) units -> acoustic tokens ->
waveform. Here the acoustic model is non-autoregressive over time and coarse-to-fine over levels (VALL-E's NAR
stage): a dilated conv trunk reads the phonetic units (repeated to the codec frame rate by their durations) plus a
speaker embedding; level l is predicted by its own refinement block and softmax head from the trunk plus the
embeddings of levels 0..l-1 of the same frame (teacher-forced in training, its own greedy choices at synthesis).
Each level therefore sees the coarser ones, which is what RVQ's residual structure asks for. Durations of dedup units
come from the same FastSpeech-style predictor as hifigan's. The codec (a CodecTokenizer folder, copied into the
vocoder folder at training) turns the codes into audio, so any codec family works.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from koe.audio.mel import MelSpec
from koe.vocoder.hifigan import DurationPredictor
from koe.vocoder.requests import check_request, speaker_index, to_mel_rate

KIND = "unit-codec-c2f"
CODEC_DIR = "codec"


@dataclasses.dataclass
class C2FShape:
    """Architecture numbers saved in vocoder.json."""

    num_units: int
    num_speakers: int
    levels: int
    codebook_size: int
    hidden_size: int = 192
    num_layers: int = 4  # trunk: dilated residual convs, dilations 1, 2, 4, 8, ...
    kernel_size: int = 5


class _Block(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        y = self.conv(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.proj(nn.functional.gelu(y))


class CoarseToFine(nn.Module):
    """[B, T] code-rate unit ids + [B] speakers (+ teacher codes [L, B, T]) -> logits [L, B, T, K]."""

    def __init__(self, shape: C2FShape):
        super().__init__()
        h = shape.hidden_size
        self.shape = shape
        self.units = nn.Embedding(shape.num_units, h)
        self.speakers = nn.Embedding(shape.num_speakers, h)
        self.trunk = nn.Sequential(*(_Block(h, shape.kernel_size, 2 ** (i % 4)) for i in range(shape.num_layers)))
        self.code_embed = nn.ModuleList(nn.Embedding(shape.codebook_size, h) for _ in range(shape.levels - 1))
        self.refine = nn.ModuleList(_Block(h, 3, 1) for _ in range(shape.levels))
        self.heads = nn.ModuleList(nn.Linear(h, shape.codebook_size) for _ in range(shape.levels))

    def encode(self, units: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.units(units) + self.speakers(speakers)[:, None])

    def level_logits(self, hidden: torch.Tensor, coarser: torch.Tensor, level: int) -> torch.Tensor:
        """Logits of `level` from the trunk output and the codes of levels < level ([level, B, T])."""
        x = hidden + sum((self.code_embed[j](coarser[j]) for j in range(level)), torch.zeros_like(hidden))
        return self.heads[level](self.refine[level](x))

    def forward(self, units: torch.Tensor, speakers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(units, speakers)
        return torch.stack([self.level_logits(hidden, codes, level) for level in range(self.shape.levels)])

    @torch.no_grad()
    def generate(self, units: torch.Tensor, speakers: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes [L, B, T], level by level (greedy, or sampled at `temperature`)."""
        hidden = self.encode(units, speakers)
        codes = torch.zeros(self.shape.levels, *units.shape, dtype=torch.long, device=units.device)
        for level in range(self.shape.levels):
            logits = self.level_logits(hidden, codes, level)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, -1)
                codes[level] = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1,
                                                 generator=generator).view(units.shape)
            else:
                codes[level] = logits.argmax(-1)
        return codes


class CoarseToFineVocoder(nn.Module):
    """CoarseToFine + duration predictor + speaker table + the codec that decodes the codes (kind unit-codec-c2f)."""

    kind = KIND

    def __init__(self, shape: C2FShape, speakers: list[str], unit_frame_rate_hz: float, code_frame_rate_hz: float):
        super().__init__()
        if len(speakers) != shape.num_speakers:
            raise ValueError(f"{len(speakers)} speaker names for num_speakers={shape.num_speakers}")
        self.shape, self.speakers = shape, list(speakers)
        self.unit_frame_rate_hz, self.code_frame_rate_hz = unit_frame_rate_hz, code_frame_rate_hz
        self.num_units = shape.num_units
        self.mel = MelSpec()
        self.model = CoarseToFine(shape)
        self.durations = DurationPredictor(shape.num_units, shape.num_speakers, 128)
        self.codec = None  # a koe.units.codec.CodecTokenizer, attached by load() or the trainer
        self.source = "<unsaved>"

    @property
    def sample_rate_hz(self) -> int:
        return self.mel.sample_rate_hz

    def code_rate_units(self, units: np.ndarray, durations: np.ndarray) -> np.ndarray:
        """Dedup units + durations (unit frames) -> one unit id per codec frame (nearest-frame resampling)."""
        return to_mel_rate(np.repeat(units, durations), self.unit_frame_rate_hz, self.code_frame_rate_hz)

    @torch.no_grad()
    def codes(self, units, durations=None, speaker: str | None = None, temperature: float = 0.0) -> np.ndarray:
        """Checked request -> int64 codec codes [levels, frames]; KoeInputError for bad units/durations/speaker."""
        units, durations = check_request(units, durations, self.num_units, self.source)
        row = speaker_index(speaker, self.speakers, self.source)
        device = next(self.parameters()).device
        if durations is None:
            log_d = self.durations(torch.from_numpy(units)[None].to(device), torch.tensor([row], device=device))
            durations = np.maximum(1, np.rint(np.expm1(log_d[0].float().cpu().numpy()))).astype(np.int64)
        frames = self.code_rate_units(units, durations)
        if len(frames) == 0:  # shorter than one codec frame
            frames = units[:1]
        codes = self.model.generate(torch.from_numpy(frames)[None].to(device), torch.tensor([row], device=device),
                                    temperature)
        return codes[:, 0].cpu().numpy()

    @torch.no_grad()
    def synthesize(self, units, durations=None, speaker: str | None = None) -> np.ndarray:
        """Dedup units (+ durations in unit frames; predicted when None) -> float32 16 kHz audio via the codec."""
        if self.codec is None:
            raise RuntimeError("no codec attached: load the vocoder with CoarseToFineVocoder.load(dir)")
        return self.codec.decode(self.codes(units, durations, speaker), self.sample_rate_hz)

    def save(self, out_dir: str | Path, codec_dir: str | Path, extra: dict | None = None) -> None:
        """vocoder.json + vocoder.safetensors, and a copy of the codec folder (so the vocoder is self-contained)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if Path(codec_dir).resolve() != (out / CODEC_DIR).resolve():
            shutil.copytree(codec_dir, out / CODEC_DIR, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("checkpoints", "*.wav", "*.png", "metrics.jsonl"))
        meta = {"schema_version": 1, "kind": KIND, "shape": dataclasses.asdict(self.shape), "speakers": self.speakers,
                "unit_frame_rate_hz": self.unit_frame_rate_hz, "code_frame_rate_hz": self.code_frame_rate_hz,
                "codec": CODEC_DIR, "codec_source": str(codec_dir), **(extra or {})}
        (out / "vocoder.json").write_text(json.dumps(meta, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(out / "vocoder.safetensors"))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> CoarseToFineVocoder:
        from koe.units.codec import CodecTokenizer

        path = Path(path)
        meta = json.loads((path / "vocoder.json").read_text())
        model = cls(C2FShape(**meta["shape"]), meta["speakers"], meta["unit_frame_rate_hz"],
                    meta["code_frame_rate_hz"])
        model.load_state_dict(load_file(str(path / "vocoder.safetensors"), device="cpu"))
        model.source = str(path)
        model.codec = CodecTokenizer.load(path / meta["codec"], device=device)
        return model.to(device).eval()
