"""The s2t/echox loops run on koe.training: one optimiser config shape; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from s2t_fixtures import save_llm
from safetensors.torch import load_file
from test_echox_pipeline import _qa

from koe.config import ConfigError, load_config
from koe.echox.train import EchoConfig, T2CConfig
from koe.s2t.init import EncoderInitConfig, run_encoder_init
from koe.s2t.loop import LoopConfig
from koe.s2t.train import S2TTrainConfig, run_s2t_train
from koe.training.config import OptimConfig


@pytest.mark.parametrize("cls", [S2TTrainConfig, T2CConfig, EchoConfig])
def test_every_loop_takes_the_shared_optimiser_config(cls):
    required = ["init=x"] if cls is S2TTrainConfig else []
    cfg = load_config(cls, None, [*required, "optim.lr=5e-4", "optim.schedule=cosine", "optim.warmup_steps=0.2",
                                  "device=cpu"])
    assert isinstance(cfg, LoopConfig) and type(cfg.optim) is OptimConfig
    assert (cfg.optim.lr, cfg.optim.schedule, cfg.optim.warmup_steps, cfg.device) == (5e-4, "cosine", 0.2, "cpu")
    assert cfg.optim.grad_clip == 1.0 and cls().optim.weight_decay == 0.0  # the loops' old update, by default
    with pytest.raises(ConfigError, match="lr"):  # the old flat key is gone, not silently ignored
        load_config(cls, None, [*required, "lr=1e-3"])
    with pytest.raises(ConfigError, match="warmup_steps"):  # OptimConfig's own checks run
        load_config(cls, None, [*required, "optim.warmup_steps=2.5"])


def _adapter(run_dir):
    return load_file(str(run_dir / "final" / "s2t.safetensors"))


@pytest.mark.slow
def test_s2t_align_resumes_to_the_same_weights(tmp_path):
    qa = _qa(tmp_path)
    llm = save_llm(tmp_path / "llm")
    run_encoder_init(EncoderInitConfig(out_dir=tmp_path / "enc", d_model=32, layers=1, heads=2, max_audio_s=4))
    args = [f"qa={qa}", f"encoder={tmp_path / 'enc'}", f"llm={llm}", "freeze_encoder=false", "steps=4",
            "batch_size=2", "save_every=2", "log_every=1", "device=cpu"]
    whole = run_s2t_train(load_config(S2TTrainConfig, None, [*args, f"out_dir={tmp_path / 'whole'}"]))
    assert [p.name for p in sorted((tmp_path / "whole/checkpoints").iterdir())] == ["step-0000002", "step-0000004"]
    # an interrupted copy: only the step-2 checkpoint survived, and metrics of steps 3-4 were written after it
    shutil.copytree(tmp_path / "whole", tmp_path / "part")
    shutil.rmtree(tmp_path / "part/checkpoints/step-0000004")
    shutil.rmtree(tmp_path / "part/final")
    part = run_s2t_train(load_config(S2TTrainConfig, None, [*args, f"out_dir={tmp_path / 'part'}",
                                                            "resume_from=auto"]))
    assert part.extra["resumed_from"].endswith("step-0000002") and part.extra["steps"] == 4
    a, b = _adapter(tmp_path / "whole"), _adapter(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(x)["step"] for x in (tmp_path / "part/metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one line per step: the abandoned lines past step 2 were dropped
    assert whole.extra["device"] == "cpu" and (tmp_path / "whole/loss_curve.png").exists()
