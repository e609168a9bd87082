"""The CLI's error policy (issue 12, item 4): no exception escapes `koe` as a bare traceback.

config or input problem -> message, exit 2; output that cannot be written -> path and cause, exit 1; any other
exception -> one line naming its type, a hint, exit 1; the traceback only with KOE_DEBUG=1.
"""

from __future__ import annotations

import errno
import subprocess
import sys

from koe import cli


def _boom(cfg):
    raise RuntimeError("an unforeseen failure deep inside")


def test_unexpected_error_is_a_message_with_a_hint_and_exit_1(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("koe.units.stats.run_stats", _boom)
    monkeypatch.delenv("KOE_DEBUG", raising=False)
    assert cli.run_command("units stats", [str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unexpected error: RuntimeError: an unforeseen failure deep inside" in err
    assert "KOE_DEBUG=1" in err and "Traceback" not in err


def test_koe_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("koe.units.stats.run_stats", _boom)
    monkeypatch.setenv("KOE_DEBUG", "1")
    assert cli.run_command("units stats", [str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "_boom" in err


def test_os_error_names_the_file_and_cause(monkeypatch, capsys, tmp_path):
    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "big.npz"))

    monkeypatch.setattr("koe.units.stats.run_stats", full)
    assert cli.run_command("units stats", [str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'big.npz'}: No space left on device" in err and "disk is full" in err


def test_the_koe_command_exits_2_on_a_config_file_error_without_a_traceback(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("k: [1, 2\n")
    done = subprocess.run([sys.executable, "-m", "koe", "units", "fit", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2 and "not valid YAML" in done.stderr and "Traceback" not in done.stderr


def test_a_library_write_error_on_a_full_disk_says_the_disk_is_full(monkeypatch, capsys, tmp_path):
    import shutil
    from collections import namedtuple

    def torch_like(cfg):  # what torch.save prints when its stream writer hits a full disk: no path, no cause
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr("koe.units.stats.run_stats", torch_like)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("u", "total used free")(1 << 30, 1 << 30, 0))
    assert cli.run_command("units stats", [str(tmp_path), f"out_dir={tmp_path / 'stats'}"]) == 1
    err = capsys.readouterr().err
    assert f"the disk holding {tmp_path / 'stats'} has only 0 MiB free" in err and "Traceback" not in err
