"""The neural vocoder on tiny configs: shapes, losses, registry dispatch, bad input, a train + resume smoke test."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from koe.config import ConfigError, load_config
from koe.corpus.manifest import Utterance, write_manifest
from koe.stage import KoeInputError
from koe.units.shards import UnitRecord, UnitsMeta, write_unit_shard, write_units_meta
from koe.vocoder import UnitVocoder, units_to_audio
from koe.vocoder.config import VocoderConfig
from koe.vocoder.discriminators import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from koe.vocoder.hifigan import GeneratorShape, HifiGanVocoder
from koe.vocoder.registry import load_vocoder, trainer_for

TINY = {"unit_embed_dim": 16, "prenet_layers": 1, "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
        "resblock_dilations": [1, 3]}


def _tiny_vocoder(num_units: int = 6, speakers=("a", "b")) -> HifiGanVocoder:
    torch.manual_seed(0)
    return HifiGanVocoder(GeneratorShape(num_units, len(speakers), **TINY), list(speakers), 100.0).eval()


def test_generator_makes_one_hop_of_audio_per_frame():
    vocoder = _tiny_vocoder()
    wav = vocoder.generator(torch.randint(0, 6, (3, 20)), torch.tensor([0, 1, 0]))
    assert wav.shape == (3, 20 * 160) and wav.abs().max() <= 1.0


def test_discriminators_and_losses():
    discs = Discriminators(periods=[2, 3, 5, 7, 11], scales=3, width=2)
    real, fake = torch.randn(2, 3200) * 0.1, torch.randn(2, 3200) * 0.1
    outs, feats = discs(real)
    assert len(outs) == len(feats) == 8
    assert all(o.shape[0] == 2 for o in outs)
    perfect = [torch.ones(2, 4)], [torch.zeros(2, 4)]
    assert discriminator_loss(*perfect).item() == 0.0
    assert generator_adversarial_loss([torch.ones(2, 4)]).item() == 0.0
    assert generator_adversarial_loss([torch.zeros(2, 4)]).item() == 1.0
    fake_feats = discs(fake)[1]
    assert feature_matching_loss(feats, feats).item() == 0.0
    assert feature_matching_loss(feats, fake_feats).item() > 0.0


def test_save_load_dispatches_on_kind(tmp_path):
    vocoder = _tiny_vocoder()
    vocoder.save(tmp_path)
    loaded = UnitVocoder.load(tmp_path)
    assert isinstance(loaded, HifiGanVocoder) and loaded.speakers == ["a", "b"]
    units, durations = [1, 2, 3], [3, 4, 5]
    assert np.allclose(units_to_audio(loaded, units, durations, speaker="b"),
                       units_to_audio(vocoder, units, durations, speaker="b"), atol=1e-6)
    assert isinstance(load_vocoder(tmp_path), HifiGanVocoder)
    # the two voices differ, and durations decide the length
    assert not np.allclose(units_to_audio(loaded, units, durations, speaker="a"),
                           units_to_audio(loaded, units, durations, speaker="b"))
    assert len(units_to_audio(loaded, units, durations)) == 12 * 160
    assert len(units_to_audio(loaded, units)) >= 3 * 160  # predicted durations, >= 1 frame each


def test_bad_requests_name_the_problem(tmp_path):
    vocoder = _tiny_vocoder()
    vocoder.save(tmp_path)
    vocoder = UnitVocoder.load(tmp_path)
    with pytest.raises(KoeInputError, match=r"units out of range: \[6, 9\].*\[0, 6\)"):
        units_to_audio(vocoder, [1, 6, 9])
    with pytest.raises(KoeInputError, match="unknown speaker: 'zz'"):
        units_to_audio(vocoder, [1, 2], speaker="zz")
    with pytest.raises(KoeInputError, match="empty units"):
        units_to_audio(vocoder, [])
    with pytest.raises(KoeInputError, match="2 durations for 3 units"):
        units_to_audio(vocoder, [1, 2, 3], durations=[1, 2])
    with pytest.raises(KoeInputError, match="not a vocoder"):
        UnitVocoder.load(tmp_path / "missing")
    baseline = UnitVocoder(num_units=4, unit_frame_rate_hz=100.0, hidden_size=8, num_layers=1, kernel_size=3)
    with pytest.raises(KoeInputError, match="units out of range"):
        units_to_audio(baseline, [4])
    with pytest.raises(KoeInputError, match="unknown vocoder kind 'wavenet'"):
        trainer_for("wavenet")


def _tiny_corpus(root, n: int = 6):
    """Utterances of two speakers: unit u is a sine of 200 + 100 u Hz, so units are audible in the audio."""
    (root / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts, records = [], []
    for i in range(n):
        units = rng.integers(0, 5, 8)
        durations = rng.integers(3, 8, 8)
        freq = np.repeat(200.0 + 100 * units, durations * 160)
        wav = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / 16000) * (1.0 if i % 2 else 0.6)
        sf.write(root / "wav" / f"u{i}.wav", wav.astype(np.float32), 16000)
        utts.append(Utterance(id=f"u{i}", audio_path=f"wav/u{i}.wav", sample_rate_hz=16000,
                              duration_s=len(wav) / 16000, speaker="s1" if i % 2 else "s0", text="x"))
        records.append(UnitRecord(f"u{i}", units, durations))
    write_manifest(root / "manifest.jsonl", utts)
    write_unit_shard(root / "units" / "shard-00000.npz", records)
    write_units_meta(root / "units", UnitsMeta("0" * 16, "tok", 5, 100.0, "manifest.jsonl", 1, n))


def test_train_resume_and_load(tmp_path):
    _tiny_corpus(tmp_path)
    overrides = [f"manifest={tmp_path / 'manifest.jsonl'}", f"units_dir={tmp_path / 'units'}",
                 f"out_dir={tmp_path / 'voc'}", "kind=hifigan", "steps=4", "batch_size=2", "device=cpu",
                 "hifigan.save_every=2", "hifigan.disc_width=2", "hifigan.msd_scales=1", "hifigan.periods=[2,3]",
                 "hifigan.adversarial_start_step=1", "hifigan.segment_frames=8", "hifigan.log_every=1",
                 "exclude_speakers=[s1]"] + [f"hifigan.{k}={json.dumps(v)}" for k, v in TINY.items()]
    cfg = load_config(VocoderConfig, overrides=overrides)
    report = trainer_for("hifigan")(cfg)
    assert report.failures == [] and report.extra["steps_run"] == 4
    assert report.extra["excluded_speaker_utterances"] == 3
    vocoder = UnitVocoder.load(cfg.out_dir)
    assert vocoder.speakers == ["s0"] and vocoder.num_units == 5
    with pytest.raises(KoeInputError, match="unknown speaker: 's1'"):
        units_to_audio(vocoder, [1, 2], speaker="s1")
    lines = (cfg.out_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    assert json.loads(lines[0])["loss_d"] == 0.0 and json.loads(lines[1])["loss_d"] > 0.0  # D joins at step 1
    # a longer run resumes from the step-4 checkpoint, does only the new steps and keeps one line per step
    cfg.steps = 6
    again = trainer_for("hifigan")(cfg)
    assert again.extra["start_step"] == 4 and again.extra["steps_run"] == 2
    assert [json.loads(x)["step"] for x in (cfg.out_dir / "metrics.jsonl").read_text().splitlines()] == list(
        range(1, 7))
    assert sorted(p.name for p in (cfg.out_dir / "checkpoints").iterdir()) == ["step-0000004", "step-0000006"]


def test_streaming_matches_offline_within_the_receptive_field():
    from koe.vocoder.streaming import receptive_frames, stream_audio

    vocoder = _tiny_vocoder()
    units, durations = [1, 2, 3, 4, 5, 0, 2], [6, 9, 4, 12, 7, 5, 8]
    offline = units_to_audio(vocoder, units, durations, speaker="a")
    exact = np.concatenate(list(stream_audio(vocoder, units, durations, "a", chunk_frames=7)))
    assert exact.shape == offline.shape
    assert np.abs(exact - offline).max() < 1e-5
    assert receptive_frames(vocoder.shape) >= 5
    chunks = list(stream_audio(vocoder, units, durations, "a", chunk_frames=7, lookahead_frames=0))
    assert [len(c) for c in chunks[:-1]] == [7 * 160] * (len(chunks) - 1)
    assert np.abs(np.concatenate(chunks) - offline).max() > 1e-4  # no look-ahead: edges really differ
    with pytest.raises(KoeInputError, match="empty units"):
        next(stream_audio(vocoder, [], None, "a"))


def test_shipped_gpu_config_loads_and_validates():
    from pathlib import Path

    import koe

    path = Path(koe.__file__).parent / "configs" / "vocoder" / "hifigan_gpu.yaml"
    cfg = load_config(VocoderConfig, path, ["manifest=m.jsonl", "units_dir=u"])  # the data paths are required
    assert cfg.kind == "hifigan" and cfg.validate() == [] and cfg.hifigan.disc_width == 32
    with pytest.raises(ConfigError, match="multiply to 80, not the mel hop 160"):
        load_config(VocoderConfig, path, ["hifigan.upsample_rates=[5,4,4]"])
