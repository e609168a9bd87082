"""Fixtures for koe.ssl tests: a small voiced manifest (harmonic tones of two "speakers") and a tiny pretrained
HuBERT directory, so pretraining, units and disentangling run in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ssl_signals import SR, harmonic_tone

from koe.corpus.manifest import Utterance, write_manifest


def tiny_arch_overrides() -> list[str]:
    return ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=2", "model.intermediate_size=64",
            "model.conv_dim=16", "model.conv_pos_kernel=16", "model.conv_pos_groups=4", "model.dropout=0.0"]


@pytest.fixture(scope="session")
def voiced_manifest(tmp_path_factory) -> Path:
    """16 utterances of 1.2-2 s: runs of four vowel-like segment types (harmonics under one "formant" each), voiced
    by a low (120 Hz) or a high (220 Hz) speaker, so frames have structure that k-means and HuBERT can find."""
    root = tmp_path_factory.mktemp("ssl_voiced")
    rng = np.random.default_rng(0)
    utts = []
    for i in range(16):
        base = 120.0 if i % 2 == 0 else 220.0
        wav = np.concatenate([harmonic_tone(base * (1 + 0.03 * rng.standard_normal()), rng.uniform(0.2, 0.4),
                                            seed=i * 10 + j, formant_hz=float(rng.choice([500, 1000, 1800, 2600])))
                              for j in range(int(rng.integers(5, 8)))])
        path = root / "wav" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav, SR)
        utts.append(Utterance(id=f"u{i}", audio_path=f"wav/u{i}.wav", sample_rate_hz=SR, duration_s=len(wav) / SR,
                              speaker="low" if i % 2 == 0 else "high"))
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, utts)
    return manifest


@pytest.fixture(scope="session")
def pretrained_dir(voiced_manifest, tmp_path_factory) -> Path:
    """A tiny `koe ssl pretrain` run (its out_dir); the encoder is out_dir/final."""
    from koe.config import load_config
    from koe.ssl.config import PretrainConfig
    from koe.ssl.pretrain import run_pretrain

    out = tmp_path_factory.mktemp("ssl_pretrain") / "run"
    cfg = load_config(PretrainConfig, overrides=[
        f"manifest={voiced_manifest}", f"out_dir={out}", "num_clusters=8", "steps=120", "batch_size=4",
        "max_crop_s=1.0", "num_workers=0", "log_every=10", "eval_utterances=3", "optim.lr=2e-3", "device=cpu",
        "tensorboard=false", *tiny_arch_overrides()])
    report = run_pretrain(cfg)
    assert report.exit_code == 0
    return out
