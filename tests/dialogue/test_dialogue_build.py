"""koe dialogue build: tiny's fact splits, voices, and a real synthesis of a few facts with units."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from koe.cli import run_command
from koe.config import load_config
from koe.dialogue.build import tiny_plans
from koe.dialogue.config import DialogueBuildConfig
from koe.dialogue.examples import DialogueExample, example_problems, read_examples
from koe.tinyspeech import facts


def test_plans_follow_tiny_fact_splits():
    cfg = DialogueBuildConfig()
    plans = tiny_plans(cfg)
    split_of = {f.id: f.split for f in facts(0)}
    by_fact: dict[str, list] = {}
    for p in plans:
        by_fact.setdefault(p.id.split("-train")[0].split("-eval")[0].removeprefix("tiny-"), []).append(p)
    assert set(by_fact) == set(split_of)
    for fact_id, ps in by_fact.items():
        kinds = Counter((p.split, p.modality) for p in ps)
        if split_of[fact_id] == "text_and_speech":
            assert kinds == {("train", "speech"): 2, ("train", "text"): 1, ("eval", "speech"): 1}
        elif split_of[fact_id] == "text_only":  # never spoken in training
            assert kinds == {("train", "text"): 1, ("eval", "speech"): 1}
        else:
            assert kinds == {("eval", "speech"): 1}
    for p in plans:
        if p.split == "eval":
            assert p.voice in cfg.heldout_voices and p.voice_split == "heldout"
        elif p.modality == "speech":
            assert p.voice in cfg.question_voices
    train_voices = [p.voice for p in plans if p.split == "train" and p.modality == "speech"]
    assert len(set(train_voices)) > 1


def test_config_refuses_answer_voice_among_question_voices():
    problems = DialogueBuildConfig(answer_voice="en-us").validate()
    assert any("answer_voice" in p for p in problems)


def _unit_tokenizer(out):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "eval"))
    from eval_helpers import tiny_unit_tokenizer

    return tiny_unit_tokenizer(out)


def test_build_speaks_and_encodes_a_few_facts(tmp_path):
    tok = _unit_tokenizer(tmp_path / "tok")
    out = tmp_path / "dlg"
    code = run_command("dialogue build", [f"out_dir={out}", f"unit_tokenizer={tok}", "num_facts=1"])
    assert code == 0
    rows = [ex for _, ex in read_examples(out / "examples.jsonl")]
    assert all(isinstance(r, DialogueExample) for r in rows)
    assert Counter(r.fact_split for r in rows) == {"heard": 4, "text_only": 2, "heldout": 1}
    for r in rows:
        assert example_problems(r, out) == []
        if r.modality == "speech":
            assert r.answer_voice == "en+f5" and r.question_voice != r.answer_voice
            assert r.question_units and max(r.question_units) < 16 and r.answer_units
    summary = json.loads((out / "dialogue_build_summary.json").read_text())
    assert summary["items_out"] == len(rows) and summary["num_failures"] == 0
    assert np.isfinite(summary["wall_s"])


def test_build_lists_too_long_examples_and_exits_1(tmp_path):
    out = tmp_path / "dlg"
    tok = _unit_tokenizer(tmp_path / "tok")
    cfg = load_config(DialogueBuildConfig, None, [f"out_dir={out}", f"unit_tokenizer={tok}", "num_facts=1",
                                                  "max_seq_len=30"])
    from koe.dialogue.build import run_dialogue_build

    report = run_dialogue_build(cfg)
    assert report.exit_code == 1
    reasons = [json.loads(x)["reason"] for x in (out / "dialogue_build_failures.jsonl").read_text().splitlines()]
    assert reasons and all(r.startswith("too-long") for r in reasons)
    kept = [ex for _, ex in read_examples(out / "examples.jsonl")]
    assert kept and all(ex.modality == "text" for ex in kept)  # spoken ones carry units: too long; text ones fit
    assert len(kept) + len(reasons) == report.items_in
