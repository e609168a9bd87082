"""Every shipped training config loads and validates; every shipped accelerate config parses and names its json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from koe.config import load_config
from koe.train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "koe" / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "train").glob("*.yaml")), ids=lambda p: p.name)
def test_train_config_loads(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.max_seq_len >= 64 and cfg.validate() == []


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_config_parses(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    ds = cfg.get("deepspeed_config", {}).get("deepspeed_config_file")
    if ds:
        stage = json.loads((CONFIGS.parents[2] / ds).read_text())["zero_optimization"]["stage"]
        assert f"zero{stage}" in path.name


def test_bad_values_are_reported_together():
    from koe.config import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, None, ["data_dir=d", "max_seq_len=0", "optim.decay_fraction=2",
                                        "optim.frozen_text_steps=5"])
    assert len(e.value.problems) == 3
