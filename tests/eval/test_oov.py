"""Out-of-vocabulary shares in eval results (issue 12, item 6): the words a benchmark needs that the model never
read, found through the model's training config and data dir, reported per benchmark, warned above a threshold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml
from eval_helpers import tiny_model
from test_run import bench  # noqa: F401  (the module-scoped benchmark fixture)

from koe.bench.items import read_items
from koe.cli import run_command
from koe.data.words import words_of, write_text_vocab
from koe.eval.oov import item_words, training_vocabulary


def _trained(root: Path, name: str, words: list[str], init: str | None) -> Path:
    """The layout `koe train` leaves: out_dir/config.yaml (data_dir, model.name_or_path) beside out_dir/final."""
    data = root / f"data_{name}"
    write_text_vocab(data, Counter(words))
    (root / name / "final").mkdir(parents=True)
    (root / name / "config.yaml").write_text(yaml.safe_dump({"data_dir": str(data), "model": {"name_or_path": init}}))
    return root / name / "final"


def test_words_are_lower_cased_runs_of_letters():
    assert words_of("Who's the KING, of <u12> the hill?") == ["who's", "the", "king", "of", "u12", "the", "hill"]


def test_training_vocabulary_follows_the_init_chain(tmp_path):
    text_lm = _trained(tmp_path, "text_lm", ["the", "red", "dog"], None)
    speech = _trained(tmp_path, "speech", [], str(text_lm))  # a speech-only build reads no text itself
    vocab = training_vocabulary(speech)
    assert vocab.words == {"the", "red", "dog"} and vocab.reason is None and len(vocab.sources) == 2
    hub = _trained(tmp_path, "hub", ["cat"], "Qwen/Qwen2.5-0.5B")
    assert training_vocabulary(hub).words is None and "outside koe" in training_vocabulary(hub).reason
    assert training_vocabulary(tmp_path / "nowhere").words is None


def test_eval_reports_oov_share_per_benchmark_and_warns(bench, tmp_path, capsys):  # noqa: F811
    model = tiny_model(tmp_path / "run" / "final")
    qa_words = {w for it in read_items(bench / "qa-triviaqa") for w in item_words(it)}
    (tmp_path / "data").mkdir()
    write_text_vocab(tmp_path / "data", Counter(sorted(qa_words)))  # the model "read" exactly the QA words
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"),
                                                                  "model": {"name_or_path": None}}))
    out = tmp_path / "eval"
    code = run_command("eval", [str(model), f"bench=[{bench}]", f"out_dir={out}", "device=cpu", "bootstrap=20",
                                "modalities=[text]", "qa_generate=false"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    qa, story = res["benchmarks"]["qa-triviaqa"]["oov"], res["benchmarks"]["semantic-sstorycloze"]["oov"]
    assert qa["oov_type_share"] == 0 and qa["warning"] is False
    assert story["oov_type_share"] > 0.1 and story["warning"] is True and story["num_oov_types"] > 0
    assert set(story["examples"]) <= {w for it in read_items(bench / "semantic-sstorycloze") for w in item_words(it)}
    err = capsys.readouterr().err
    assert "WARNING: semantic-sstorycloze" in err and "WARNING: qa-triviaqa" not in err
    assert "## Words unseen in the training text" in (out / "results.md").read_text()


def test_unknown_training_text_is_na_with_the_reason(bench, tmp_path):  # noqa: F811
    model = tiny_model(tmp_path / "hub_model")
    out = tmp_path / "eval"
    assert run_command("eval", [str(model), f"bench=[{bench / 'qa-triviaqa'}]", f"out_dir={out}", "device=cpu",
                                "bootstrap=20", "modalities=[text]", "qa_generate=false"]) == 0
    oov = json.loads((out / "results.json").read_text())["benchmarks"]["qa-triviaqa"]["oov"]
    assert oov["status"] == "n/a" and "training text is unknown" in oov["reason"]
