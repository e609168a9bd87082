"""Every shipped recipe names real commands with valid options, and a scaled-down copy of `tiny` runs end to end."""

import json

import pytest
import torch
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
    env = json.loads((out / "run_summary.json").read_text())["environment"]
    assert env["torch"] == torch.__version__  # the versions the run's numbers came from, in its summary
    assert {"python", "transformers", "espeakng-loader", "pocketsphinx"} <= set(env)
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


def _scaled_down_small(tmp_path):
    """small.yaml with its data cut as in tiny's copy and only the s size, as a 2-layer model."""
    spec = load_recipe("small")
    shrink = {
        "synth": {"num_items": 160, "voices": ["en-us", "en+m3", "en-us+f3"], "num_workers": 2},
        "phonetic": {"epochs": 1.0, "hidden_size": 16, "window_frames": 100},
        "units_fit": {"max_frames": 20000},
        "data_text": {"text": ["tinyspeech:300"], "text_tokenizer": "train:400", "max_seq_len": 256},
        "data_speech": {"max_seq_len": 256},
        "data_interleaved": {"text": ["tinyspeech:300"], "max_seq_len": 256},
        "data_paired": {"text": ["tinyspeech:300"], "max_seq_len": 256},
        "bench": {"tiny_num": 4, "voices": ["en-us"], "kinds": ["lexical", "syntactic", "semantic", "qa"]},
    }
    spec["steps"] = [s for s in spec["steps"] if not s["name"].endswith(("_m", "_l"))]
    for step in spec["steps"]:
        options = step.setdefault("options", {})
        options.update(shrink.get(step["name"], {}))
        if step["command"] == "train":
            options.update(max_steps=3, micro_batch_size=2, max_seq_len=256, max_tokens=None)
            if step["name"].startswith("text_lm"):
                options["model"].update(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                        intermediate_size=64)
        if step["command"] == "eval":
            options.update(max_groups=4, bootstrap=20, qa_generate=False)
        if step["command"] == "report":
            for key in ("evals", "sizes", "train_dirs"):
                options[key] = {k: v for k, v in options[key].items() if k.endswith("_s")}
    path = tmp_path / "small_mini.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_scaled_down_small_recipe_gives_the_scaling_table(tmp_path):
    out = tmp_path / "run"
    report = run_recipe(RecipeConfig(recipe=str(_scaled_down_small(tmp_path)), out_dir=out))
    assert report.failures == [], report.failures
    table = (out / "report" / "results.md").read_text()
    assert "## Scaling" in table and "| interleaved_s |" in table and "| speech_only_s |" in table
    assert "| paired_s |" in table  # the pairing experiment: interleaved + paired documents, same budget
    params = json.loads((out / "interleaved_s" / "train_summary.json").read_text())["num_params"]
    assert 0 < params < 1_000_000  # the 2-layer model, initialised from the recipe's own text LM


def test_scaling_plot_and_transfer_pvalue(tmp_path):
    from koe.recipes.report import plot_scaling, transfer_pvalue

    rows = {"interleaved_s": {"qa_speech_text_only": 0.30, "qa_speech_text_only_n": 84,
                              "qa_speech_text_and_speech": 0.5},
            "interleaved_m": {"qa_speech_text_only": 0.45, "qa_speech_text_only_n": 84},
            "speech_only_s": {"qa_speech_text_only": None}}
    params = {"interleaved_s": 10_000_000, "interleaved_m": 35_000_000, "speech_only_s": 10_000_000}
    assert plot_scaling(rows, params, tmp_path / "scaling.png") and (tmp_path / "scaling.png").stat().st_size > 0
    assert not plot_scaling({}, params, tmp_path / "none.png")
    assert transfer_pvalue(0.25, 100) > 0.4 and transfer_pvalue(0.45, 100) < 1e-4  # one-sided, against 25%
    assert transfer_pvalue(None, 100) is None
