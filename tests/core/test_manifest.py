import json

import pytest

from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.corpus.text import TextItem, read_text_items, write_text_items
from koe.stage import KoeInputError


def _utt(i: int) -> Utterance:
    return Utterance(id=f"u{i}", audio_path=f"wav/u{i}.wav", sample_rate_hz=16000, duration_s=1.5, speaker="s1",
                     text="hello world", words=[("hello", 0.1, 0.5), ("world", 0.55, 1.2)], split="train")


def test_round_trip(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [_utt(1), _utt(2)])
    back = read_manifest(path)
    assert back == [_utt(1), _utt(2)]
    assert back[0].resolve_audio(tmp_path) == tmp_path / "wav/u1.wav"
    line = json.loads(path.read_text().splitlines()[0])
    assert line["schema_version"] == 1 and line["words"][0] == ["hello", 0.1, 0.5]


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(KoeInputError, match="duplicate"):
        write_manifest(tmp_path / "m.jsonl", [_utt(1), _utt(1)])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"id": "a"}', "missing audio_path"),
        ('{"id": "a", "audio_path": "x", "sample_rate_hz": 1, "duration_s": 1, "colour": 1}', "unknown field"),
        ('{"id": "a", "audio_path": "x", "sample_rate_hz": 1, "duration_s": 1, "words": [["w", 2, 1]]}',
         "ends before it starts"),
        ('{"id": "a", "audio_path": "x", "sample_rate_hz": 1, "duration_s": 1, "split": "dev"}', "split"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_utt(0).to_dict()) + "\n" + line + "\n")
    with pytest.raises(KoeInputError, match=message) as err:
        read_manifest(path)
    assert f"{path}:2" in str(err.value)


def test_text_items_jsonl_and_plain(tmp_path):
    items = [TextItem("a", "one two", kind="story", meta={"topic": "fox"}), TextItem("b", "three")]
    write_text_items(tmp_path / "t.jsonl", items)
    assert read_text_items(tmp_path / "t.jsonl") == items
    (tmp_path / "plain.txt").write_text("first line\n\nsecond line\n")
    plain = read_text_items(tmp_path / "plain.txt")
    assert [i.text for i in plain] == ["first line", "second line"]
    assert plain[1].id == "plain-000003"
