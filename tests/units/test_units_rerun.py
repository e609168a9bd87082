"""Reruns of `koe units encode`: a changed manifest (same path, other contents) is re-encoded; an unchanged one is
skipped without touching the earlier summary (issue 12, item 2)."""

from __future__ import annotations

import dataclasses
import json

from koe.cli import run_command
from koe.corpus.manifest import read_manifest, write_manifest
from koe.units.shards import load_units_meta


def test_encode_rerun_follows_the_manifest_contents(tone_manifest, mfcc_tokenizer, tmp_path):
    utts = read_manifest(tone_manifest)
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, _absolute(utts[:5], tone_manifest.parent))
    out = tmp_path / "units"
    args = [str(manifest), f"tokenizer={mfcc_tokenizer}", f"out_dir={out}", "device=cpu"]
    assert run_command("units encode", args) == 0
    assert load_units_meta(out).num_utterances == 5
    summary = (out / "units_encode_summary.json").read_text()

    assert run_command("units encode", args) == 0  # unchanged: skipped, the summary is the first run's
    assert (out / "units_encode_summary.json").read_text() == summary

    write_manifest(manifest, _absolute(utts, tone_manifest.parent))  # one more utterance, same path
    assert run_command("units encode", args) == 0
    assert load_units_meta(out).num_utterances == len(utts) == 6
    assert json.loads((out / "units_encode_summary.json").read_text())["items_out"] == 6


def _absolute(utts, root):
    return [dataclasses.replace(u, audio_path=str(u.resolve_audio(root).resolve())) for u in utts]
