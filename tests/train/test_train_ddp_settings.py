"""DDP settings of `koe train` (koe.train.distributed): gradients as bucket views, fp32 reduction by default, and
the bf16 compression hook only where NCCL can run it. That DDP with these settings still follows the one-process
loss curve exactly is tests/train/test_train_distributed.py (it runs with the defaults)."""

from __future__ import annotations

import pytest
from accelerate.utils import DDPCommunicationHookType
from train_fixtures import tiny_overrides

from koe.config import load_config
from koe.stage import KoeInputError
from koe.train.config import TrainConfig
from koe.train.distributed import ddp_kwargs
from koe.train.recipe import run_train


def test_ddp_kwargs_default_is_fp32_with_bucket_views():
    kwargs = ddp_kwargs()
    assert kwargs.gradient_as_bucket_view and kwargs.comm_hook == DDPCommunicationHookType.NO
    assert ddp_kwargs("bf16", cuda=True).comm_hook == DDPCommunicationHookType.BF16
    assert TrainConfig().grad_reduce_dtype == "fp32"


def test_ddp_kwargs_rejects_unknown_dtype_and_bf16_without_cuda():
    with pytest.raises(KoeInputError, match="grad_reduce_dtype='fp16'"):
        ddp_kwargs("fp16")
    with pytest.raises(KoeInputError, match="bf16 needs CUDA"):
        ddp_kwargs("bf16", cuda=False)


def test_cpu_train_refuses_bf16_reduction_before_training(token_data, tmp_path):
    cfg = load_config(TrainConfig, None, tiny_overrides(token_data, tmp_path / "run", max_steps=1,
                                                        grad_reduce_dtype="bf16"))
    with pytest.raises(KoeInputError, match="use fp32 on CPU"):
        run_train(cfg)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
