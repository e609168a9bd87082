"""Unit shards: the documented arrays, round trips, unit times, and loud errors for missing or broken shards."""

from __future__ import annotations

import numpy as np
import pytest

from koe.stage import KoeInputError
from koe.units.shards import (
    UnitRecord,
    UnitsMeta,
    load_units_meta,
    read_unit_shard,
    read_unit_shards,
    unit_times,
    write_unit_shard,
    write_units_meta,
)


def _records() -> list[UnitRecord]:
    return [UnitRecord("a", [3, 1, 3], [2, 1, 4]), UnitRecord("b-é", [], []), UnitRecord("c", [7], [5])]


def test_shard_arrays_are_the_documented_ones(tmp_path):
    assert write_unit_shard(tmp_path / "shard-00000.npz", _records()) == 3
    with np.load(tmp_path / "shard-00000.npz") as z:
        assert sorted(z.files) == ["durations", "ids", "offsets", "units"]
        assert z["ids"].dtype.kind == "U" and z["ids"].tolist() == ["a", "b-é", "c"]
        assert z["offsets"].dtype == np.int64 and z["offsets"].tolist() == [0, 3, 3, 4]
        assert z["units"].dtype == np.int32 and z["units"].tolist() == [3, 1, 3, 7]
        assert z["durations"].dtype == np.int32 and z["durations"].tolist() == [2, 1, 4, 5]


def test_round_trip_through_meta(tmp_path):
    write_unit_shard(tmp_path / "shard-00000.npz", _records()[:2])
    write_unit_shard(tmp_path / "shard-00001.npz", _records()[2:])
    meta = UnitsMeta(tokenizer_hash="0123456789abcdef", tokenizer_dir="tok", num_units=8, frame_rate_hz=50.0,
                     manifest="m.jsonl", num_shards=2, num_utterances=3)
    write_units_meta(tmp_path, meta)
    assert load_units_meta(tmp_path) == meta
    got = list(read_unit_shards(tmp_path))
    assert [r.id for r in got] == ["a", "b-é", "c"]
    assert got[0].units.tolist() == [3, 1, 3] and got[0].durations.tolist() == [2, 1, 4]
    assert got[1].units.dtype == np.int32 and len(got[1].units) == 0
    (tmp_path / "shard-00001.npz").unlink()
    with pytest.raises(KoeInputError, match="missing"):
        list(read_unit_shards(tmp_path))


def test_empty_shard(tmp_path):
    write_unit_shard(tmp_path / "s.npz", [])
    assert list(read_unit_shard(tmp_path / "s.npz")) == []


def test_broken_inputs(tmp_path):
    with pytest.raises(KoeInputError, match=r"no meta\.json"):
        load_units_meta(tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(KoeInputError, match="unreadable"):
        list(read_unit_shard(tmp_path / "bad.npz"))
    np.savez(tmp_path / "odd.npz", ids=np.array(["a"]), offsets=np.array([0, 5]), units=np.zeros(2, np.int32),
             durations=np.ones(2, np.int32))
    with pytest.raises(KoeInputError, match="corrupt"):
        list(read_unit_shard(tmp_path / "odd.npz"))
    with pytest.raises(ValueError, match="differ"):
        UnitRecord("x", [1, 2], [1])


def test_unit_times():
    start_s, end_s = unit_times(np.array([2, 1, 4], np.int32), 50.0)
    np.testing.assert_allclose(start_s, [0.0, 0.04, 0.06])
    np.testing.assert_allclose(end_s, [0.04, 0.06, 0.14])
