"""koe's own codec: EMA RVQ health, model shapes, train -> CodecTokenizer.load round trip, codes -> per-level stats."""

import json

import numpy as np
import pytest
import torch

from koe.stage import KoeInputError
from koe.units.codec import CodecTokenizer
from koe.units.codec_config import CodecEncodeConfig, CodecTrainConfig
from koe.units.codec_model import CodecShape, EmaResidualVQ, KoeCodec
from koe.units.rvq import codebook_stats

TINY = {"levels": 3, "codebook_size": 16, "latent_dim": 8, "hidden_size": 16, "num_blocks": 1, "batch_size": 4,
        "segment_frames": 32, "kmeans_frames": 400, "device": "cpu"}


def test_ema_rvq_keeps_every_level_in_use():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4000, 8)).astype(np.float32)
    data[:150] += 30.0  # an outlying cluster
    vq = EmaResidualVQ(levels=3, codebook_size=32, dim=8, decay=0.9, dead_threshold=0.2)
    vq.init_kmeans(data[:2000], seed=0, iterations=5)
    vq.codebooks[0, :4] += 1000.0  # four codes nothing will pick: dead-code restart must bring them back
    vq.ema_sum[0, :4] += 1000.0
    vq.train()
    for _ in range(60):
        batch = torch.from_numpy(data[rng.integers(0, len(data), 512)])[None]
        out, codes, commit = vq(batch)
        assert out.shape == batch.shape and codes.shape == (3, 1, 512) and commit.item() >= 0
    assert vq.restarts[0].item() >= 4
    vq.eval()
    _, codes, _ = vq(torch.from_numpy(data)[None])
    stats = codebook_stats(codes[:, 0].numpy(), 32, frame_rate_hz=50.0)
    assert all(s["usage"] >= 0.9 for s in stats), stats
    errors = [((torch.from_numpy(data) - vq.decode(codes[:n])[0]) ** 2).mean().item() for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_codec_shapes_and_straight_through_gradient():
    codec = KoeCodec(CodecShape(num_quantizers=2, codebook_size=8, latent_dim=4, hidden_size=8, num_blocks=1))
    mel = torch.randn(2, 40, 80, requires_grad=True)
    recon, codes, commit = codec(mel)
    assert recon.shape == (2, 40, 80) and codes.shape == (2, 2, 20)
    (recon.abs().mean() + commit).backward()
    assert codec.encoder[0].weight.grad is not None and codec.encoder[0].weight.grad.abs().sum() > 0
    assert codec.config.frame_rate == 50.0


def test_train_codec_loads_as_a_codec_family_member(tmp_path, tone_manifest):
    from koe.cli import run_command
    from koe.units.codec_codes import run_encode_codec
    from koe.units.codec_training import run_train_codec

    cfg = CodecTrainConfig(manifest=tone_manifest, out_dir=tmp_path / "codec", steps=12, save_every=6, **TINY)
    report = run_train_codec(cfg)
    assert report.exit_code == 0 and report.extra["steps_run"] == 12
    assert {"config.json", "model.safetensors", "metrics.jsonl", "codec_eval.json"} <= {
        p.name for p in cfg.out_dir.iterdir()}
    assert json.loads((cfg.out_dir / "config.json").read_text())["model_type"] == "koe_codec"
    codec = CodecTokenizer.load(cfg.out_dir)
    assert (codec.model_type, codec.num_levels, codec.codebook_size, codec.frame_rate_hz) == ("koe_codec", 3, 16, 50.0)
    assert codec.bitrate_bps == 50.0 * 3 * 4
    wav = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    codes = codec.encode(wav)
    assert codes.shape == (3, 26) and codes.dtype == np.int64 and codes.min() >= 0 and codes.max() < 16
    audio = codec.decode(codes)
    assert audio.dtype == np.float32 and abs(len(audio) - 8000) <= 2 * 160
    with pytest.raises(KoeInputError, match="codes out of range"):
        codec.decode(codes + 16)
    with pytest.raises(KoeInputError, match="bad codes"):
        codec.decode(codes[:1])
    with pytest.raises(KoeInputError, match="empty audio"):
        codec.encode(np.zeros(0, np.float32))
    # a longer run resumes from the step-12 checkpoint through koe.training.checkpoint
    cfg.steps = 14
    assert run_train_codec(cfg).extra["steps_run"] == 2
    # multi-level codes -> `koe units stats` reports bitrate, usage and perplexity per level
    enc = run_encode_codec(CodecEncodeConfig(manifest=tone_manifest, codec=str(cfg.out_dir), out_dir=tmp_path / "c"))
    assert enc.exit_code == 0 and enc.items_out == 6
    assert run_command("units stats", [str(tmp_path / "c")]) == 0
    stats = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert stats["num_levels"] == 3 and len(stats["levels"]) == 3 and stats["bitrate_bps"] == 600.0
    assert all(0 < s["usage"] <= 1 and 1 <= s["perplexity"] <= 16 for s in stats["levels"])
    assert "| 2 |" in (tmp_path / "c" / "stats.md").read_text()


def test_codec_config_problems_are_listed_together():
    cfg = CodecTrainConfig(manifest="m.jsonl", stride=3, num_blocks=0, kmeans_frames=8)
    problems = cfg.validate()
    assert any("stride=3" in p for p in problems) and any("num_blocks" in p for p in problems)
    assert any("kmeans_frames" in p for p in problems)
