"""koe ssl disentangle: a tiny run trains the re-initialised layers, keeps the front end, writes a loadable student."""

from __future__ import annotations

import json

import pytest
import torch

from koe.config import load_config
from koe.ssl.config import DisentangleConfig
from koe.ssl.disentangle import Disentangler, load_student, run_disentangle
from koe.stage import KoeInputError


@pytest.fixture(scope="module")
def disentangled(pretrained_dir, voiced_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("ssl_disentangle") / "run"
    cfg = load_config(DisentangleConfig, overrides=[
        f"manifest={voiced_manifest}", f"init={pretrained_dir / 'final'}", f"out_dir={out}", "reinit_layers=1",
        "proj_hidden=32", "proj_dim=16", "steps=20", "batch_size=4", "max_crop_s=1.0", "num_workers=0",
        "log_every=5", "eval_utterances=2", "optim.lr=1e-3", "optim.warmup_steps=0.25", "device=cpu",
        "tensorboard=false"])
    report = run_disentangle(cfg)
    assert report.exit_code == 0
    return out


def test_disentangle_writes_a_loadable_student(disentangled, pretrained_dir):
    from safetensors.torch import load_file
    from transformers import HubertModel

    from koe.units.features import build_extractor

    for name in ("config.yaml", "metrics.jsonl", "loss_curve.png", "ssl_disentangle_summary.json",
                 "final/config.json", "final/model.safetensors", "final/preprocessor_config.json"):
        assert (disentangled / name).exists(), name
    before = load_file(pretrained_dir / "final" / "model.safetensors")
    after = load_file(disentangled / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    frozen = [k for k in before if k.startswith(("feature_extractor.", "feature_projection.", "encoder.pos_conv"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["encoder.layers.1.attention.q_proj.weight"],
                           after["encoder.layers.1.attention.q_proj.weight"])  # re-initialised and trained
    config = HubertModel.config_class.from_pretrained(disentangled / "final")
    assert config.apply_spec_augment is True  # training switched masking off; the saved config has it back
    (feats,) = build_extractor(f"hf:{disentangled / 'final'}@2", device="cpu").extract([torch.randn(8000).numpy()])
    assert feats.shape == (24, 32) and torch.isfinite(feats).all()


def test_disentangle_logs_loss_and_invariance(disentangled):
    rows = [json.loads(line) for line in (disentangled / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 4 and all(0 <= v <= 4 / 16 for v in losses)  # MSE of 16-d unit vectors is <= 4/16
    summary = json.loads((disentangled / "ssl_disentangle_summary.json").read_text())
    assert summary["warmup_steps"] == 5 and summary["reinit_layers"] == 1
    for key in ("invariance_same_init", "invariance_same_final", "invariance_other_init", "invariance_other_final"):
        assert len(summary[key]) == 3 and all(-1 <= v <= 1 for v in summary[key])  # hidden_states 0..2


def test_teacher_is_an_ema_of_the_student(pretrained_dir):
    model = Disentangler(load_student(str(pretrained_dir / "final"), 1), proj_hidden=8, proj_dim=4)
    s, t = model.student.encoder.layers[1].attention.q_proj.weight, model.teacher.encoder.layers[1].attention.q_proj
    assert torch.equal(s, t.weight)
    with torch.no_grad():
        s.add_(1.0)
    old = t.weight.clone()
    model.update_teacher(0.9)
    torch.testing.assert_close(t.weight, old + 0.1)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert not any(p.requires_grad for p in model.student.feature_extractor.parameters())


def test_student_needs_a_hubert_with_enough_layers(pretrained_dir):
    with pytest.raises(KoeInputError, match="has only 2 layers"):
        load_student(str(pretrained_dir / "final"), 3)
