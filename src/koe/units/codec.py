"""Acoustic tokens from a neural audio codec loaded through transformers: EnCodec, DAC or Mimi, by hub id or path.

    codec = CodecTokenizer.load("facebook/encodec_24khz")      # or kyutai/mimi, descript/dac_16khz, a local dir
    codes = codec.encode(wav)             # int64 [levels, frames] from 16 kHz float32 audio (resampled for the codec)
    wav = codec.decode(codes)             # float32 audio back at 16 kHz
    codec.num_levels, codec.codebook_size, codec.frame_rate_hz, codec.bitrate_bps

Residual vector quantisation gives every frame one code per level; level 1 carries the coarse content and later
levels refine it (FIELD.md: EnCodec 75 Hz x up to 32 levels of 1024, Mimi 12.5 Hz x 8 of 2048). How the levels
become one token sequence for an LM is koe.units.codec_layout's job. The family is picked from the saved config's
model_type; nothing here forks transformers' model code. model_type "koe_codec" is koe's own small mel codec
(koe.units.codec_model, trained by `koe units train-codec`), behind the same encode/decode.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import soxr
import torch

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.stage import KoeInputError


@dataclasses.dataclass(frozen=True)
class CodecFamily:
    model_class: str  # transformers class name
    levels_attr: str  # config attribute with the number of RVQ levels ("": from EnCodec's bandwidth)


FAMILIES = {
    "encodec": CodecFamily("EncodecModel", ""),
    "dac": CodecFamily("DacModel", "n_codebooks"),
    "mimi": CodecFamily("MimiModel", "num_quantizers"),
    "koe_codec": CodecFamily("koe.units.codec_model:KoeCodec", "num_quantizers"),  # `koe units train-codec`
}


class CodecTokenizer:
    """A transformers codec behind encode (audio -> [levels, frames] codes) and decode (codes -> audio)."""

    def __init__(self, model, model_type: str, source: str, device: str = "cpu"):
        self.model, self.model_type, self.source, self.device = model.to(device).eval(), model_type, source, device
        cfg = model.config
        self.sample_rate_hz = int(cfg.sampling_rate)
        self.codebook_size = int(cfg.codebook_size)
        if model_type == "encodec":
            self.frame_rate_hz = float(cfg.frame_rate)
            self.bandwidth = float(cfg.target_bandwidths[-1])  # the highest: all the levels it was trained with
            self.num_levels = int(cfg.num_quantizers)
        else:
            hop = cfg.hop_length if model_type == "dac" else cfg.sampling_rate / cfg.frame_rate
            self.frame_rate_hz = float(cfg.sampling_rate / hop)
            self.num_levels = int(getattr(cfg, FAMILIES[model_type].levels_attr))

    @classmethod
    def load(cls, name_or_path: str | Path, device: str = "cpu") -> CodecTokenizer:
        import transformers

        from koe.units.codec_model import MODEL_TYPE, KoeCodec, is_koe_codec

        if is_koe_codec(name_or_path):  # koe's own codec: not a transformers model type
            return cls(KoeCodec.from_pretrained(name_or_path), MODEL_TYPE, str(name_or_path), device)
        try:
            config = transformers.AutoConfig.from_pretrained(str(name_or_path))
        except (OSError, ValueError) as e:
            raise KoeInputError(f"codec not found: {name_or_path}: {str(e).splitlines()[0]}") from None
        family = FAMILIES.get(config.model_type)
        if family is None:
            raise KoeInputError(f"not a codec: {name_or_path} is a {config.model_type!r} model "
                                f"(codec families: {', '.join(FAMILIES)})")
        model = getattr(transformers, family.model_class).from_pretrained(str(name_or_path))
        return cls(model, config.model_type, str(name_or_path), device)

    @property
    def bitrate_bps(self) -> float:
        """frames/s x levels x log2(codebook size) (FIELD.md)."""
        return self.frame_rate_hz * self.num_levels * math.log2(self.codebook_size)

    @torch.no_grad()
    def encode(self, wav: np.ndarray, sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ) -> np.ndarray:
        """Mono float audio -> int64 codes [levels, frames]."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if wav.size == 0:
            raise KoeInputError(f"empty audio: codec {self.source} needs at least one sample")
        if sample_rate_hz != self.sample_rate_hz:
            wav = soxr.resample(wav, sample_rate_hz, self.sample_rate_hz).astype(np.float32)
        x = torch.from_numpy(wav)[None, None].to(self.device)
        if self.model_type == "encodec":
            codes = self.model.encode(x, bandwidth=self.bandwidth).audio_codes[0]  # [chunks=1, B, L, T] -> [B, L, T]
        else:
            codes = self.model.encode(x).audio_codes
        return codes[0].long().cpu().numpy()

    @torch.no_grad()
    def decode(self, codes: np.ndarray, sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ) -> np.ndarray:
        """int codes [levels, frames] -> float32 mono audio at `sample_rate_hz`."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.num_levels or codes.shape[1] == 0:
            raise KoeInputError(f"bad codes: shape {codes.shape}, codec {self.source} wants "
                                f"[{self.num_levels}, frames > 0]")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise KoeInputError(f"codes out of range: not in [0, {self.codebook_size}) of codec {self.source}")
        c = torch.from_numpy(codes.astype(np.int64))[None].to(self.device)
        if self.model_type == "encodec":
            audio = self.model.decode(c[None], [None]).audio_values
        elif self.model_type == "dac":
            audio = self.model.decode(audio_codes=c).audio_values
        else:
            audio = self.model.decode(c).audio_values
        audio = audio.reshape(-1).float().cpu().numpy()
        if sample_rate_hz != self.sample_rate_hz:
            audio = soxr.resample(audio, self.sample_rate_hz, sample_rate_hz)
        return audio.astype(np.float32)
