"""`koe synth`: the files it writes, reproducibility across runs and worker counts, and listed failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from koe.cli import run_command
from koe.config import load_config
from koe.corpus.manifest import read_manifest
from koe.corpus.text import TextItem, write_text_items
from koe.synth.config import DEFAULT_VOICES, SynthConfig
from koe.synth.espeak import normalize_text
from koe.synth.synthesize import run_synth

GOOD = [
    TextItem("s1", "The red dog runs to the old tree.", kind="statement", meta={"topic": "dog"}),
    TextItem("s2", "Is the cat on the mat?", kind="question", split="valid"),
    TextItem("s3", "Once upon a time, a small fox lived by the river. It was happy!", kind="story", split="test"),
]
BAD = [
    TextItem("b1", "...", kind="statement"),
    TextItem("b2", "Cats & dogs.", kind="statement"),
    TextItem("b3", "A fine day.", split="holdout"),
    TextItem("s1", "A duplicate id."),
]


def _config(tmp_path: Path, name: str, items: list[TextItem], **overrides) -> SynthConfig:
    source = tmp_path / "items.jsonl"
    write_text_items(source, items)
    args = [f"source={source}", f"out_dir={tmp_path / name}", "num_workers=1"]
    args += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(SynthConfig, overrides=args)


def test_writes_documented_files_with_timed_words(tmp_path):
    cfg = _config(tmp_path, "out", GOOD, voices_per_item=2, seed=3)
    report = run_synth(cfg)
    out = tmp_path / "out"
    assert report.exit_code == 0 and report.items_out == 6
    assert {p.name for p in out.iterdir()} >= {"wav", "manifest.jsonl", "config.yaml", "synth_summary.json",
                                                "synth_failures.jsonl"}
    utts = read_manifest(out / "manifest.jsonl")
    assert len(utts) == 6 and len({u.id for u in utts}) == 6
    by_item = {}
    for u in utts:
        by_item.setdefault(u.meta["item_id"], []).append(u)
        item = next(i for i in GOOD if i.id == u.meta["item_id"])
        assert u.text == normalize_text(item.text) == " ".join(w for w, _, _ in u.words)
        assert u.split == item.split and u.speaker == u.meta["voice"] and u.meta["kind"] == item.kind
        assert 145 <= u.meta["rate_wpm"] <= 205 and 35 <= u.meta["pitch"] <= 65
        audio, sr = sf.read(out / u.audio_path, dtype="float32")
        assert sr == u.sample_rate_hz == 16000 and sf.info(out / u.audio_path).subtype == "PCM_16"
        assert abs(len(audio) / sr - u.duration_s) < 1e-3
        assert 0 <= u.words[0][1] < u.words[-1][2] <= u.duration_s and u.phones
    assert by_item["s1"][0].meta["topic"] == "dog"
    assert all(len({u.speaker for u in us}) == 2 for us in by_item.values())
    summary = json.loads((out / "synth_summary.json").read_text())
    assert summary["num_voices"] >= 2 and summary["total_audio_s"] > 5 and summary["realtime_factor_per_core"] > 0
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 3


def test_bad_items_are_listed_not_dropped(tmp_path):
    report = run_synth(_config(tmp_path, "out", GOOD + BAD))
    assert report.exit_code == 1 and report.items_out == 3 and report.items_in == 3 + len(BAD)
    failures = [json.loads(x) for x in (tmp_path / "out" / "synth_failures.jsonl").read_text().splitlines()]
    reasons = {f["item"].split("-")[0]: f["reason"].split(":")[0] for f in failures}
    assert reasons == {"b1": "empty-text", "b2": "spoken-symbol", "b3": "bad-split", "s1": "duplicate-id"}
    assert len(read_manifest(tmp_path / "out" / "manifest.jsonl")) == 3


def test_same_seed_same_output_for_any_worker_count(tmp_path):
    runs = [("one", {"num_workers": 1}), ("two", {"num_workers": 2}), ("again", {"num_workers": 1})]
    for name, extra in runs:
        run_synth(_config(tmp_path, name, GOOD, seed=11, **extra))
    manifests = [(tmp_path / name / "manifest.jsonl").read_text() for name, _ in runs]
    assert manifests[0] == manifests[1] == manifests[2]
    for u in read_manifest(tmp_path / "one" / "manifest.jsonl"):
        ref = (tmp_path / "one" / u.audio_path).read_bytes()
        assert ref == (tmp_path / "two" / u.audio_path).read_bytes() == (tmp_path / "again" / u.audio_path).read_bytes()
    other = run_synth(_config(tmp_path, "seed12", GOOD, seed=12))
    assert other.exit_code == 0
    assert (tmp_path / "seed12" / "manifest.jsonl").read_text() != manifests[0]


def test_default_voices_are_distinct_and_all_work(tmp_path):
    assert len(set(DEFAULT_VOICES)) >= 8
    item = [TextItem("v", "The red dog runs.")]
    cfg = _config(tmp_path, "out", item, voices_per_item=len(DEFAULT_VOICES))
    report = run_synth(cfg)
    assert report.exit_code == 0 and report.extra["num_voices"] == len(DEFAULT_VOICES)
    audios = {sf.read(p)[0].tobytes() for p in (tmp_path / "out" / "wav").glob("*.wav")}
    assert len(audios) == len(DEFAULT_VOICES)


def test_rerun_skips_unless_forced(tmp_path):
    cfg = _config(tmp_path, "out", GOOD[:1])
    run_synth(cfg)
    wav = next((tmp_path / "out" / "wav").glob("*.wav"))
    wav.write_bytes(b"")
    assert "skipped" in run_synth(cfg).extra and wav.stat().st_size == 0
    cfg.force = True
    assert run_synth(cfg).items_out == 1 and wav.stat().st_size > 0


def test_cli_entry_writes_files_and_exit_code(tmp_path):
    source = tmp_path / "lines.txt"
    source.write_text("The old fox sees a river.\n\nA bird can sing.\n")
    code = run_command("synth", [f"source={source}", f"out_dir={tmp_path / 'cli'}", "num_workers=1",
                                 "voices=[en-us,en+m3]"])
    assert code == 0
    utts = read_manifest(tmp_path / "cli" / "manifest.jsonl")
    assert [u.meta["item_id"] for u in utts] == ["lines-000001", "lines-000003"]
    assert all((tmp_path / "cli" / u.audio_path).exists() for u in utts)
    assert run_command("synth", [f"source={source}", "voices=[en-us,xx-none]", f"out_dir={tmp_path / 'bad'}",
                                 "num_workers=1", "voices_per_item=2"]) == 1
    assert run_command("synth", ["source=notes.md"]) == 2  # config error: not .txt/.jsonl


def test_tinyspeech_source(tmp_path):
    report = run_synth(load_config(SynthConfig, overrides=[f"out_dir={tmp_path / 'tiny'}", "num_items=6",
                                                           "num_workers=1", "seed=1"]))
    utts = read_manifest(tmp_path / "tiny" / "manifest.jsonl")
    assert report.extra["text_items"] == 6 and len(utts) + len(report.failures) == 6
    assert len(utts) >= 5 and all(u.words and u.phones for u in utts)
    assert np.mean([u.duration_s for u in utts]) > 0.5


def test_text_only_facts_are_not_spoken(tmp_path):
    from koe.config import load_config
    from koe.corpus.manifest import read_manifest
    from koe.corpus.text import TextItem, write_text_items
    from koe.synth.config import SynthConfig
    from koe.synth.synthesize import run_synth

    items = [TextItem("a", "the dog runs ."), TextItem("b", "the capital of zorp is mib .", kind="fact",
                                                          meta={"fact_split": "text_only"})]
    write_text_items(tmp_path / "t.jsonl", items)
    cfg = load_config(SynthConfig, None, [f"source={tmp_path / 't.jsonl'}", f"out_dir={tmp_path / 'out'}",
                                          "num_workers=1"])
    report = run_synth(cfg)
    assert [u.id.split("-")[0] for u in read_manifest(tmp_path / "out" / "manifest.jsonl")] == ["a"]
    assert report.extra["items_kept_text_only"] == 1 and report.exit_code == 0
