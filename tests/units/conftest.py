"""Fixtures for koe.units tests: a tiny tone manifest, a fitted MFCC tokenizer, encoded unit shards, a tiny HuBERT.

Tones of a few pitches give k-means real structure in a second of CPU time. `unit_shards` is what
`koe units stats` and `koe data build` read, so their tests can use it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from koe.corpus.manifest import Utterance, write_manifest

PITCHES_HZ = (220.0, 440.0, 880.0, 1760.0)


def tone_wav(pitches: list[float], seg_s: float = 0.3, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Consecutive sine segments with a little noise: frames within a segment look alike, across segments not."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seg_s * sr)) / sr
    wav = np.concatenate([0.5 * np.sin(2 * np.pi * p * t) for p in pitches])
    return (wav + 0.01 * rng.standard_normal(len(wav))).astype(np.float32)


def write_tone_manifest(root: Path, n: int = 6, sr: int = 16000) -> Path:
    """n utterances of 3-5 tone segments at sample rate sr; returns manifest.jsonl."""
    rng = np.random.default_rng(1)
    utts = []
    for i in range(n):
        pitches = list(rng.choice(PITCHES_HZ, size=3 + i % 3))
        wav = tone_wav(pitches, sr=sr, seed=i)
        path = root / "wav" / f"utt{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav, sr)
        utts.append(Utterance(id=f"utt{i}", audio_path=f"wav/utt{i}.wav", sample_rate_hz=sr,
                              duration_s=len(wav) / sr, speaker="tone"))
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, utts)
    return manifest


@pytest.fixture(scope="session")
def tone_manifest(tmp_path_factory) -> Path:
    return write_tone_manifest(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="session")
def mfcc_tokenizer(tone_manifest, tmp_path_factory) -> Path:
    from koe.units.config import FitConfig
    from koe.units.fit import run_fit

    out = tmp_path_factory.mktemp("tok") / "mfcc8"
    report = run_fit(FitConfig(manifest=tone_manifest, out_dir=out, features="mfcc", k=8, iterations=10,
                               max_frames=5000, device="cpu"))
    assert report.exit_code == 0
    return out


@pytest.fixture(scope="session")
def unit_shards(tone_manifest, mfcc_tokenizer, tmp_path_factory) -> Path:
    from koe.units.config import EncodeConfig
    from koe.units.encode import run_encode

    out = tmp_path_factory.mktemp("units") / "mfcc8"
    report = run_encode(EncodeConfig(manifest=tone_manifest, tokenizer=mfcc_tokenizer, out_dir=out, shard_size=4,
                                     device="cpu"))
    assert report.exit_code == 0
    return out


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    """A randomly initialised 3-layer HuBERT (hidden 32) saved like a hub checkpoint."""
    import torch
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hf") / "tiny-hubert"
    HubertModel(config).save_pretrained(path)
    return path
