"""`koe train` end to end on tiny shards: loss falls, per-modality losses are logged, resume is exact, budgets stop
cleanly, the frozen-text warm-up keeps the text rows, and LoRA saves a merged plain HF model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_fixtures import text_tokenizer, tiny_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from koe.cli import run_command
from koe.config import load_config
from koe.train.config import TrainConfig
from koe.train.recipe import run_train


def _metrics(out) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _train(token_data, out, **extra):
    return run_train(load_config(TrainConfig, None, tiny_overrides(token_data, out, **extra)))


def test_cli_run_loss_falls_and_logs_per_modality(token_data, tmp_path):
    out = tmp_path / "run"
    code = run_command("train", tiny_overrides(token_data, out, max_steps=30, **{"optim.lr": 3e-3},
                                               tensorboard=True, eval_every=15))
    assert code == 0
    rows = [r for r in _metrics(out) if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 31))
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < first - 0.3, (first, last)
    for key in ("loss_text", "loss_speech", "tokens_per_s", "mfu", "lr", "grad_norm"):
        assert all(key in r for r in rows), key
    evals = [r for r in _metrics(out) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [15, 30] and "eval_loss_speech" in evals[0]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 30 and summary["stop_reason"] == "steps"
    for name in ("config.yaml", "loss_curve.png", "final/model.safetensors", "final/tokenizer.json"):
        assert (out / name).exists(), name
    assert list((out / "tb").iterdir())
    assert (out / "checkpoints" / "step-0000030" / "trainer_state.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(out / "final")) + 6  # padded to 8


def test_resume_continues_exactly(token_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _train(token_data, a, max_steps=6, save_every=3, save_final=False, valid_split=None)
    _train(token_data, b, max_steps=6, save_final=False, valid_split=None,
           resume_from=str(a / "checkpoints" / "step-0000003"))
    la, lb = ({r["step"]: r["loss"] for r in _metrics(x)} for x in (a, b))
    assert sorted(lb) == [4, 5, 6]
    for step in (4, 5, 6):
        assert abs(la[step] - lb[step]) < 1e-6, (step, la[step], lb[step])
    assert la[4] != la[5]  # the data moves on: equality above is not trivial


def test_fresh_run_into_a_used_out_dir_is_refused_unless_overwrite(token_data, tmp_path, capsys):
    out = tmp_path / "run"
    _train(token_data, out, max_steps=4, save_every=2, valid_split=None)
    before = (out / "final" / "model.safetensors").read_bytes()
    assert run_command("train", tiny_overrides(token_data, out, max_steps=3, valid_split=None, seed=1)) == 2
    assert "out-dir-in-use" in capsys.readouterr().err
    assert (out / "final" / "model.safetensors").read_bytes() == before  # the old run is untouched
    assert run_command("train", tiny_overrides(token_data, out, max_steps=3, valid_split=None, seed=1,
                                               overwrite="true")) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000003"]
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 3
    assert (out / "final" / "model.safetensors").read_bytes() != before


def test_resume_past_the_plan_is_refused(token_data, tmp_path, capsys):
    _train(token_data, tmp_path, max_steps=6, save_every=3, save_final=False, valid_split=None)
    code = run_command("train", tiny_overrides(token_data, tmp_path, max_steps=3, valid_split=None,
                                               resume_from="auto"))
    assert code == 2
    assert "step-0000006 is at step 6, but this config plans 3 steps" in capsys.readouterr().err
    assert not (tmp_path / "final").exists()


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(token_data, tmp_path):
    _train(token_data, tmp_path, max_steps=6, save_every=3, save_final=False, valid_split=None)
    full = {r["step"]: r["loss"] for r in _metrics(tmp_path)}
    model = tmp_path / "checkpoints" / "step-0000006" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.warns(UserWarning, match="step-0000006/model.safetensors: truncated"):
        report = _train(token_data, tmp_path, max_steps=6, save_every=3, save_final=False, valid_split=None,
                        resume_from="auto")
    assert report.extra["steps"] == 6
    resumed = {r["step"]: r["loss"] for r in _metrics(tmp_path)}
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):  # retrained from step 3, exactly as the first time
        assert abs(resumed[step] - full[step]) < 1e-6


def test_time_budget_stops_cleanly_with_checkpoint(token_data, tmp_path):
    report = _train(token_data, tmp_path, max_steps=50, max_time_s=0, valid_split=None)
    assert report.extra["stop_reason"] == "time" and report.extra["steps"] == 1
    assert (tmp_path / "checkpoints" / "step-0000001" / "trainer_state.json").exists()
    assert (tmp_path / "final" / "model.safetensors").exists()


def test_frozen_text_warmup_keeps_text_rows_and_body(token_data, pretrained_dir, tmp_path):
    base = load_file(pretrained_dir / "model.safetensors")
    _train(token_data, tmp_path / "frozen", max_steps=3, valid_split=None, **{
        "model.name_or_path": str(pretrained_dir), "optim.frozen_text_steps": 3, "optim.lr": 1e-2})
    after = load_file(tmp_path / "frozen" / "final" / "model.safetensors")
    emb = "model.embed_tokens.weight"
    n_text = base[emb].shape[0]
    torch.testing.assert_close(after[emb][:n_text], base[emb], atol=0, rtol=0)
    for name, w in base.items():
        if name != emb:
            torch.testing.assert_close(after[name], w, atol=0, rtol=0, msg=name)
    _train(token_data, tmp_path / "thawed", max_steps=5, valid_split=None, **{
        "model.name_or_path": str(pretrained_dir), "optim.frozen_text_steps": 3, "optim.lr": 1e-2})
    thawed = load_file(tmp_path / "thawed" / "final" / "model.safetensors")
    assert not torch.equal(thawed[emb][:n_text], base[emb])
    assert not torch.equal(thawed["model.layers.0.mlp.up_proj.weight"], base["model.layers.0.mlp.up_proj.weight"])
    frozen_flags = [r["frozen_text"] for r in _metrics(tmp_path / "thawed") if "frozen_text" in r]
    assert frozen_flags == [1, 1, 1, 0, 0]


def test_lora_trains_adapters_and_new_rows_and_saves_merged(token_data, pretrained_dir, tmp_path):
    base = load_file(pretrained_dir / "model.safetensors")
    _train(token_data, tmp_path, max_steps=3, valid_split=None, **{
        "model.name_or_path": str(pretrained_dir), "lora.enabled": True, "lora.r": 4, "optim.lr": 1e-2})
    after = load_file(tmp_path / "final" / "model.safetensors")
    assert not any("lora" in k for k in after)  # merged into the base weights
    emb = "model.embed_tokens.weight"
    n_text = base[emb].shape[0]
    torch.testing.assert_close(after[emb][:n_text], base[emb], atol=0, rtol=0)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(after[q], base[q])
    AutoModelForCausalLM.from_pretrained(tmp_path / "final")


def test_final_model_of_a_compiled_model_has_plain_keys(pretrained_dir, tmp_path):
    """torch.compile prefixes state-dict keys with `_orig_mod.` and the LossModel with `model.`; the final directory
    must keep neither."""
    from accelerate import Accelerator

    from koe.train.loss import LossModel
    from koe.train.recipe import _save_final

    accelerator = Accelerator(cpu=True)
    compiled = accelerator.prepare(torch.compile(LossModel(AutoModelForCausalLM.from_pretrained(pretrained_dir))))
    _save_final(accelerator, compiled, text_tokenizer(), tmp_path / "final")
    saved = load_file(tmp_path / "final" / "model.safetensors")
    assert sorted(saved) == sorted(load_file(pretrained_dir / "model.safetensors"))
