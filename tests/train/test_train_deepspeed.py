"""DeepSpeed ZeRO-2 through accelerate runs on CPU (DeepSpeed's CPU accelerator) and follows the plain loss curve.

Marked slow: on a fresh machine DeepSpeed first JIT-builds its shared-memory comm op (~30 s); later runs take ~6 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixtures import tiny_overrides

from koe.config import load_config
from koe.train.config import TrainConfig
from koe.train.recipe import run_train

ZERO2 = Path(__file__).resolve().parents[2] / "src" / "koe" / "configs" / "accelerate" / "zero2.json"
SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from koe.config import load_config
from koe.train.config import TrainConfig
from koe.train.recipe import run_train
run_train(load_config(TrainConfig, None, sys.argv[1:]))
"""


def _losses(out: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_deepspeed_zero2_on_cpu_matches_plain_run(token_data, tmp_path):
    common = {"max_steps": 3, "valid_split": None, "save_final": False, "optim.lr": 3e-3}
    run_train(load_config(TrainConfig, None, tiny_overrides(token_data, tmp_path / "plain", **common)))
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29561", "ACCELERATE_USE_DEEPSPEED": "true",
           "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ZERO2), "KOE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *tiny_overrides(token_data, tmp_path / "ds", **common)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ds" / "train_summary.json").read_text())
    assert summary["backend"] == "DEEPSPEED"
    assert (tmp_path / "ds" / "checkpoints" / "step-0000003" / "pytorch_model").is_dir()  # a ZeRO checkpoint
    plain, ds = _losses(tmp_path / "plain"), _losses(tmp_path / "ds")
    assert sorted(ds) == [1, 2, 3]
    for step, loss in plain.items():
        assert abs(loss - ds[step]) < 1e-5, (step, loss, ds[step])
