"""Output errors fail early, with the path and the cause (issue 12, item 4), and the done-key mechanism every stage
uses (item 2): inputs' contents in the key, no stale marker after an interrupted run, skips keep their exit status.

Read-only folders and full disks are simulated at the system-call boundary (the tests run as root in CI, where
permission bits do not stop a write), so what is tested is koe's reaction to the errors the OS gives.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from koe.cli import run_command
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.stage import (
    KoeInputError,
    KoeOutputError,
    StageReport,
    atomic_write_text,
    check_writable,
    done_key,
    iter_jsonl,
    mark_done,
    skip_if_done,
)


def _read_only(monkeypatch, folder: Path) -> None:
    real_open = os.open

    def fake_open(path, flags, *args, **kw):
        if str(path).startswith(str(folder)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)


def test_read_only_output_folder_fails_before_the_work(monkeypatch, tmp_path, capsys):
    manifest = tmp_path / "in" / "manifest.jsonl"
    write_manifest(manifest, [Utterance("u1", "u1.wav", 16000, 1.0, text="hello")])
    (tmp_path / "a.ctm").write_text("u1 1 0.1 0.4 hello\n")
    out = tmp_path / "ro" / "aligned.jsonl"
    out.parent.mkdir()
    worked = []
    monkeypatch.setattr("koe.align.run.import_manifest", lambda *a: worked.append(1) or [])
    _read_only(monkeypatch, out.parent)
    code = run_command("align", [str(manifest), "method=ctm", f"alignments={tmp_path / 'a.ctm'}", f"out={out}"])
    assert code == 1 and not worked  # stopped before importing a single alignment
    err = capsys.readouterr().err
    assert f"output folder {out.parent} is not writable: Read-only file system" in err and "Traceback" not in err


def test_full_disk_fails_before_the_work(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(KoeOutputError, match=r"has only 1 MiB free \(the disk is full"):
        StageReport("synth", tmp_path / "out")
    with pytest.raises(KoeOutputError, match="disk is full"):
        check_writable(tmp_path / "elsewhere")


def test_a_write_that_fails_midway_names_the_path_and_cause(monkeypatch, tmp_path):
    def no_space(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)
    target = tmp_path / "summary.json"
    with pytest.raises(KoeOutputError) as err:
        atomic_write_text(target, "{}")
    assert str(target) in str(err.value) and "No space left on device" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_file_in_the_way_of_the_output_folder_is_named(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(KoeOutputError, match="taken"):
        StageReport("eval", tmp_path / "taken" / "out")


def test_done_key_covers_input_contents_not_only_paths(tmp_path):
    data = tmp_path / "manifest.jsonl"
    data.write_text("a\n")
    key = done_key({"k": 1}, [data])
    assert done_key({"k": 1}, [data]) == key
    data.write_text("a\nb\n")
    assert done_key({"k": 1}, [data]) != key
    folder = tmp_path / "units"
    folder.mkdir()
    (folder / "shard-0.npz").write_bytes(b"1")
    key = done_key({}, [folder])
    (folder / "units_encode_summary.json").write_text("{}")  # bookkeeping files do not count
    (folder / ".done").write_text("x")
    assert done_key({}, [folder]) == key
    (folder / "shard-0.npz").write_bytes(b"2")
    assert done_key({}, [folder]) != key


def test_a_skip_keeps_the_summary_and_exit_status_and_a_rerun_clears_the_marker(tmp_path):
    out = tmp_path / "out"
    report = StageReport("units encode", out, items_in=3)
    report.ok(2)
    report.fail("u3", "empty: u3.wav: the file is 0 bytes", "u3.wav")
    report.finish(quiet=True)
    mark_done(out, "k1")
    summary = (out / "units_encode_summary.json").read_text()
    earlier = skip_if_done("units encode", out, "k1", force=False)
    assert earlier is not None and (earlier.items_in, earlier.items_out, earlier.exit_code) == (3, 2, 1)
    assert (out / "units_encode_summary.json").read_text() == summary
    assert skip_if_done("units encode", out, "k1", force=True) is None
    assert not (out / ".done").exists()  # a run that stops midway cannot leave the old marker standing


def test_non_utf8_jsonl_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_bytes('{"id": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(KoeInputError, match=rf"not UTF-8: {path}:1: byte 0xe9 at offset 11"):
        list(iter_jsonl(path))
    with pytest.raises(KoeInputError, match="not UTF-8"):
        read_manifest(path)

