"""koe corpus import hf: a tiny datasets dataset saved with save_to_disk, and a local parquet file."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from planted import tone

from koe.audio import load_audio
from koe.corpus.config import ImportConfig
from koe.corpus.importers import run_import
from koe.corpus.manifest import read_manifest

datasets = pytest.importorskip("datasets")


def _wav_bytes(x: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def _rows(tmp_path):
    on_disk = tmp_path / "on_disk.flac"
    sf.write(on_disk, tone(0.5, 22050), 22050)
    nan = tone(0.3, 8000)
    nan[10] = np.nan
    return {
        "id": ["a/1", "b", "c", "d", "e"],
        "audio": [
            {"bytes": _wav_bytes(tone(0.8, 8000), 8000), "path": None},
            {"bytes": None, "path": str(on_disk)},
            {"bytes": _wav_bytes(nan, 8000, "FLOAT"), "path": None},
            {"bytes": _wav_bytes(tone(0.3, 16000), 16000), "path": None},
            {"bytes": b"not audio at all", "path": None},
        ],
        "text": ["first  one", "second", "third", None, "fifth"],
        "speaker_id": [7, 7, 8, 8, 9],
    }


def _dataset(rows):
    # built as a plain struct column then cast: encoding arrays into Audio needs torchcodec
    return datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio())


def test_save_to_disk_dataset_dict(tmp_path):
    rows = _rows(tmp_path)
    valid = {k: v[:1] for k, v in rows.items()}
    valid["id"] = ["v1"]
    datasets.DatasetDict(train=_dataset(rows), validation=_dataset(valid)).save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "out"
    report = run_import(ImportConfig(source="hf", path=tmp_path / "ds", out_dir=out))

    utts = {u.id: u for u in read_manifest(out / "manifest.jsonl")}
    assert set(utts) == {"a_1", "b", "v1"}
    assert (utts["a_1"].text, utts["a_1"].speaker, utts["a_1"].split) == ("first one", "7", "train")
    assert utts["v1"].split == "valid"
    assert utts["b"].meta["source_sample_rate_hz"] == 22050
    for u in utts.values():
        path = u.resolve_audio(out)
        assert path.parent == out / "wav" and sf.info(str(path)).samplerate == 16000 == u.sample_rate_hz
        assert load_audio(path).shape[0] == round(u.duration_s * 16000)
    assert utts["a_1"].duration_s == pytest.approx(0.8, abs=1e-3)
    reasons = {f.item: f.reason.split(":")[0] for f in report.failures}
    assert reasons == {"c": "non-finite", "d": "no transcript", "e": "unsupported format"}
    assert report.exit_code == 1


def test_parquet_file_with_path_column_and_max_duration(tmp_path):
    rows = _rows(tmp_path)
    ds = _dataset({k: v[:2] for k, v in rows.items()})
    ds.to_parquet(str(tmp_path / "data.parquet"))
    out = tmp_path / "out"
    report = run_import(ImportConfig(source="hf", path=tmp_path / "data.parquet", out_dir=out, max_duration_s=0.6))
    assert [u.id for u in read_manifest(out / "manifest.jsonl")] == ["b"]
    assert report.failures[0].item == "a_1" and report.failures[0].reason.startswith("too long:")
