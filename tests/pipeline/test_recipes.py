"""Every shipped recipe names real commands with valid options, and a scaled-down copy of `tiny` runs end to end."""

import json

import pytest
import yaml

from koe import cli
from koe.config import load_config
from koe.recipes import RECIPES_DIR, RecipeConfig, _as_overrides, _fill, load_recipe, run_recipe


@pytest.mark.parametrize("recipe", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_recipe_steps_resolve_to_valid_configs(recipe, tmp_path):
    spec = load_recipe(recipe)
    for step in spec["steps"]:
        command = cli.COMMANDS[step["command"]]
        cfg_cls = cli._load(command.config)
        load_config(cfg_cls, None, _as_overrides(_fill(step.get("options", {}), str(tmp_path))))


def _scaled_down(tmp_path):
    """tiny.yaml with every size cut so the whole chain runs in about a minute."""
    spec = load_recipe("tiny")
    shrink = {
        "synth": {"num_items": 160, "voices": ["en-us", "en+m3", "en-us+f3"]},
        "phonetic": {"epochs": 1.0, "hidden_size": 16, "window_frames": 100},
        "units_fit": {"max_frames": 20000},
        "data_text": {"text": ["tinyspeech:300"], "text_tokenizer": "train:400"},
        "data_interleaved": {"text": ["tinyspeech:300"]},
        "vocoder": {"steps": 5, "hidden_size": 16, "max_utterances": 20},
        "bench": {"tiny_num": 4, "voices": ["en-us"], "kinds": ["lexical", "syntactic", "semantic", "qa"]},
        "eval_speech_only": {"max_groups": 4, "bootstrap": 20, "qa_generate": False},
        "eval_interleaved": {"max_groups": 4, "bootstrap": 20, "qa_generate": False},
        "generate": {"max_new_tokens": 8, "prompts": ["the old fox"]},
    }
    for step in spec["steps"]:
        step.setdefault("options", {}).update(shrink.get(step["name"], {}))
        if step["command"] == "train":
            step["options"].update(max_steps=3, micro_batch_size=2, max_seq_len=1024)
            step["options"].pop("epochs", None)
            if step["name"] == "train_text_lm":
                step["options"]["model"].update(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                                intermediate_size=64)
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_scaled_down_tiny_recipe_runs_every_stage(tmp_path):
    out = tmp_path / "run"
    report = run_recipe(RecipeConfig(recipe=str(_scaled_down(tmp_path)), out_dir=out))
    assert report.failures == [], report.failures
    table = (out / "report" / "results.md").read_text()
    assert "| speech_only |" in table and "| interleaved |" in table
    rows = json.loads((out / "report" / "results.json").read_text())
    for model in ("speech_only", "interleaved"):
        assert 0.0 <= rows[model]["lexical"]["accuracy"] <= 1.0
        assert rows[model]["qa_text"] is not None and rows[model]["qa_speech"] is not None
    for final in ("text_lm", "text_only", "speech_only", "interleaved"):
        assert (out / final / "final" / "config.json").exists()
    assert list((out / "report" / "generated").glob("sample_*/prompt.json"))
    assert (out / "report" / "loss_curves.png").exists()
