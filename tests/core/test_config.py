from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from koe.config import ConfigError, help_text, load_config, save_config


@dataclass
class Optim:
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})


@dataclass
class Example:
    name: str = "x"
    steps: int = 10
    voices: list[str] = field(default_factory=lambda: ["en"])
    out_dir: Path = Path("out")
    mode: Literal["a", "b"] = "a"
    limit: float | None = None
    optim: Optim = field(default_factory=Optim)

    def validate(self) -> list[str]:
        return ["steps must be positive"] if self.steps <= 0 else []


def test_defaults_yaml_then_overrides(tmp_path):
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("steps: 5\noptim:\n  lr: 0.5\nvoices: [en-us, en+m3]\n")
    cfg = load_config(Example, yaml_path, ["steps=7", "optim.lr=2", "out_dir=runs/a", "limit=3"])
    assert cfg.steps == 7
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)
    assert cfg.voices == ["en-us", "en+m3"]
    assert cfg.out_dir == Path("runs/a")
    assert cfg.limit == 3.0


def test_all_problems_reported_together():
    with pytest.raises(ConfigError) as err:
        load_config(Example, None, ["stepz=1", "steps=many", "mode=c", "optim.beta=1", "noequals"])
    problems = err.value.problems
    assert len(problems) == 5
    text = str(err.value)
    for needle in ("stepz", "steps='many'", "mode='c'", "optim.beta", "noequals"):
        assert needle in text


def test_validate_runs_after_build():
    with pytest.raises(ConfigError, match="steps must be positive"):
        load_config(Example, None, ["steps=0"])


def test_help_lists_nested_fields_and_docs():
    text = help_text(Example)
    assert "optim.lr=0.001" in text and "peak learning rate" in text


def test_save_config_round_trips(tmp_path):
    cfg = load_config(Example, None, ["steps=3"])
    path = save_config(cfg, tmp_path)
    again = load_config(Example, path)
    assert again == cfg


def test_string_fields_take_command_line_text_verbatim():
    @dataclass
    class Strings:
        pattern: str = ""
        name: str | None = "x"
        flags: list[str] = field(default_factory=list)

    cfg = load_config(Strings, None, ["pattern={text}_{speaker}_{take}", "name=null", "flags=[a, '{b}']"])
    assert cfg.pattern == "{text}_{speaker}_{take}" and cfg.name is None and cfg.flags == ["a", "{b}"]
    cfg = load_config(Strings, None, ["pattern=yes", "name=007"])
    assert cfg.pattern == "yes" and cfg.name == "007"
    cfg = load_config(Strings, None, ["pattern='{a}'", 'name="two words"'])
    assert cfg.pattern == "{a}" and cfg.name == "two words"


def test_a_nested_configs_default_factory_is_the_base_that_overrides_apply_to():
    """SftConfig's optimiser defaults (cosine, no weight decay) come from its default_factory; an override of one
    option keeps the others (they used to fall back to OptimConfig's class defaults: WSD, weight decay 0.1)."""
    from koe.config import load_config
    from koe.sft.config import SftConfig

    default = load_config(SftConfig, None, ["model=m", "examples=e"])
    assert (default.optim.schedule, default.optim.weight_decay, default.optim.lr) == ("cosine", 0.0, 1e-3)
    tuned = load_config(SftConfig, None, ["model=m", "examples=e", "optim.lr=5e-4"])
    assert (tuned.optim.schedule, tuned.optim.weight_decay, tuned.optim.lr) == ("cosine", 0.0, 5e-4)


def test_help_shows_the_defaults_a_nested_default_factory_gives():
    from koe.config import help_text
    from koe.sft.config import SftConfig

    lines = help_text(SftConfig).splitlines()
    assert any(line.strip().startswith('optim.schedule="cosine"') for line in lines)
    assert any(line.strip().startswith("optim.weight_decay=0.0") for line in lines)
