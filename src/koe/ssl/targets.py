"""Pretraining targets: k-means labels of a koe unit tokenizer moved onto the encoder's frame grid, and span masks.

    tok = target_tokenizer(cfg, report)                        # fits MFCC k=100 into out_dir/targets if needed
    labels = frame_labels(tok, utts, manifest_dir, ...)        # {id: uint16 labels at the tokenizer's frame rate}
    y = align_labels(labels["a"], label_grid(tok.spec.features), geometry, offset=3200, num_frames=99)
    mask = span_mask(rng, batch=8, frames=249, prob=0.08, length=10)

Frame rates differ: MFCC frames are 100 Hz and centred (frame j is centred on sample 160 j), HuBERT frames are
50 Hz and frame i covers samples [320 i, 320 i + 400), centred on 320 i + 199.5. Each encoder frame takes the label
of the tokenizer frame whose centre is nearest to its own centre (MFCC frame 2 i + 1 for HuBERT frame i), which
works for any pair of uniform grids: a 50 Hz tokenizer on another HuBERT layer (iteration 2) maps one to one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from koe.corpus.manifest import Utterance
from koe.ssl.encoder import FrameGeometry
from koe.stage import KoeInputError, StageReport, progress


def label_grid(spec) -> tuple[float, float]:
    """(centre sample of label frame 0, samples between label frames) of a tokenizer's FeatureSpec."""
    if spec.backend in ("mel", "mfcc"):
        return 0.0, float(spec.params["hop"])  # centred STFT frames
    if spec.backend == "hf" and spec.params.get("model_type") != "whisper":
        return (spec.params["receptive_field"] - 1) / 2, float(spec.params["stride"])
    raise KoeInputError(f"targets: tokenizer features {spec.name!r} have no uniform frame grid koe.ssl can align "
                        "(use mel, mfcc or a wav2vec-style hf encoder)")


def align_labels(labels: np.ndarray, grid: tuple[float, float], geometry: FrameGeometry, offset: int,
                 num_frames: int) -> np.ndarray:
    """Labels (int64) of encoder frames 0..num_frames-1 of a crop starting at sample `offset` of the utterance."""
    first, step = grid
    centres = offset + geometry.centre(np.arange(num_frames))
    idx = np.floor((centres - first) / step + 0.5).astype(np.int64)
    return np.asarray(labels, dtype=np.int64)[np.clip(idx, 0, len(labels) - 1)]


def span_mask(rng: np.random.Generator, batch: int, frames: int, prob: float, length: int) -> np.ndarray:
    """HuBERT/wav2vec 2.0 masks: per row, int(prob * frames + u) span starts (u ~ U[0, 1), at least one) drawn
    without replacement from [0, frames - length], each masking `length` frames; spans may overlap. bool [B, T]."""
    mask = np.zeros((batch, frames), dtype=bool)
    last_start = max(frames - length, 0)
    for b in range(batch):
        num = min(max(1, int(prob * frames + rng.random())), last_start + 1)
        for s in rng.choice(last_start + 1, num, replace=False):
            mask[b, s : s + length] = True
    return mask


def target_tokenizer(tokenizer: Path | None, out_dir: Path, manifest: Path, split: str | None, k: int, seed: int,
                     device: str):
    """The given tokenizer directory, or an MFCC k-means one fitted by `koe units fit` into out_dir/targets
    (reused on a rerun: the fit has a done marker)."""
    from koe.units import UnitTokenizer

    if tokenizer is None:
        from koe.units.config import FitConfig
        from koe.units.fit import run_fit

        tokenizer = out_dir / "targets"
        run_fit(FitConfig(manifest=manifest, out_dir=tokenizer, features="mfcc", k=k, seed=seed, split=split,
                          device=device))
    return UnitTokenizer.load(tokenizer, device=device)


def frame_labels(tok, utts: list[Utterance], manifest_dir: Path, max_duration_s: float | None,
                 report: StageReport) -> dict[str, np.ndarray]:
    """Frame-level labels (before dedup) of every utterance, uint16, in batches of about 60 s of audio; files that
    cannot be read are listed in the report and left out."""
    from koe.units.encode import duration_groups, iter_loaded, split_loaded

    if tok.num_units > np.iinfo(np.uint16).max:
        raise KoeInputError(f"targets: {tok.num_units} units do not fit uint16 labels")
    groups = duration_groups(utts, 60.0)
    out: dict[str, np.ndarray] = {}
    for loaded, _ in progress(iter_loaded(utts, groups, manifest_dir, max_duration_s, threads=2),
                              desc="ssl targets", total=len(groups), unit="batch"):
        good, failed = split_loaded(loaded, utts)
        report.failures.extend(failed)
        for (i, _), labels in zip(good, tok.frame_units([w for _, w in good]), strict=True):
            out[utts[i].id] = labels.astype(np.uint16)
    return out
