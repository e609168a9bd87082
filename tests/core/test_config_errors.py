"""Config problems come in one run with exit 2 (issue 12, items 4 and 5): type errors and range checks together,
required paths named, YAML syntax errors and missing files as messages, not tracebacks."""

from __future__ import annotations

import pytest

from koe.cli import run_command
from koe.config import ConfigError, load_config
from koe.train.config import TrainConfig


def test_type_errors_and_range_checks_are_reported_in_one_run():
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, ["data_dir=d", "micro_batch_size=many", "max_seq_len=0", "epochs=-1",
                                        "optim.decay_fraction=2", "optim.lr=fast"])
    text = str(err.value)
    for needle in ("micro_batch_size='many'", "optim.lr='fast'",  # type errors
                   "max_seq_len=0 must be >= 1", "epochs=-1", "optim.decay_fraction=2"):  # range checks
        assert needle in text, needle
    assert len(err.value.problems) == 5  # a bad-typed option is not reported a second time by the range checks


def test_a_missing_required_path_is_named_not_replaced_by_a_default():
    with pytest.raises(ConfigError, match="data_dir is required"):
        load_config(TrainConfig, None, ["max_seq_len=0"])
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, ["max_seq_len=0"])
    assert any("max_seq_len=0" in p for p in err.value.problems)  # and the other problems still come with it


def test_yaml_syntax_error_exits_2_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "train.yaml"
    bad.write_text("data_dir: runs/data\nmodel:\n  name_or_path: [unclosed\nmax_seq_len: 64\n")
    assert run_command("train", [str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "not valid YAML" in err and "Traceback" not in err


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert run_command("train", [str(tmp_path / "nope.yaml"), "max_seq_len=0"]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml not found" in err and "max_seq_len=0" in err and "Traceback" not in err
