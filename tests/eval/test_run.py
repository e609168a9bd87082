"""End to end: build benchmarks with espeak, evaluate a tiny random Qwen2 through the CLI, check the result files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import tiny_model, tiny_unit_tokenizer, write_stories
from transformers import AutoTokenizer

from koe.bench.build import run_bench_build
from koe.bench.config import BenchBuildConfig
from koe.cli import run_command
from koe.data.shards import MARKER, SPEECH, TEXT, DataMeta, SplitStats, TokenShardWriter, write_data_meta
from koe.data.vocab import SpeechVocab


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    qa = root / "tqa.jsonl"
    qa.write_text("".join(json.dumps({"context": f"Question: What colour is thing {i}?\nAnswer:", "answer": a,
                                      "aliases": []}) + "\n" for i, a in enumerate(["red", "blue", "green", "pink"])))
    cfg = BenchBuildConfig(out_dir=root / "bench", tinyspeech=False, voices=["en-us", "en+m3"],
                           storycloze=write_stories(root / "sc.csv", 3), triviaqa=qa, qa_num_candidates=3)
    assert run_bench_build(cfg).exit_code == 0
    return cfg.out_dir


def _shards(data_dir: Path, model_dir: Path) -> None:
    vocab = SpeechVocab.from_tokenizer(AutoTokenizer.from_pretrained(model_dir))
    rng = np.random.default_rng(0)
    with TokenShardWriter(data_dir, "valid", eos_id=vocab.eos_id) as w:
        for _ in range(3):
            units = (vocab.unit_offset + rng.integers(0, vocab.num_units, 12)).tolist()
            text = rng.integers(5, 200, 6).tolist()
            toks = [vocab.speech_marker_id, *units, vocab.text_marker_id, *text, vocab.eos_id]
            mods = [MARKER] + [SPEECH] * 12 + [MARKER] + [TEXT] * 6 + [MARKER]
            w.add(toks, mods, 2)
    write_data_meta(data_dir, DataMeta(vocab=vocab, splits={"valid": SplitStats()}, seed=0))


def test_eval_end_to_end(bench, tmp_path):
    model = tiny_model(tmp_path / "model")
    units = tiny_unit_tokenizer(tmp_path / "units")
    _shards(tmp_path / "data", model)
    out = tmp_path / "eval"
    code = run_command("eval", [str(model), f"bench=[{bench}]", f"unit_tokenizer={units}", f"out_dir={out}",
                                "device=cpu", "bootstrap=100", "max_new_tokens=4", f"ppl_data={tmp_path / 'data'}"])
    assert torch.is_grad_enabled(), "eval must not switch autograd off for the rest of the process"
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["benchmarks"]) == {"semantic-sstorycloze", "semantic-tstorycloze", "qa-triviaqa"}
    sc = res["benchmarks"]["semantic-sstorycloze"]["conditions"]
    for cond in ("speech_speech", "text_text", "text_speech", "speech_text", "speech_speech/whole"):
        assert sc[cond]["num_groups"] == 3 and 0 <= sc[cond]["accuracy"] <= 1
        assert sc[cond]["ci_low"] <= sc[cond]["accuracy"] <= sc[cond]["ci_high"]
    assert sc["speech_speech"]["num_items"] == 6  # 3 stories x 2 voices
    qa = res["benchmarks"]["qa-triviaqa"]
    assert set(qa["conditions"]) == {"speech_speech", "text_text", "speech_text"}
    assert qa["conditions"]["text_text"]["chance"] == pytest.approx(1 / 3)
    assert set(qa["qa_ratio"]) == {"speech_text/text_text", "speech_speech/text_text"}
    assert qa["generation"]["text_text"]["exact_match"]["num_groups"] == 4
    ppl = res["perplexity"]
    assert ppl["speech"]["num_tokens"] == 36 and ppl["text"]["num_tokens"] == 18 and ppl["speech"]["perplexity"] > 1
    md = (out / "results.md").read_text()
    assert "| semantic-tstorycloze | speech_speech |" in md and "## Perplexity" in md
    assert (out / "config.yaml").exists() and list((bench / "qa-triviaqa" / "tokens").glob("*.jsonl"))


def test_units_only_model_end_to_end_shows_text_as_na(bench, tmp_path):
    model = tiny_model(tmp_path / "model", units_only=True)
    units = tiny_unit_tokenizer(tmp_path / "units")
    out = tmp_path / "eval"
    code = run_command("eval", [str(model), f"bench={bench / 'semantic-tstorycloze'}", f"unit_tokenizer={units}",
                                f"out_dir={out}", "device=cpu", "bootstrap=50"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    conds = res["benchmarks"]["semantic-tstorycloze"]["conditions"]
    assert res["speech_only"] and conds["text_text"]["status"] == "n/a" and conds["speech_speech"]["num_groups"] == 3
    assert "| semantic-tstorycloze | text_text | n/a |" in (out / "results.md").read_text()
