"""Coarse-to-fine (units + speaker -> codec codes -> codec decoder) on a tiny corpus and a tiny koe codec."""

import numpy as np
import pytest
import soundfile as sf
import torch

from koe.config import load_config
from koe.corpus.manifest import Utterance, write_manifest
from koe.stage import KoeInputError
from koe.units.shards import UnitRecord, UnitsMeta, write_unit_shard, write_units_meta
from koe.vocoder import UnitVocoder, units_to_audio
from koe.vocoder.coarse_to_fine import C2FShape, CoarseToFine, CoarseToFineVocoder
from koe.vocoder.config import VocoderConfig
from koe.vocoder.registry import load_vocoder, trainer_for


def _corpus(root, n: int = 8):
    """Two speakers; unit u is a sine of 200 + 100 u Hz (speaker s1 an octave up), so codes follow units."""
    (root / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts, records = [], []
    for i in range(n):
        units, durations = rng.integers(0, 5, 8), rng.integers(4, 9, 8)
        freq = np.repeat((200.0 + 100 * units) * (2 if i % 2 else 1), durations * 160)
        wav = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / 16000)
        sf.write(root / "wav" / f"u{i}.wav", wav.astype(np.float32), 16000)
        utts.append(Utterance(id=f"u{i}", audio_path=f"wav/u{i}.wav", sample_rate_hz=16000,
                              duration_s=len(wav) / 16000, speaker=f"s{i % 2}", text="x"))
        records.append(UnitRecord(f"u{i}", units, durations))
    write_manifest(root / "manifest.jsonl", utts)
    write_unit_shard(root / "units" / "shard-00000.npz", records)
    write_units_meta(root / "units", UnitsMeta("0" * 16, "tok", 5, 100.0, "manifest.jsonl", 1, n))


def test_levels_see_only_coarser_levels():
    torch.manual_seed(0)
    model = CoarseToFine(C2FShape(num_units=5, num_speakers=2, levels=3, codebook_size=8, hidden_size=16,
                                  num_layers=2)).eval()
    units, spk = torch.randint(0, 5, (2, 12)), torch.tensor([0, 1])
    codes = torch.randint(0, 8, (3, 2, 12))
    logits = model(units, spk, codes)
    assert logits.shape == (3, 2, 12, 8)
    changed = codes.clone()
    changed[2] = (changed[2] + 1) % 8  # the finest level is input to no level
    changed[1] = (changed[1] + 1) % 8  # level 1 feeds level 2 only
    again = model(units, spk, changed)
    assert torch.allclose(again[0], logits[0]) and torch.allclose(again[1], logits[1])
    assert not torch.allclose(again[2], logits[2])
    assert model.generate(units, spk).shape == (3, 2, 12)


def test_train_c2f_loss_falls_and_bad_requests_fail_clearly(tmp_path):
    from koe.units.codec_config import CodecTrainConfig
    from koe.units.codec_training import run_train_codec

    _corpus(tmp_path)
    run_train_codec(CodecTrainConfig(manifest=tmp_path / "manifest.jsonl", out_dir=tmp_path / "codec", levels=2,
                                     codebook_size=16, latent_dim=8, hidden_size=16, num_blocks=1, steps=10,
                                     batch_size=4, segment_frames=32, kmeans_frames=300, device="cpu"))
    cfg = load_config(VocoderConfig, overrides=[
        f"manifest={tmp_path / 'manifest.jsonl'}", f"units_dir={tmp_path / 'units'}", f"out_dir={tmp_path / 'c2f'}",
        "kind=c2f", f"c2f.codec={tmp_path / 'codec'}", "c2f.hidden_size=32", "c2f.num_layers=2",
        "c2f.segment_frames=16", "c2f.log_every=5", "steps=60", "batch_size=4", "device=cpu"])
    assert cfg.validate() == []
    report = trainer_for("c2f")(cfg)
    assert report.exit_code == 0 and report.extra["steps_run"] == 60
    assert report.extra["final_loss"] < 0.8 * report.extra["first_loss"], report.extra
    vocoder = UnitVocoder.load(cfg.out_dir)
    assert isinstance(vocoder, CoarseToFineVocoder) and isinstance(load_vocoder(cfg.out_dir), CoarseToFineVocoder)
    assert vocoder.speakers == ["s0", "s1"] and (cfg.out_dir / "codec" / "config.json").exists()
    codes = vocoder.codes([1, 2, 3], [4, 6, 8], speaker="s1")
    assert codes.shape == (2, 9) and codes.max() < 16
    audio = units_to_audio(vocoder, [1, 2, 3], [4, 6, 8], speaker="s1")
    assert audio.dtype == np.float32 and abs(len(audio) - 18 * 160) <= 2 * 160
    assert len(units_to_audio(vocoder, [1, 2])) > 0  # predicted durations, first voice
    with pytest.raises(KoeInputError, match=r"units out of range: \[5, 9\]"):
        units_to_audio(vocoder, [1, 5, 9])
    with pytest.raises(KoeInputError, match="unknown speaker: 'zz'"):
        units_to_audio(vocoder, [1, 2], speaker="zz")
    with pytest.raises(KoeInputError, match="empty units"):
        units_to_audio(vocoder, [])


def test_c2f_config_needs_a_codec():
    from koe.config import ConfigError

    cfg = load_config(VocoderConfig, overrides=["manifest=m.jsonl", "units_dir=u", "kind=c2f", "c2f.codec=c"])
    assert (cfg.c2f.optim.lr, cfg.c2f.optim.schedule) == (2e-3, "cosine")  # its own defaults reach the loaded config
    with pytest.raises(ConfigError, match=r"(?s)c2f.codec is required.*c2f.hidden_size must be positive"):
        load_config(VocoderConfig, overrides=["manifest=m.jsonl", "units_dir=u", "kind=c2f", "c2f.hidden_size=0"])
