"""Two CPU processes (gloo DDP through accelerate) follow the same loss curve as one process with the same global
batch: each process reads its own rows, and the loss is normalised by the target tokens of all of them.
The workers are forked (not spawned) so they skip re-importing torch and transformers."""

from __future__ import annotations

import json
import os
import socket

import torch
import torch.multiprocessing as mp
from accelerate.state import AcceleratorState, GradientState
from train_fixtures import tiny_overrides

from koe.config import load_config
from koe.train.config import TrainConfig
from koe.train.recipe import run_train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, overrides: list[str]) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "KOE_NO_PROGRESS": "1"})
    torch.set_num_threads(1)
    AcceleratorState._reset_state(reset_partial_state=True)  # forked: drop the parent's single-process state
    GradientState._reset_state()
    run_train(load_config(TrainConfig, None, overrides))


def _losses(out) -> dict[int, float]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_two_process_ddp_matches_one_process(token_data, tmp_path):
    common = {"max_steps": 4, "save_final": False, "valid_split": None, "optim.lr": 3e-3}
    run_train(load_config(TrainConfig, None, tiny_overrides(token_data, tmp_path / "one", micro_batch_size=4,
                                                            **common)))
    two = tiny_overrides(token_data, tmp_path / "two", micro_batch_size=1, grad_accum_steps=2, **common)
    mp.start_processes(_worker, args=(2, _free_port(), two), nprocs=2, join=True, start_method="fork")
    one_l, two_l = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(two_l) == [1, 2, 3, 4]
    for step, loss in one_l.items():
        assert abs(loss - two_l[step]) < 1e-5, (step, loss, two_l[step])
    summary = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["tokens_seen"] == 4 * 4 * 64
