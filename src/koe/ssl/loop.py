"""Training plumbing both koe.ssl commands share: accelerate, AdamW groups with their schedule, logs and plots.

    accelerator = make_accelerator(cfg.device, cfg.precision)        # DDP under `accelerate launch`, bf16 on CUDA
    optimizer, scheduler = build_optimizer({"all": model.parameters()}, cfg.optim, total_steps=1000)
    log = SSLLogger(out_dir, panels={"loss": ["loss", "eval_loss"], "accuracy": ["masked_acc"]}, enabled=main)

The schedule is koe.train.schedule.lr_factor (the maths `koe train` uses); a group can sit out the first steps
with a factor of 0 (so AdamW's decoupled decay cannot move it either) and then warm up like the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from koe.config import save_config
from koe.corpus.manifest import Utterance
from koe.seed import seed_everything
from koe.ssl.config import SSLOptim, _Common
from koe.ssl.data import split_utterances
from koe.stage import StageReport
from koe.train.logger import MetricsLogger
from koe.train.schedule import lr_factor


def make_accelerator(device: str, precision: str):
    """An Accelerator on the CPU or the GPU(s); bf16 autocast when asked or (auto) on a bf16-capable GPU."""
    from accelerate import Accelerator

    cpu = device == "cpu" or not torch.cuda.is_available()
    bf16 = precision == "bf16" or (precision == "auto" and not cpu and torch.cuda.is_bf16_supported())
    accelerator = Accelerator(cpu=cpu, mixed_precision="bf16" if bf16 else "no")
    if accelerator.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    return accelerator


def start_run(cfg: _Common, stage: str) -> tuple[Any, StageReport, list[Utterance], list[Utterance]]:
    """What both commands do first: the accelerator, seeds, the saved config (main process) and the train/held-out
    split of the manifest. Returns (accelerator, report, train, held_out)."""
    accelerator = make_accelerator(cfg.device, cfg.precision)
    seed_everything(cfg.seed)
    report = StageReport(stage, Path(cfg.out_dir) if accelerator.is_main_process else None)
    if accelerator.is_main_process:
        save_config(cfg, Path(cfg.out_dir))
    train, held_out = split_utterances(cfg.manifest, cfg.split, cfg.valid_split, cfg.eval_utterances,
                                       cfg.min_duration_s, cfg.seed, report)
    return accelerator, report, train, held_out


def warmup_steps(cfg: SSLOptim, total_steps: int) -> int:
    return round(cfg.warmup_fraction * total_steps)


def _factor(step: int, total: int, cfg: SSLOptim, frozen: int) -> float:
    if step < frozen:
        return 0.0
    warm = warmup_steps(cfg, total)
    base = lr_factor(step, total, cfg.schedule, warm, cfg.decay_fraction, cfg.min_lr_ratio)
    return base * min(1.0, (step - frozen + 1) / warm) if frozen and warm else base


def build_optimizer(groups: dict[str, Iterable[torch.nn.Parameter]], cfg: SSLOptim, total_steps: int,
                    frozen_steps: dict[str, int] | None = None
                    ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters of each named group (matrices decay, vectors do not) and one LambdaLR;
    a group named in frozen_steps gets lr 0 for that many steps, then its own warm-up."""
    param_groups, frozen = [], []
    for name, params in groups.items():
        trainable = [p for p in params if p.requires_grad]
        for decay, ps in ((cfg.weight_decay, [p for p in trainable if p.ndim >= 2]),
                          (0.0, [p for p in trainable if p.ndim < 2])):
            if ps:
                param_groups.append({"params": ps, "weight_decay": decay, "name": name})
                frozen.append((frozen_steps or {}).get(name, 0))
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    lambdas = [partial(_factor, total=total_steps, cfg=cfg, frozen=f) for f in frozen]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def optimizer_step(accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, grad_clip: float) -> tuple[Any, float]:
    """Clip (when grad_clip > 0), step, advance the schedule, clear the gradients: the update after each backward of
    both commands. Returns (the gradient norm before clipping or None, the lr this step used)."""
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip else None
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm, lr


class SSLLogger(MetricsLogger):
    """metrics.jsonl and TensorBoard as `koe train` writes them; close() draws one panel per metric family."""

    def __init__(self, out_dir: str | Path, panels: dict[str, list[str]], tensorboard: bool = True,
                 enabled: bool = True) -> None:
        super().__init__(out_dir, tensorboard=tensorboard, enabled=enabled)
        self.panels = panels

    def close(self) -> Path | None:
        if not self.enabled:
            return None
        if self._tb is not None:
            self._tb.close()
        return plot_panels(self.path, self.out_dir / "loss_curve.png", self.panels)


def plot_panels(metrics_path: Path, png_path: Path, panels: dict[str, list[str]]) -> Path | None:
    """One subplot per panel title, each key of metrics.jsonl against step (points for sparse keys such as eval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln] if metrics_path.exists() else []
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels.items(), strict=True):
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-" if key.startswith("eval_") else "-", label=key, markersize=3)
        ax.set(xlabel="step", title=title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
