"""`koe eval`'s device-dependent defaults: bf16 and 16384-token batches on CUDA (docs/performance.md), float32 and
4096-token batches on CPU, resolved where the model is loaded and scored (koe.model.speech_text_lm)."""

from __future__ import annotations

import numpy as np
import torch
from eval_helpers import tiny_model

from koe.eval.config import EvalConfig
from koe.model.speech_text_lm import CPU_BATCH_TOKENS, NONE, SPEECH, Request, SpeechTextLM, resolve_dtype


def test_config_defaults_are_resolved_by_device():
    cfg = EvalConfig(model="m", bench=["b"])
    assert (cfg.dtype, cfg.batch_tokens) == ("auto", 0) and cfg.validate() == []
    assert EvalConfig(model="m", bench=["b"], batch_tokens=-1).validate() == [
        "batch_tokens=-1 must be >= 0 (0 = by device)"]


def test_auto_dtype_is_float32_on_cpu_and_explicit_dtypes_are_kept():
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    if not torch.cuda.is_available():  # a CUDA device only counts when CUDA is there
        assert resolve_dtype("auto", torch.device("cuda")) is torch.float32


def test_cpu_load_and_score_defaults(tmp_path):
    lm = SpeechTextLM.load(tiny_model(tmp_path / "model"), device="cpu")
    assert lm.model.dtype is torch.float32
    rng = np.random.default_rng(0)
    # 40 requests of 200 tokens: 20 per batch at 4096 tokens, all in one batch if the default were the GPU's
    reqs = [Request(tuple([lm.marker("speech"), *lm.speech_ids(rng.integers(0, 16, 199))]), (NONE,) + (SPEECH,) * 199)
            for _ in range(40)]
    sizes = []
    original = lm._score_batch
    lm._score_batch = lambda batch: sizes.append(len(batch)) or original(batch)
    default = lm.score(reqs)
    assert sizes == [CPU_BATCH_TOKENS // 200] * 2
    for a, b in zip(default, lm.score(reqs, batch_tokens=CPU_BATCH_TOKENS), strict=True):
        np.testing.assert_array_equal(a, b)

