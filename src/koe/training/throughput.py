"""Training FLOPs, throughput and model FLOPs utilisation (MFU).

    flops = FlopCounter.from_model(model)
    f = flops.step_flops(tokens=8 * 2048, sum_sq_segments=segment_sq_sum(batch["position_ids"]))
    mfu = f / (seconds * peak_tflops * 1e12 * num_devices)

FLOPs follow the PaLM appendix: 6 x N per token for the matrix multiplies (forward 2N, backward 4N), where N counts
every weight used in a matmul (the output projection included, the input embedding lookup excluded), plus
12 x layers x hidden x context per token for attention scores and values. With packing a token only attends within
its document, so the attention term uses each document segment's length: 12 x layers x hidden x sum(len^2).
Like PaLM, the attention term is not halved for causality; MFU from other tools may differ by that convention.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch


@dataclasses.dataclass
class FlopCounter:
    matmul_params: int
    num_layers: int
    hidden_size: int

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> FlopCounter:
        total = sum(p.numel() for p in model.parameters())
        emb_in = model.get_input_embeddings().weight
        emb_out = model.get_output_embeddings().weight
        tied = emb_in.data_ptr() == emb_out.data_ptr()
        n = total - emb_in.numel() + (emb_out.numel() if tied else 0)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        return cls(n, config.num_hidden_layers, config.hidden_size)

    def step_flops(self, tokens: int, sum_sq_segments: int) -> float:
        """Training FLOPs (forward + backward) of `tokens` tokens whose segment lengths square-sum to the second."""
        return 6.0 * self.matmul_params * tokens + 12.0 * self.num_layers * self.hidden_size * sum_sq_segments


def segment_sq_sum(position_ids: torch.Tensor) -> int:
    """Sum over packed segments (documents, or pieces cut at row ends) of their squared length."""
    pos = position_ids.cpu().numpy()
    total = 0
    for row in pos:
        starts = np.flatnonzero(row == 0)
        lengths = np.diff(np.append(starts, len(row)))
        total += int((lengths.astype(np.int64) ** 2).sum())
    return total


class Throughput:
    """Tokens/s (all processes), TFLOP/s per device and MFU over the interval since the last `read()`."""

    def __init__(self, peak_tflops: float, num_devices: int):
        self.peak = peak_tflops * 1e12 * num_devices
        self.num_devices = num_devices
        self.reset()

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.tokens = 0
        self.flops = 0.0

    def add(self, tokens: int, flops: float) -> None:
        self.tokens += tokens
        self.flops += flops

    def read(self, reduce=None) -> dict[str, float]:
        """Rates since the last read; `reduce` (e.g. accelerator.reduce with sum) adds up every process's counts."""
        dt = max(time.perf_counter() - self.t0, 1e-9)
        counts = torch.tensor([float(self.tokens), self.flops], dtype=torch.float64)
        if reduce is not None:
            counts = reduce(counts).cpu()
        tokens, flops = float(counts[0]), float(counts[1])
        out = {"tokens_per_s": tokens / dt, "tflops_per_device": flops / dt / 1e12 / self.num_devices,
               "mfu": flops / dt / self.peak}
        self.reset()
        return out
