"""The HuBERT encoder of koe.ssl: built with transformers' HubertModel, saved as a plain HF directory, plus the heads.

    model = build_hubert(EncoderArch(), mask_prob=0.08, mask_length=10)
    geometry = FrameGeometry.of(model.config)          # stride 320, receptive field 400: 50 Hz frames
    save_encoder(model, "runs/hubert/final")            # config.json, model.safetensors, preprocessor_config.json

No model code is forked: the encoder is `HubertModel`, the heads are small modules beside it, and the saved directory
loads with `AutoModel.from_pretrained` (and so with `koe units fit features=hf:<dir>@<layer>`). The conv stack uses
per-layer LayerNorm (`feat_extract_norm="layer"`) and the saved preprocessor normalises each utterance
(`do_normalize=True`), so an utterance's features do not depend on the padding of the batch it is in.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.ssl.config import EncoderArch

HUBERT_CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)
HUBERT_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def build_hubert(arch: EncoderArch, mask_prob: float, mask_length: int):
    """A randomly initialised HubertModel; mask_time_prob follows HF's meaning (expected masked fraction before
    overlaps = spans x length / frames), i.e. HuBERT's start probability p times the span length."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        hidden_size=arch.hidden_size, num_hidden_layers=arch.num_layers, num_attention_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size, conv_dim=[arch.conv_dim] * len(HUBERT_CONV_KERNELS),
        conv_kernel=list(HUBERT_CONV_KERNELS), conv_stride=list(HUBERT_CONV_STRIDES), conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=False, num_conv_pos_embeddings=arch.conv_pos_kernel,
        num_conv_pos_embedding_groups=arch.conv_pos_groups, hidden_dropout=arch.dropout,
        attention_dropout=arch.dropout, activation_dropout=0.0, feat_proj_dropout=arch.dropout, layerdrop=0.0,
        mask_time_prob=mask_prob * mask_length, mask_time_length=mask_length, mask_time_min_masks=1,
    )
    return HubertModel(config)


def save_encoder(model, out_dir: str | Path) -> Path:
    """config.json + model.safetensors + preprocessor_config.json (Wav2Vec2FeatureExtractor, per-utterance
    normalisation as in training): a directory any transformers speech pipeline, and koe.units, loads."""
    from transformers import Wav2Vec2FeatureExtractor

    out = Path(out_dir)
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=TARGET_SAMPLE_RATE_HZ, padding_value=0.0,
                             do_normalize=True, return_attention_mask=True).save_pretrained(out)
    return out


@dataclasses.dataclass(frozen=True)
class FrameGeometry:
    """Where encoder frames sit in the waveform: frame i covers samples [i * stride, i * stride + receptive)."""

    stride: int
    receptive: int

    @classmethod
    def of(cls, config) -> FrameGeometry:
        strides, kernels = config.conv_stride, config.conv_kernel
        receptive = 1 + sum((k - 1) * math.prod(strides[:i]) for i, k in enumerate(kernels))
        return cls(math.prod(strides), receptive)

    def num_frames(self, samples: int) -> int:
        return 0 if samples < self.receptive else (samples - self.receptive) // self.stride + 1

    def centre(self, frame: int | torch.Tensor) -> float | torch.Tensor:
        """Centre sample of a frame (399 / 2 + 320 i for HuBERT)."""
        return frame * self.stride + (self.receptive - 1) / 2


def normalize_wave(wav: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor(do_normalize=True) and koe.units do."""
    return (wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7)


class LabelHead(nn.Module):
    """HuBERT's target head: project frames to `final_dim`, logits = cosine to one embedding per label / temp."""

    def __init__(self, hidden_size: int, num_labels: int, final_dim: int, temp: float) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, final_dim)
        self.label_embs = nn.Parameter(torch.randn(num_labels, final_dim) * final_dim**-0.5)
        self.temp = temp

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(hidden).float(), dim=-1) @ F.normalize(self.label_embs.float(), dim=-1).T / \
            self.temp


class HubertPretrainer(nn.Module):
    """Encoder + label head; forward returns the summed cross-entropy over masked frames and accuracy counts, so
    several batches and processes add up exactly."""

    def __init__(self, encoder, head: LabelHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, wave: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = self.encoder(wave, attention_mask=attention_mask, mask_time_indices=mask).last_hidden_state
        valid = targets >= 0
        masked, unmasked = mask & valid, ~mask & valid
        logits = self.head(hidden[masked | unmasked])
        labels = targets[masked | unmasked]
        is_masked = masked[masked | unmasked]
        ce = F.cross_entropy(logits, labels, reduction="none")
        correct = logits.argmax(-1) == labels
        return {"ce_sum": ce[is_masked].sum(), "masked": is_masked.sum(), "correct": correct[is_masked].sum(),
                "unmasked": (~is_masked).sum(), "correct_unmasked": correct[~is_masked].sum()}


class MLP(nn.Module):
    """Linear -> BatchNorm -> GELU -> Linear (no bias), optionally L2-normalised: BYOL's projector/predictor."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, normalize: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
                                 nn.Linear(hidden, out_dim, bias=False))
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x.float())
        return F.normalize(y, dim=-1) if self.normalize else y


def reinit_module(module: nn.Module, std: float) -> None:
    """Fresh weights as HF initialises them: Linear N(0, std) with zero bias, LayerNorm ones and zeros."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
