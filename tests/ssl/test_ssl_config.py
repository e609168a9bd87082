"""koe.ssl configs: every problem is reported at once, naming the option; the commands are in the CLI table."""

from __future__ import annotations

import pytest

from koe.cli import COMMANDS, run_command
from koe.config import ConfigError, load_config
from koe.ssl.config import DisentangleConfig, PretrainConfig


def test_pretrain_config_lists_all_problems():
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, overrides=["manifest=m.jsonl", "steps=0", "mask_prob=1.5", "model.hidden_size=30",
                                               "optim.warmup_steps=2.5", "device=tpu", "max_crop_s=0.5"])
    text = str(err.value)
    for name in ("steps=0", "mask_prob=1.5", "model.hidden_size=30", "optim.warmup_steps=2.5", "device='tpu'",
                 "max_crop_s=0.5"):
        assert name in text, name


def test_one_optimiser_shape_and_the_old_warmup_key_says_what_to_write():
    """koe ssl and koe train share koe.training.config.OptimConfig; `warmup_steps` below 1 is a fraction of the
    steps; a config of the former SSL shape (`optim.warmup_fraction`) is refused with the replacement spelled out."""
    from koe.train.config import TrainConfig
    from koe.training.config import OptimConfig, warmup_steps

    cfg = load_config(PretrainConfig, overrides=["manifest=m.jsonl", "steps=1000"])
    lm = load_config(TrainConfig, overrides=["data_dir=d", "optim.warmup_steps=100"])
    assert isinstance(cfg.optim, OptimConfig) and isinstance(lm.optim, OptimConfig)
    assert warmup_steps(cfg.optim, 1000) == 80 and warmup_steps(lm.optim, 1000) == 100
    with pytest.raises(ConfigError, match=r"optim.warmup_fraction was folded into optim.warmup_steps: write "
                                          r"optim.warmup_steps=0.25"):
        load_config(PretrainConfig, overrides=["manifest=m.jsonl", "optim.warmup_fraction=0.25"])


def test_disentangle_config_needs_init_and_sane_values():
    with pytest.raises(ConfigError) as err:
        load_config(DisentangleConfig, overrides=["manifest=m.jsonl", "ema_decay=1.0", "reinit_layers=-1",
                                                  "perturb.eq_q_range=[5, 2]"])
    text = str(err.value)
    for name in ("init is required", "ema_decay=1.0", "reinit_layers=-1", "perturb.eq_q_range"):
        assert name in text, name
    cfg = load_config(DisentangleConfig, overrides=["manifest=m.jsonl", "init=runs/hubert/final"])
    assert (cfg.optim.lr, cfg.optim.schedule, cfg.reinit_layers, cfg.ema_decay, cfg.proj_hidden, cfg.proj_dim) == \
        (1e-4, "wsd", 3, 0.999, 2048, 256)


def test_ssl_commands_are_registered(tmp_path, capsys):
    assert {"ssl pretrain", "ssl disentangle"} <= set(COMMANDS)
    assert run_command("ssl pretrain", [str(tmp_path / "missing.jsonl"), f"out_dir={tmp_path}/o",
                                        "device=cpu"]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
