"""Checkpoint I/O through a real CPU Accelerator: a manifest seals every file, rotation keeps the newest by step, a
damaged newest checkpoint falls back to the newest complete one (or stops, naming the file), and an out_dir that
holds another run is refused unless resuming or overwriting."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from accelerate import Accelerator

from koe.stage import KoeInputError
from koe.training.checkpoint import (
    MANIFEST_FILE,
    STATE_FILE,
    check_resume_step,
    checkpoint_dir,
    complete_checkpoints,
    load_checkpoint,
    prepare_out_dir,
    resolve_resume,
    save_checkpoint,
    verify_checkpoint,
)

FILES = ["model.safetensors", "optimizer.bin", "scheduler.bin", STATE_FILE, "random_states_0.pkl"]


@pytest.fixture
def trainer():
    """A prepared tiny model, optimiser and scheduler: what accelerate.save_state writes for a real run."""
    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    return accelerator, model, optimizer, scheduler


def _step(model, optimizer, scheduler) -> None:
    model(torch.randn(2, 4)).square().sum().backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def _save(trainer, out, steps, keep=0):
    accelerator, model, optimizer, scheduler = trainer
    weights = {}
    for step in steps:
        _step(model, optimizer, scheduler)
        save_checkpoint(accelerator, out, step, {"step": step, "tokens_seen": step, "train_time_s": 0.0}, keep)
        weights[step] = model.weight.detach().clone()
    return weights


def _names(out) -> list[str]:
    return [p.name for p in complete_checkpoints(out)]


def test_manifest_lists_every_file_with_size_and_hash(trainer, tmp_path):
    _save(trainer, tmp_path, [5])
    path = checkpoint_dir(tmp_path) / "step-0000005"
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    assert manifest["step"] == 5 and set(FILES) <= set(manifest["files"])
    for name in FILES:
        entry = manifest["files"][name]
        assert entry["size_bytes"] == (path / name).stat().st_size > 0 and len(entry["sha256"]) == 64
    assert verify_checkpoint(path) == []


def test_rotation_keeps_the_newest_by_step_not_by_name(trainer, tmp_path):
    # 10_000_000 has one digit more than the 7-digit padding, so its name sorts before step-9999990's
    _save(trainer, tmp_path, [9_999_990, 10_000_000], keep=1)
    assert _names(tmp_path) == ["step-10000000"]
    _save(trainer, tmp_path, [10_000_010, 10_000_020, 10_000_030], keep=2)
    assert _names(tmp_path) == ["step-10000020", "step-10000030"]


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_newest_checkpoint_falls_back_or_stops_naming_the_file(trainer, tmp_path, name, damage):
    weights = _save(trainer, tmp_path, [1, 2])
    bad = checkpoint_dir(tmp_path) / "step-0000002" / name
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 0xFF]))

    with pytest.warns(UserWarning, match=name) as caught:
        resume = resolve_resume("auto", tmp_path)
    assert resume.name == "step-0000001" and "step-0000001" in str(caught[0].message)
    accelerator, model, _, _ = trainer
    assert load_checkpoint(accelerator, resume)["step"] == 1
    assert torch.equal(model.weight.detach(), weights[1])

    with pytest.raises(KoeInputError, match=f"{name}: (truncated|corrupt)"):
        resolve_resume(str(bad.parent), tmp_path)


def test_every_checkpoint_damaged_is_an_error_listing_them(trainer, tmp_path):
    _save(trainer, tmp_path, [1, 2])
    for step in (1, 2):
        (checkpoint_dir(tmp_path) / f"step-000000{step}" / "optimizer.bin").write_bytes(b"")
    with pytest.raises(KoeInputError, match=r"every checkpoint.*step-0000002.*optimizer\.bin.*step-0000001"):
        resolve_resume("auto", tmp_path)


def test_unsealed_checkpoint_is_not_resumed_and_legacy_one_is_with_a_warning(trainer, tmp_path):
    _save(trainer, tmp_path, [1, 2])
    step2 = checkpoint_dir(tmp_path) / "step-0000002"
    (step2 / MANIFEST_FILE).unlink()
    (step2 / STATE_FILE).unlink()  # a crash while saving: neither marker
    assert resolve_resume("auto", tmp_path).name == "step-0000001"
    with pytest.raises(KoeInputError, match="not a koe checkpoint"):
        resolve_resume(str(step2), tmp_path)
    step1 = checkpoint_dir(tmp_path) / "step-0000001"
    (step1 / MANIFEST_FILE).unlink()  # saved by a koe without manifests: trainer state only
    with pytest.warns(UserWarning, match="cannot be checked"):
        assert resolve_resume("auto", tmp_path) == step1


def test_resume_step_past_the_plan_is_refused_naming_both():
    check_resume_step(30, 30, "ckpt")  # a finished run may be resumed (it writes final/ again)
    with pytest.raises(KoeInputError, match="at step 120, but this config plans 30 steps"):
        check_resume_step(120, 30, "runs/x/checkpoints/step-0000120")


def test_fresh_run_into_a_used_out_dir_is_refused_unless_overwrite(trainer, tmp_path):
    _save(trainer, tmp_path, [100, 110, 120])
    (tmp_path / "final").mkdir()
    with pytest.raises(KoeInputError, match=r"out-dir-in-use: .*step-0000120.*final.*overwrite=true"):
        prepare_out_dir(tmp_path, resume=None, overwrite=False, main=True)
    assert len(_names(tmp_path)) == 3  # nothing touched
    removed = prepare_out_dir(tmp_path, resume=None, overwrite=True, main=True)
    assert {p.name for p in removed} == {"step-0000100", "step-0000110", "step-0000120", "final"}
    assert _names(tmp_path) == [] and not (tmp_path / "final").exists()
    prepare_out_dir(tmp_path / "new", resume=None, overwrite=False, main=True)  # an unused dir is fine


def test_resuming_drops_the_abandoned_later_checkpoints(trainer, tmp_path):
    _save(trainer, tmp_path, [10, 20, 30])
    resume = checkpoint_dir(tmp_path) / "step-0000010"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_out_dir(tmp_path, resume=resume, overwrite=False, main=True)
    assert _names(tmp_path) == ["step-0000010"]
    _save(trainer, tmp_path, [20], keep=1)  # the resumed run's own step 20 is now the newest and survives
    assert _names(tmp_path) == ["step-0000020"]
