"""Importers: hand-written TextGrid (long and short), CTM and WhisperX files, and `koe align` with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koe.align.config import AlignConfig
from koe.align.importers import load_alignments, place_alignment, read_ctm, read_textgrid, read_whisperx
from koe.align.run import run_align
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.stage import KoeInputError

LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.2
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.2
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.5
            text = "hello"
        intervals [3]:
            xmin = 0.5
            xmax = 1.0
            text = "world"
        intervals [4]:
            xmin = 1.0
            xmax = 1.2
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.2
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = "sil"
        intervals [2]:
            xmin = 0.1
            xmax = 0.3
            text = "HH"
        intervals [3]:
            xmin = 0.3
            xmax = 0.5
            text = "AH0"
        intervals [4]:
            xmin = 0.5
            xmax = 1.0
            text = "W"
        intervals [5]:
            xmin = 1.0
            xmax = 1.2
            text = "sp"
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.2
<exists>
2
"IntervalTier"
"speaker1 - words"
0
1.2
3
0
0.2
""
0.2
0.7
"say ""yes"""
0.7
1.2
"now"
"TextTier"
"events"
0
1.2
1
0.5
"click"
'''


def test_textgrid_long_format_words_and_phones(tmp_path: Path) -> None:
    path = tmp_path / "a.TextGrid"
    path.write_text(LONG_TEXTGRID)
    got = read_textgrid(path)
    assert got.words == [("hello", 0.1, 0.5), ("world", 0.5, 1.0)]
    assert got.phones == [("HH", 0.1, 0.3), ("AH0", 0.3, 0.5), ("W", 0.5, 1.0)]


def test_textgrid_short_format_utf16_speaker_tier_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "b.TextGrid"
    path.write_bytes(SHORT_TEXTGRID.encode("utf-16"))
    got = read_textgrid(path)
    assert got.words == [('say "yes"', 0.2, 0.7), ("now", 0.7, 1.2)]
    assert got.phones is None


def test_textgrid_without_words_tier_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.TextGrid"
    path.write_text(LONG_TEXTGRID.replace('"words"', '"tokens"'))
    with pytest.raises(KoeInputError, match="no 'words' interval tier"):
        read_textgrid(path)


def test_ctm_groups_by_utterance_and_skips_silence(tmp_path: Path) -> None:
    path = tmp_path / "a.ctm"
    path.write_text(";; comment\nu2 1 0.50 0.30 there 0.9\nu1 1 0.10 0.20 hi\n"
                    "u1 1 0.30 0.10 <eps>\nu2 1 0.20 0.30 hi\n")
    got = read_ctm(path)
    assert got["u1"].words == [("hi", 0.1, pytest.approx(0.3))]
    assert [w for w, _, _ in got["u2"].words] == ["hi", "there"]
    path.write_text("u1 1 0.1 hi\n")
    with pytest.raises(KoeInputError, match=r"a\.ctm:1"):
        read_ctm(path)


def test_whisperx_words_and_untimed_word(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"segments": [{"start": 0, "end": 1, "text": " Hi, there.",
                                              "words": [{"word": "Hi,", "start": 0.1, "end": 0.3, "score": 0.9},
                                                        {"word": "there.", "start": 0.35, "end": 0.8}]}]}))
    assert read_whisperx(path).words == [("Hi,", 0.1, 0.3), ("there.", 0.35, 0.8)]
    path.write_text(json.dumps({"segments": [{"words": [{"word": "1990"}]}]}))
    assert isinstance(load_alignments("whisperx", tmp_path)["a"], KoeInputError)


def test_place_by_file_stem_shifts_into_the_segment(tmp_path: Path) -> None:
    path = tmp_path / "long.TextGrid"
    path.write_text(LONG_TEXTGRID)
    utt = Utterance("seg1", "long.wav", 16000, duration_s=0.6, offset_s=0.5)
    words, phones = place_alignment(utt, read_textgrid(path), by_file=True)
    assert words == [("world", 0.0, pytest.approx(0.5))]
    assert phones == [("W", 0.0, pytest.approx(0.5))]
    with pytest.raises(KoeInputError, match="outside"):
        place_alignment(Utterance("x", "x.wav", 16000, duration_s=0.6), read_textgrid(path), by_file=False)


def test_run_align_textgrid_fills_matching_utterances_and_lists_the_rest(tmp_path: Path) -> None:
    (tmp_path / "mfa").mkdir()
    (tmp_path / "mfa" / "u1.TextGrid").write_text(LONG_TEXTGRID)
    (tmp_path / "mfa" / "file2.TextGrid").write_text(LONG_TEXTGRID)
    (tmp_path / "mfa" / "u3.TextGrid").write_text(LONG_TEXTGRID)
    utts = [
        Utterance("u1", "wav/u1.wav", 16000, 1.2, text="Hello, world!"),
        Utterance("u2", "wav/file2.wav", 16000, 1.2),  # matched by file stem; text taken from the alignment
        Utterance("u3", "wav/u3.wav", 16000, 1.2, text="goodbye world"),  # transcript differs: mismatch
        Utterance("u4", "wav/u4.wav", 16000, 1.2, text="hello"),  # nothing to import
    ]
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, utts)
    report = run_align(AlignConfig(manifest=manifest, method="textgrid", alignments=tmp_path / "mfa"))
    out = {u.id: u for u in read_manifest(tmp_path / "manifest.aligned.jsonl")}
    assert sorted(out) == ["u1", "u2"]
    assert out["u1"].words == [("hello", 0.1, 0.5), ("world", 0.5, 1.0)]
    assert out["u1"].phones[0] == ("HH", 0.1, 0.3)
    assert out["u2"].text == "hello world"
    reasons = {f.item: f.reason for f in report.failures}
    assert reasons["u3"].startswith("mismatch:") and reasons["u4"].startswith("no-alignment:")
    assert report.extra["coverage"] == 0.5
    assert (tmp_path / "align_failures.jsonl").read_text().count("\n") == 2
    assert (tmp_path / "align_config.yaml").exists()


def test_run_align_ctm_into_another_folder_rebases_audio_paths(tmp_path: Path) -> None:
    (tmp_path / "a.ctm").write_text("u1 1 0.1 0.4 hello\nu1 1 0.5 0.5 world\n")
    manifest = tmp_path / "data" / "manifest.jsonl"
    manifest.parent.mkdir()
    write_manifest(manifest, [Utterance("u1", "wav/u1.wav", 16000, 1.2, text="hello world")])
    out = tmp_path / "aligned" / "m.jsonl"
    report = run_align(AlignConfig(manifest=manifest, out=out, method="ctm", alignments=tmp_path / "a.ctm"))
    assert report.exit_code == 0
    (utt,) = read_manifest(out)
    assert utt.resolve_audio(out.parent).resolve() == (manifest.parent / "wav" / "u1.wav").resolve()
    assert utt.phones is None and [w for w, _, _ in utt.words] == ["hello", "world"]


def test_config_validation_names_the_options() -> None:
    problems = AlignConfig(manifest=Path("m.jsonl"), method="ctm", num_workers=0).validate()
    assert any("alignments" in p for p in problems) and any("num_workers" in p for p in problems)


def test_rerun_with_same_config_and_input_is_skipped_until_forced(tmp_path: Path) -> None:
    (tmp_path / "a.ctm").write_text("u1 1 0.1 0.4 hello\n")
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, [Utterance("u1", "u1.wav", 16000, 1.0, text="hello")])
    cfg = AlignConfig(manifest=manifest, method="ctm", alignments=tmp_path / "a.ctm")
    run_align(cfg)
    out = tmp_path / "manifest.aligned.jsonl"
    out.write_text(out.read_text().replace('"hello", 0.1', '"hello", 0.2'))  # would be undone by a real rerun
    assert run_align(cfg).items_out == 1 and '"hello", 0.2' in out.read_text()
    cfg.force = True
    run_align(cfg)
    assert '"hello", 0.1' in out.read_text()
