"""koe corpus import: dir, pattern and LibriSpeech importers, the planted bad files, splits and the FSDD corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import soundfile as sf
from planted import tone, write_planted_corpus

from koe.audio import load_audio
from koe.cli import run_command
from koe.config import ConfigError, load_config
from koe.corpus.config import ImportConfig
from koe.corpus.importers import run_import
from koe.corpus.manifest import read_manifest
from koe.corpus.splits import carve_random_splits, rule_split

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FSDD_TEXT = {str(i): w for i, w in enumerate(DIGITS)}


def _cfg(**kw) -> ImportConfig:
    return load_config(ImportConfig, overrides=[f"{k}={json.dumps(str(v) if isinstance(v, Path) else v)}"
                                                for k, v in kw.items()])


def _reasons(report) -> dict[str, str]:
    return {f.item: f.reason for f in report.failures}


def test_planted_corpus_imports_good_files_and_lists_each_bad_one(tmp_path):
    corpus = write_planted_corpus(tmp_path / "raw")
    report = run_import(_cfg(source="dir", path=corpus.root, out_dir=tmp_path / "out"))

    assert report.exit_code == 1
    utts = {u.id: u for u in read_manifest(tmp_path / "out/manifest.jsonl")}
    assert {i: u.text for i, u in utts.items()} == corpus.good
    reasons = _reasons(report)
    assert set(reasons) == set(corpus.bad)
    for item, kind in corpus.bad.items():
        assert reasons[item].startswith(kind + ":"), (item, reasons[item])
    assert "vad" in reasons["bad-long"]  # the too-long reason says how to cut the file
    stereo = utts["alice-stereo8k"]
    assert (stereo.sample_rate_hz, stereo.speaker) == (8000, "alice")
    assert load_audio(stereo.audio_path).shape[0] == pytest.approx(0.9 * 16000, abs=2)
    assert utts["bob-noise"].sample_rate_hz == 22050 and utts["bob-noise"].duration_s == pytest.approx(1.5)

    summary = json.loads((tmp_path / "out/corpus_import_summary.json").read_text())
    assert (summary["items_in"], summary["items_out"], summary["num_failures"]) == (12, 3, 9)
    assert "\ufffd" not in (tmp_path / "out/manifest.jsonl").read_text()  # nothing decoded with replacement chars
    assert summary["failure_reasons"]["truncated"] == 1
    failures = [json.loads(x) for x in (tmp_path / "out/corpus_import_failures.jsonl").read_text().splitlines()]
    assert {f["item"] for f in failures} == set(corpus.bad)
    assert (tmp_path / "out/config.yaml").is_file()


def test_cli_exit_status_is_1_when_a_file_failed(tmp_path):
    corpus = write_planted_corpus(tmp_path / "raw")
    assert run_command("corpus import", ["dir", f"path={corpus.root}", f"out_dir={tmp_path / 'o1'}"]) == 1
    good_only = ["dir", f"path={corpus.root}", "glob=alice/*", f"out_dir={tmp_path / 'o2'}"]
    assert run_command("corpus import", good_only) == 0
    assert len(read_manifest(tmp_path / "o2/manifest.jsonl")) == 2


def test_without_sample_checks_headers_still_catch_truncation_but_not_nan(tmp_path):
    corpus = write_planted_corpus(tmp_path / "raw")
    report = run_import(_cfg(source="dir", path=corpus.root, out_dir=tmp_path / "out", check_samples=False))
    reasons = _reasons(report)
    assert reasons["bad-truncated"].startswith("truncated:")
    assert "bad-nan" not in reasons  # NaN samples are only visible after decoding: that is what check_samples buys
    assert "bad-nan" in {u.id for u in read_manifest(tmp_path / "out/manifest.jsonl")}


def test_sidecar_rules_lab_labels_empty_text_and_optional_text(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for name in ("a", "b", "c", "d"):
        sf.write(root / f"{name}.wav", tone(0.3, 16000), 16000)
    (root / "a.txt").write_text("  hello\n  world ")
    (root / "a.lab").write_text("ignored because a.txt wins")
    (root / "b.lab").write_text("0.23\t6.76\tspeech\n")  # an Audacity label track, not a transcript
    (root / "c.txt").write_text("\n \n")
    report = run_import(_cfg(source="dir", path=root, out_dir=tmp_path / "o1"))
    assert [(u.id, u.text) for u in read_manifest(tmp_path / "o1/manifest.jsonl")] == [("a", "hello world")]
    reasons = _reasons(report)
    assert reasons["b"].startswith("no transcript:") and reasons["d"].startswith("no transcript:")
    assert reasons["c"].startswith("empty transcript:")

    report = run_import(_cfg(source="dir", path=root, out_dir=tmp_path / "o2", require_text=False))
    texts = {u.id: u.text for u in read_manifest(tmp_path / "o2/manifest.jsonl")}
    assert texts == {"a": "hello world", "b": None, "d": None}
    assert set(_reasons(report)) == {"c"}


def test_pattern_fields_text_map_split_rule_and_mismatch(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for digit, speaker, take in [(3, "ann", 0), (3, "ann", 7), (5, "bo", 4), (5, "bo", 12)]:
        sf.write(root / f"{digit}_{speaker}_{take}.wav", tone(0.2, 8000), 8000)
    sf.write(root / "readme.wav", tone(0.2, 8000), 8000)
    cfg = _cfg(source="pattern", path=root, out_dir=tmp_path / "out", pattern="{text}_{speaker}_{take}",
               text_map={"3": "three"}, split_field="take", split_map={"0-4": "test", "12": "valid"})
    report = run_import(cfg)
    utts = {u.id: u for u in read_manifest(tmp_path / "out/manifest.jsonl")}
    assert {i: (u.text, u.speaker, u.split, u.meta) for i, u in utts.items()} == {
        "3_ann_0": ("three", "ann", "test", {"take": "0"}),
        "3_ann_7": ("three", "ann", "train", {"take": "7"}),
        "5_bo_4": ("5", "bo", "test", {"take": "4"}),
        "5_bo_12": ("5", "bo", "valid", {"take": "12"}),
    }
    assert _reasons(report)["readme"].startswith("pattern mismatch:")


def test_fsdd_all_files_official_test_split_and_seeded_valid(shared_data, tmp_path):
    cfg = _cfg(source="pattern", path=shared_data / "fsdd/recordings", out_dir=tmp_path / "fsdd",
               text_map=FSDD_TEXT, split_field="take", split_map={"0-4": "test"}, valid_fraction=0.1, seed=3)
    report = run_import(cfg)
    assert report.exit_code == 0
    utts = read_manifest(tmp_path / "fsdd/manifest.jsonl")
    assert len(utts) == 3000
    assert {u.speaker for u in utts} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert {u.text for u in utts} == set(FSDD_TEXT.values())
    assert {u.sample_rate_hz for u in utts} == {8000}
    test = [u for u in utts if u.split == "test"]
    assert len(test) == 300 and all(int(u.meta["take"]) <= 4 for u in test)  # 6 speakers x 10 digits x 5 takes
    assert sum(u.split == "valid" for u in utts) == 270  # 10 % of the 2,700 left for training
    again = tmp_path / "again"
    run_import(dataclasses.replace(cfg, out_dir=again, check_samples=False))  # same files, same manifest
    assert (again / "manifest.jsonl").read_text() == (tmp_path / "fsdd/manifest.jsonl").read_text()


def test_fsdd_glob_subset(shared_data, tmp_path):
    cfg = _cfg(source="pattern", path=shared_data / "fsdd/recordings", out_dir=tmp_path / "out",
               glob="7_*_1?.wav", text_map=FSDD_TEXT)
    run_import(cfg)
    utts = read_manifest(tmp_path / "out/manifest.jsonl")
    assert len(utts) == 60 and {u.text for u in utts} == {"seven"}  # takes 10-19 of digit 7, 6 speakers


def test_librispeech_layout(tmp_path):
    root = tmp_path / "LibriSpeech"
    lines = {("train-clean-100", "19", "198"): ["19-198-0000 NORTHANGER ABBEY", "19-198-0001 CHAPTER ONE",
                                                "19-198-0002 NO AUDIO FOR THIS LINE"],
             ("dev-clean", "84", "121"): ["84-121-0000 GO DO YOU HEAR"]}
    for (subset, spk, chap), rows in lines.items():
        d = root / subset / spk / chap
        d.mkdir(parents=True)
        (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(rows) + "\n")
        for row in rows:
            if "NO AUDIO" not in row:
                sf.write(d / f"{row.split()[0]}.flac", tone(0.4, 16000), 16000)
    sf.write(root / "dev-clean/84/121/84-121-0009.flac", tone(0.4, 16000), 16000)  # in no transcript
    report = run_import(_cfg(source="librispeech", path=root, out_dir=tmp_path / "out"))
    utts = {u.id: u for u in read_manifest(tmp_path / "out/manifest.jsonl")}
    assert {i: (u.speaker, u.split, u.text) for i, u in utts.items()} == {
        "19-198-0000": ("19", "train", "NORTHANGER ABBEY"),
        "19-198-0001": ("19", "train", "CHAPTER ONE"),
        "84-121-0000": ("84", "valid", "GO DO YOU HEAR"),
    }
    assert utts["84-121-0000"].meta == {"chapter": "121", "subset": "dev-clean"}
    reasons = _reasons(report)
    assert reasons["19-198-0002"].startswith("missing audio:")
    assert reasons["84-121-0009"].startswith("no transcript:")
    assert report.items_in == 5


def test_rule_split_exact_values_and_ranges():
    table = {"0-4": "test", "dev": "valid", "10-12": "valid"}
    assert [rule_split(v, table) for v in ("0", "4", "5", "11", "dev", "x", "-1")] == [
        "test", "test", None, "valid", "valid", None, None]


def test_random_split_is_seeded_group_disjoint_and_keeps_rule_splits(tmp_path):
    from koe.corpus.manifest import Utterance

    def utts():
        return [Utterance(f"u{i}", f"r{i // 4}.wav", 16000, 1.0, speaker=f"s{i % 10}",
                          split="test" if i < 8 else "train") for i in range(200)]

    a, b = utts(), utts()
    carve_random_splits(a, 0.2, 0.1, "speaker", seed=1)
    carve_random_splits(b, 0.2, 0.1, "speaker", seed=1)
    assert [u.split for u in a] == [u.split for u in b]
    assert all(u.split == "test" for u in a[:8])  # rule-made splits are not touched
    by_speaker: dict[str, set[str]] = {}
    for u in a[8:]:
        by_speaker.setdefault(u.speaker, set()).add(u.split)
    assert all(len(s) == 1 for s in by_speaker.values())
    assert sorted(next(iter(s)) for s in by_speaker.values()).count("valid") == 2  # round(0.2 x 10 speakers)
    c = utts()
    carve_random_splits(c, 0.2, 0.1, "speaker", seed=2)
    assert [u.split for u in c] != [u.split for u in a]


def test_config_problems_are_listed_together():
    with pytest.raises(ConfigError) as e:
        load_config(ImportConfig, overrides=["source=pattern", "pattern=no_fields", "valid_fraction=0.7",
                                             "test_fraction=0.4", "split_map={a: holdout}"])
    text = str(e.value)
    for needle in ("path is required", "no {field}", "valid_fraction + test_fraction", "holdout", "split_field"):
        assert needle in text


def test_missing_input_folder_is_an_input_error(tmp_path):
    code = run_command("corpus import", ["dir", f"path={tmp_path / 'nope'}", f"out_dir={tmp_path / 'o'}"])
    assert code == 2
