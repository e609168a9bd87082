"""Speech encoders loaded by Hugging Face id or path: Whisper's encoder, HuBERT, WavLM, koe's own `koe ssl pretrain`
HuBERT dirs.

    enc = SpeechEncoder.load("openai/whisper-small")       # or "facebook/hubert-base-ls960", "runs/ssl/final"
    frames, lengths = enc([wav_a, wav_b])                    # [batch, frames, enc.hidden_size], valid frames each

Loading goes through `AutoConfig` / `AutoModel` / `WhisperModel` `from_pretrained` with trust_remote_code off, so
an encoder is whatever the hub or a local directory holds. Inputs are checked one by one (`check_audio`): a wrong
sample rate, digital silence or audio longer than the encoder accepts raises KoeInputError naming the item, so a
stage lists it and goes on with the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from koe.stage import KoeInputError

SAMPLE_RATE_HZ = 16_000
SILENCE_RMS = 1e-4  # below -80 dBFS: nothing for an encoder to hear


def check_audio(wav: np.ndarray, sample_rate_hz: int, max_s: float, where: str) -> np.ndarray:
    """The mono float32 waveform if an encoder can take it; KoeInputError("<kind>: ...") naming `where` otherwise."""
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise KoeInputError(f"wrong-sample-rate: {where}: {sample_rate_hz} Hz, the encoder needs {SAMPLE_RATE_HZ} Hz")
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise KoeInputError(f"not-mono: {where}: audio of shape {wav.shape}, expected one channel")
    if wav.size == 0 or float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise KoeInputError(f"silent: {where}: RMS below {SILENCE_RMS} (no speech to encode)")
    if wav.size / SAMPLE_RATE_HZ > max_s:
        raise KoeInputError(f"too-long: {where}: {wav.size / SAMPLE_RATE_HZ:.1f} s, the encoder takes <= {max_s:.1f} s")
    return wav


class SpeechEncoder(nn.Module):
    """A pretrained speech encoder and the input preparation it expects; frozen unless `freeze=False`."""

    def __init__(self, model: nn.Module, kind: str, name_or_path: str, feature_extractor=None,
                 max_audio_s: float = 30.0):
        super().__init__()
        self.model, self.kind, self.name_or_path = model, kind, name_or_path
        self.feature_extractor = feature_extractor
        self.max_audio_s = max_audio_s

    @classmethod
    def load(cls, name_or_path: str | Path, freeze: bool = True) -> SpeechEncoder:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, WhisperModel

        name = str(name_or_path)
        config = AutoConfig.from_pretrained(name, trust_remote_code=False)
        try:
            extractor = AutoFeatureExtractor.from_pretrained(name, trust_remote_code=False)
        except (OSError, ValueError):
            extractor = None  # koe ssl dirs hold weights + config only; waveforms are normalised here instead
        if config.model_type == "whisper":
            if extractor is None:
                raise KoeInputError(f"{name}: a Whisper encoder needs its preprocessor_config.json (log-mel settings)")
            model = WhisperModel.from_pretrained(name, trust_remote_code=False).encoder
            max_s = config.max_source_positions * 2 * extractor.hop_length / extractor.sampling_rate
        else:
            model = AutoModel.from_pretrained(name, trust_remote_code=False)
            max_s = 30.0
        enc = cls(model, config.model_type, name, extractor, max_s)
        enc.set_frozen(freeze)
        return enc

    def set_frozen(self, freeze: bool) -> None:
        self.frozen = freeze
        for p in self.model.parameters():
            p.requires_grad_(not freeze)
        if freeze:
            self.model.eval()

    def train(self, mode: bool = True) -> SpeechEncoder:
        super().train(mode)
        if getattr(self, "frozen", False):
            self.model.eval()  # a frozen encoder keeps dropout off even while the adapter trains
        return self

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config
        return cfg.d_model if self.kind == "whisper" else cfg.hidden_size

    def forward(self, wavs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz mono waveforms -> (frames [batch, max_frames, hidden], valid frames per item)."""
        device = next(self.model.parameters()).device
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            if self.kind == "whisper":
                return self._whisper(wavs, device)
            return self._waveform(wavs, device)

    def _whisper(self, wavs, device):
        fx = self.feature_extractor
        feats = fx(wavs, sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt", padding="max_length",
                   device=str(device)).input_features  # the STFT runs on the encoder's device
        out = self.model(feats.to(device)).last_hidden_state
        mel_frames = torch.tensor([len(w) // fx.hop_length + 1 for w in wavs])
        lengths = ((mel_frames + 1) // 2).clamp(1, out.shape[1])  # conv2 has stride 2
        return out[:, : int(lengths.max())], lengths.to(device)

    def _waveform(self, wavs, device):
        n = max(len(w) for w in wavs)
        batch = torch.zeros(len(wavs), n)
        mask = torch.zeros(len(wavs), n, dtype=torch.long)
        for i, w in enumerate(wavs):
            x = torch.from_numpy(w)
            batch[i, : len(w)] = (x - x.mean()) / (x.std() + 1e-7)
            mask[i, : len(w)] = 1
        use_mask = getattr(self.model.config, "feat_extract_norm", "layer") == "layer"
        out = self.model(batch.to(device), attention_mask=mask.to(device) if use_mask else None).last_hidden_state
        lengths = self.model._get_feat_extract_output_lengths(mask.sum(1)).clamp(1, out.shape[1])
        return out, lengths.to(device)
