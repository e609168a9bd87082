"""koe ssl pretrain: the loss falls, the run writes its reports, and the encoder loads through koe.units."""

from __future__ import annotations

import json

import numpy as np
import torch

from koe.units.features import build_extractor


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_pretrain_loss_decreases_and_writes_reports(pretrained_dir):
    train = [r for r in _metrics(pretrained_dir) if "loss" in r]
    assert [r["step"] for r in train] == list(range(10, 130, 10))
    first, last = np.mean([r["loss"] for r in train[:3]]), np.mean([r["loss"] for r in train[-3:]])
    assert last < first - 0.3  # from about ln(8) = 2.08 (measured: 2.16 -> 1.43)
    assert 0.3 < train[-1]["masked_fraction"] < 0.8  # p = 0.08 starts of 10 frames: ~57% before crop edges
    summary = json.loads((pretrained_dir / "ssl_pretrain_summary.json").read_text())
    assert summary["num_targets"] == 8 and summary["targets_frame_rate_hz"] == 100.0
    assert summary["frame_rate_hz"] == 50.0
    assert summary["eval_loss"] < summary["start_eval_loss"]
    for name in ("config.yaml", "loss_curve.png", "targets/unit_tokenizer.json", "final/config.json",
                 "final/model.safetensors", "final/preprocessor_config.json"):
        assert (pretrained_dir / name).exists(), name
    assert "seed: 0" in (pretrained_dir / "config.yaml").read_text()


def test_pretrained_encoder_loads_through_units_hf_backend(pretrained_dir):
    from transformers import HubertModel

    final = pretrained_dir / "final"
    ex = build_extractor(f"hf:{final}@1", device="cpu")
    assert ex.spec.frame_rate_hz == 50.0 and ex.spec.dim == 32 and ex.spec.params["normalize"] is True
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    (feats,) = ex.extract([wav])
    model = HubertModel.from_pretrained(final).eval()
    x = torch.from_numpy((wav - wav.mean()) / np.sqrt(wav.var() + 1e-7))[None]
    with torch.no_grad():
        want = model(x, output_hidden_states=True).hidden_states[1][0]
    assert feats.shape == (49, 32)
    torch.testing.assert_close(feats, want, atol=1e-4, rtol=1e-4)


def test_pretrain_is_seeded(pretrained_dir, tmp_path):
    """The saved config.yaml reproduces a run: same seed, same weights (init, batches, crops and masks)."""
    from safetensors.torch import load_file

    from koe.config import load_config
    from koe.ssl.config import PretrainConfig
    from koe.ssl.pretrain import run_pretrain

    weights = []
    for name in ("a", "b"):
        cfg = load_config(PretrainConfig, pretrained_dir / "config.yaml",
                          [f"out_dir={tmp_path / name}", "steps=3", f"tokenizer={pretrained_dir / 'targets'}"])
        assert run_pretrain(cfg).exit_code == 0
        weights.append(load_file(tmp_path / name / "final" / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_eval_padding_does_not_change_results():
    """Held-out utterances are evaluated in padded batches: an utterance's counts equal those of it alone."""
    from koe.ssl.config import EncoderArch
    from koe.ssl.encoder import FrameGeometry, HubertPretrainer, LabelHead, build_hubert

    torch.manual_seed(0)
    encoder = build_hubert(EncoderArch(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, conv_dim=16,
                                       conv_pos_kernel=16, conv_pos_groups=4, dropout=0.0), 0.08, 10)
    model = HubertPretrainer(encoder, LabelHead(32, 8, 16, 0.1)).eval()
    geometry = FrameGeometry.of(encoder.config)
    a, b = torch.randn(16000), torch.randn(24000)
    na, nb = geometry.num_frames(16000), geometry.num_frames(24000)
    targets, mask = torch.randint(0, 8, (1, na)), torch.rand(1, na) < 0.5
    wave, attention = torch.zeros(2, 24000), torch.ones(2, 24000, dtype=torch.long)
    wave[0, :16000], wave[1], attention[0, 16000:] = a, b, 0
    padded_targets, padded_mask = torch.full((2, nb), -1), torch.zeros(2, nb, dtype=torch.bool)
    padded_targets[0, :na], padded_mask[0, :na] = targets[0], mask[0]
    with torch.no_grad():
        alone = model(a[None], mask, targets)
        batched = model(wave, padded_mask, padded_targets, attention)
    assert alone["masked"] == batched["masked"] > 0
    for key in ("ce_sum", "correct", "correct_unmasked"):
        torch.testing.assert_close(alone[key].float(), batched[key].float(), atol=1e-3, rtol=1e-4)
