"""`koe s2t init-encoder`: a randomly initialised Whisper-style encoder saved as a plain HF dir.

    koe s2t init-encoder out_dir=runs/echox/encoder d_model=128 layers=2 max_audio_s=8

For machines without hub access (the CPU recipe): the encoder is then trained in ASR pre-alignment
(`koe s2t train freeze_encoder=false`). It is loaded back through WhisperModel.from_pretrained like any hub Whisper.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from koe.config import save_config
from koe.stage import StageReport


@dataclasses.dataclass
class EncoderInitConfig:
    """Write a random Whisper encoder (+ its log-mel feature extractor) to out_dir."""

    out_dir: Path = dataclasses.field(default=Path("runs/encoder"), metadata={"help": "HF dir to write"})
    d_model: int = dataclasses.field(default=128, metadata={"help": "encoder width"})
    layers: int = dataclasses.field(default=2, metadata={"help": "encoder layers"})
    heads: int = dataclasses.field(default=4, metadata={"help": "attention heads"})
    max_audio_s: int = dataclasses.field(default=8, metadata={"help": "input window in seconds (Whisper: 30)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "init seed"})


def run_encoder_init(cfg: EncoderInitConfig) -> StageReport:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(cfg.seed)
    wcfg = WhisperConfig(vocab_size=64, d_model=cfg.d_model, encoder_layers=cfg.layers, decoder_layers=1,
                         encoder_attention_heads=cfg.heads, decoder_attention_heads=cfg.heads,
                         encoder_ffn_dim=4 * cfg.d_model, decoder_ffn_dim=4 * cfg.d_model, num_mel_bins=80,
                         max_source_positions=cfg.max_audio_s * 50, max_target_positions=16, pad_token_id=0,
                         bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    WhisperModel(wcfg).save_pretrained(cfg.out_dir)
    WhisperFeatureExtractor(feature_size=80, chunk_length=cfg.max_audio_s).save_pretrained(cfg.out_dir)
    save_config(cfg, cfg.out_dir, "init_config.yaml")
    report = StageReport("s2t init-encoder", cfg.out_dir, items_in=1)
    report.ok()
    return report.finish()
