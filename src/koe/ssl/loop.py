"""The start both koe.ssl commands share: accelerator, seeds, saved config and the train/held-out split.

    accelerator, report, train, held_out = start_run(cfg, "ssl pretrain")

Everything else of their loops (AdamW groups, schedule, optimiser step, logs and plots) is koe.training, the
library `koe train`, the phone classifier and the vocoder use too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from koe.config import save_config
from koe.corpus.manifest import Utterance
from koe.seed import seed_everything
from koe.ssl.config import _Common
from koe.ssl.data import split_utterances
from koe.stage import StageReport
from koe.training.device import make_accelerator


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
