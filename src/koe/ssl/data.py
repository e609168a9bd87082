"""Training data of koe.ssl: which utterances train and which evaluate, and one seeded batch per optimiser step.

    train, held_out = split_utterances(cfg, report)      # held-out: the valid split, else taken out of training
    batches = StepBatches(train, manifest_dir, cfg, rank=0, world=1, make_item=...)
    batch = batches[step]                                 # the same batch for a step whatever the worker count

A step's batch depends only on (seed, step, rank): utterances come from seeded per-epoch permutations (global
position step * batch * world + rank * batch + b), every batch is cropped to its shortest utterance (at most
`max_crop_s`, random offsets), as fairseq's HuBERT does, so no padding is needed. The torch DataLoader only
decides which process builds a batch, never its contents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.corpus.manifest import Utterance, read_manifest
from koe.seed import derive_seed, rng_for
from koe.stage import KoeInputError, StageReport
from koe.units.encode import load_utterance


def split_utterances(manifest: Path, split: str | None, valid_split: str, eval_utterances: int,
                     min_duration_s: float, seed: int, report: StageReport) -> tuple[list[Utterance], list[Utterance]]:
    """(train, held-out): utterances shorter than min_duration_s are counted in report.extra and left out."""
    utts = read_manifest(manifest)
    report.items_in = len(utts)
    short = [u for u in utts if u.duration_s < min_duration_s]
    report.extra["too_short"] = len(short)
    usable = [u for u in utts if u.duration_s >= min_duration_s]
    valid = [u for u in usable if u.split == valid_split]
    valid_ids = {u.id for u in valid}
    train = [u for u in usable if (split is None or u.split == split) and u.id not in valid_ids]
    rng = rng_for(seed, "held-out")
    if not valid and eval_utterances:  # no valid split: hold out a seeded sample of the training utterances
        take = set(rng.choice(len(train), min(eval_utterances, len(train) // 5), replace=False).tolist())
        valid = [u for i, u in enumerate(train) if i in take]
        train = [u for i, u in enumerate(train) if i not in take]
    held_out = [valid[i] for i in sorted(rng.permutation(len(valid))[:eval_utterances])]
    if not train:
        raise KoeInputError(f"{manifest}: no utterance of split {split!r} is at least {min_duration_s} s long")
    return train, held_out


class StepBatches(torch.utils.data.Dataset):
    """Item `step` is that step's batch for this process: `make_batch(waves, rng)` turns the cropped 16 kHz
    waveforms (and the crop offsets) into tensors."""

    def __init__(self, utts: list[Utterance], manifest_dir: Path, batch_size: int, max_crop_s: float,
                 max_duration_s: float | None, seed: int, rank: int, world: int,
                 make_batch: Callable[[list[np.ndarray], list[Utterance], list[int], np.random.Generator], Any]
                 ) -> None:
        self.utts, self.manifest_dir = utts, manifest_dir
        self.batch_size, self.max_crop = batch_size, int(max_crop_s * TARGET_SAMPLE_RATE_HZ)
        self.max_duration_s, self.seed, self.rank, self.world = max_duration_s, seed, rank, world
        self.make_batch = make_batch
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return 2**62  # indexed by step

    def indices(self, step: int) -> list[int]:
        n = len(self.utts)
        first = (step * self.world + self.rank) * self.batch_size
        return [self._permutation(p // n)[p % n] for p in range(first, first + self.batch_size)]

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, rng_for(self.seed, "epoch", epoch).permutation(len(self.utts)))
        return self._perm[1]

    def __getitem__(self, step: int) -> Any:
        chosen = [self.utts[i] for i in self.indices(step)]
        waves = [load_utterance(u, self.manifest_dir, self.max_duration_s) for u in chosen]
        length = min(min(len(w) for w in waves), self.max_crop)
        rng = np.random.default_rng(derive_seed(self.seed, "batch", step, self.rank))
        offsets = [int(rng.integers(0, len(w) - length + 1)) for w in waves]
        crops = [w[o : o + length] for w, o in zip(waves, offsets, strict=True)]
        return self.make_batch(crops, chosen, offsets, rng)


def step_loader(dataset: StepBatches, start: int, stop: int, num_workers: int) -> torch.utils.data.DataLoader:
    """Batches of steps start..stop-1, built `num_workers` processes ahead of the training loop."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(start, stop), num_workers=num_workers,
                                       prefetch_factor=4 if num_workers else None,
                                       persistent_workers=False, pin_memory=torch.cuda.is_available())
