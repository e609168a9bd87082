"""koe.ssl.data: held-out selection, and batches that depend on (seed, step, rank) only, not on worker count."""

from __future__ import annotations

import numpy as np
import torch

from koe.corpus.manifest import read_manifest, write_manifest
from koe.ssl.data import StepBatches, split_utterances, step_loader
from koe.stage import StageReport


def stack_crops(crops, utts, offsets, rng):
    """A picklable make_batch: the crops, their offsets and one draw of the batch's rng."""
    return {"wave": torch.from_numpy(np.stack(crops)), "offsets": torch.tensor(offsets),
            "draw": torch.tensor(rng.random())}


def _batches(manifest, rank=0, world=1):
    train, _ = split_utterances(manifest, "train", "valid", 0, 1.0, 0, StageReport("t"))
    return StepBatches(train, manifest.parent, batch_size=3, max_crop_s=0.5, max_duration_s=None, seed=0,
                       rank=rank, world=world, make_batch=stack_crops)


def test_batches_do_not_depend_on_workers(voiced_manifest):
    batches = _batches(voiced_manifest)
    direct = [batches[s] for s in range(4)]
    loaded = list(step_loader(batches, 0, 4, num_workers=2))
    for a, b in zip(direct, loaded, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert direct[0]["wave"].shape == (3, 8000)  # cropped to max_crop_s (every utterance is longer)


def test_ranks_and_epochs_cover_every_utterance_once(voiced_manifest):
    """Two ranks take disjoint slices of one permutation; an epoch visits each utterance exactly once."""
    ranks = [_batches(voiced_manifest, r, 2) for r in (0, 1)]
    n = len(ranks[0].utts)
    seen = [i for step in range(n // 6) for b in ranks for i in b.indices(step)]
    assert len(seen) == len(set(seen)) == (n // 6) * 6


def test_held_out_comes_from_the_valid_split(voiced_manifest, tmp_path):
    utts = read_manifest(voiced_manifest)
    for u in utts[:3]:
        u.split = "valid"
        u.audio_path = str(voiced_manifest.parent / u.audio_path)
    for u in utts[3:]:
        u.audio_path = str(voiced_manifest.parent / u.audio_path)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, utts)
    train, held = split_utterances(manifest, "train", "valid", 2, 1.0, 0, StageReport("t"))
    assert {u.split for u in held} == {"valid"} and len(held) == 2
    assert not {u.id for u in held} & {u.id for u in train}
    train_all, held_all = split_utterances(manifest, None, "valid", 5, 1.0, 0, StageReport("t"))
    assert len(held_all) == 3 and len(train_all) == len(utts) - 3  # split=null trains on all but the valid split
