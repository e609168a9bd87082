"""Training logs of every koe loop: metrics.jsonl (always), TensorBoard events (by default), a PNG curve at the end.

    log = MetricsLogger("runs/train", tensorboard=True)
    log.write(step=10, metrics={"loss": 3.2, "lr": 1e-3})
    log.close()                      # also draws runs/train/loss_curve.png from metrics.jsonl
    log = MetricsLogger("runs/ssl", panels={"loss": ["loss", "eval_loss"], "accuracy": ["masked_acc"]})

Only the main process writes; the other processes get a logger whose methods do nothing, so the recipe needs no
`if is_main` around every call. On resume metrics.jsonl is appended to, and lines from steps past the resumed step
(written after the checkpoint by the interrupted run) are dropped first so the file holds one line per step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from koe.stage import atomic_write_text


class MetricsLogger:
    """`panels` (title -> metric keys) draws one subplot per title at close; without it, the LM loss curve."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True, enabled: bool = True, resume_step: int = 0,
                 panels: dict[str, list[str]] | None = None):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.panels = panels
        self.path = self.out_dir / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume_step and self.path.exists():
            kept = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= resume_step]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        elif self.path.exists():
            self.path.unlink()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step or None)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k.replace("eval_", "eval/", 1) if k.startswith("eval_") else f"train/{k}",
                                        v, step)

    def close(self) -> Path | None:
        """Flush TensorBoard and draw the loss curve; returns the PNG path (main process) or None."""
        if not self.enabled:
            return None
        if self._tb is not None:
            self._tb.close()
        png = self.out_dir / "loss_curve.png"
        return plot_panels(self.path, png, self.panels) if self.panels else plot_loss_curve(self.path, png)


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path) -> Path | None:
    """Train loss (total, text, speech) and eval loss against step, from metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in Path(metrics_path).read_text().splitlines() if ln] if Path(
        metrics_path).exists() else []
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style in (("loss", "-"), ("loss_text", ":"), ("loss_speech", "--"), ("eval_loss", "o-")):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=key, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)


def plot_step_losses(losses: list[float], png_path: str | Path, ylabel: str, title: str) -> Path:
    """One loss per step on a log scale: the curve of the small auxiliary trainers (vocoder, phone classifier)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses)
    ax.set(xlabel="step", ylabel=ylabel, title=title, yscale="log")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)


def plot_panels(metrics_path: str | Path, png_path: str | Path, panels: dict[str, list[str]]) -> Path | None:
    """One subplot per panel title, each key of metrics.jsonl against step (points for sparse keys such as eval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics_path = Path(metrics_path)
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
    return Path(png_path)
