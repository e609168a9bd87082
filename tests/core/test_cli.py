import subprocess
import sys

import pytest

from koe import cli
from koe.config import load_config


def test_top_level_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "koe", "--help"], capture_output=True, text=True, check=True).stdout
    for name in cli.COMMANDS:
        assert f"koe {name}" in out


def test_help_does_not_import_torch():
    code = "import sys; from koe import cli; cli._usage(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_help_and_loadable_config(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*name.split(), "--help"])
    assert done.value.code == 0
    assert "options:" in capsys.readouterr().out
    cfg_cls = cli._load(cli.COMMANDS[name].config)
    positional = cli.COMMANDS[name].positional
    # Every config must build from defaults alone or name what is missing.
    try:
        load_config(cfg_cls, None, [f"{positional}=x"] if positional else [])
    except Exception as e:  # a ConfigError naming the missing option is fine; anything else is a bug
        assert type(e).__name__ == "ConfigError", e


def test_flag_forms_are_normalised():
    assert cli._normalise(["--num-workers", "2", "--out_dir=x", "k=v"]) == ["num_workers=2", "out_dir=x", "k=v"]


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["nonsense"])
    assert done.value.code == 2
