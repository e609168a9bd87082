import json

import numpy as np
import pytest
import soundfile as sf

from koe.audio import load_audio, probe_audio
from koe.stage import KoeInputError, StageReport, config_hash, is_done, mark_done


def test_report_lists_failures_and_sets_exit_code(tmp_path, capsys):
    report = StageReport("units encode", tmp_path, items_in=3)
    report.ok()
    report.fail("b", "empty: b.wav: no frames", path="b.wav")
    report.fail("c", "too long: c.wav: 1200 s")
    report.finish()
    assert report.exit_code == 1
    summary = json.loads((tmp_path / "units_encode_summary.json").read_text())
    assert summary["items_in"] == 3 and summary["items_out"] == 1 and summary["num_failures"] == 2
    assert summary["failure_reasons"] == {"empty": 1, "too long": 1}
    failures = [json.loads(x) for x in (tmp_path / "units_encode_failures.jsonl").read_text().splitlines()]
    assert [f["item"] for f in failures] == ["b", "c"]
    assert "FAILED b (b.wav): empty" in capsys.readouterr().err


def test_done_markers(tmp_path):
    key = config_hash({"a": 1})
    assert not is_done(tmp_path, key)
    mark_done(tmp_path, key)
    assert is_done(tmp_path, key) and not is_done(tmp_path, config_hash({"a": 2}))


def test_load_resamples_and_mixes(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 0.5
    sf.write(tmp_path / "s.wav", stereo, 8000)
    wav = load_audio(tmp_path / "s.wav")
    assert wav.dtype == np.float32 and wav.ndim == 1 and abs(len(wav) - 16000) <= 1
    assert probe_audio(tmp_path / "s.wav").num_channels == 2
    seg = load_audio(tmp_path / "s.wav", offset_s=0.25, duration_s=0.5)
    assert abs(len(seg) - 8000) <= 1


@pytest.mark.parametrize("kind", ["unsupported format", "empty", "non-finite", "too long", "truncated"])
def test_bad_audio_gets_a_named_reason(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "unsupported format":
        path.write_text("not audio")
    elif kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    elif kind == "non-finite":
        x = np.zeros(1600, dtype=np.float32)
        x[10] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    elif kind == "too long":
        sf.write(path, np.zeros(16000 * 3, dtype=np.float32), 16000)
    else:
        sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
        path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(KoeInputError) as err:
        load_audio(path, max_duration_s=2.0)
    assert str(err.value).startswith(kind) and str(path) in str(err.value)
