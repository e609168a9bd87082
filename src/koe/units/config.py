"""Configs of `koe units fit`, `koe units encode` and `koe units stats` (no heavy imports: `koe --help` stays fast).

    koe units fit data/manifest.jsonl out_dir=tok/mfcc100 features=mfcc k=100
    koe units fit data/manifest.jsonl out_dir=tok/hubert500 features=hf:facebook/hubert-base-ls960@9 k=500
    koe units encode data/manifest.jsonl tokenizer=tok/hubert500 out_dir=units/hubert500 num_workers=4
    koe units fit data/manifest.jsonl out_dir=tok/syl features=mfcc segmentation=mincut k=500 reduce_to=200
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FEATURES_HELP = ("mel | mfcc | hf:<hub id or local path>@<layer> (e.g. hf:facebook/hubert-base-ls960@9) | "
                 "phonetic:<dir> (phone posteriors of a classifier from `koe units train-phonetic`)")


def parse_features(text: str) -> tuple[str, str | None, int | None]:
    """`mel` -> ("mel", None, None); `hf:facebook/hubert-base-ls960@9` -> ("hf", "facebook/hubert-base-ls960", 9);
    `phonetic:runs/tiny/phonetic` -> ("phonetic", "runs/tiny/phonetic", None)."""
    if text in ("mel", "mfcc"):
        return text, None, None
    if text.startswith("phonetic:") and text != "phonetic:":
        return "phonetic", text.removeprefix("phonetic:"), None
    source, sep, layer = text.removeprefix("hf:").rpartition("@")
    if not text.startswith("hf:") or not sep or not source or not layer.isdigit():
        raise ValueError(f"features={text!r}: expected mel, mfcc, hf:<hub id or path>@<layer> or phonetic:<dir>")
    return "hf", source, int(layer)


SEGMENTATIONS = ("none", "mincut", "greedy", "uniform")


@dataclass
class SegmentOptions:
    """Settings of syllable segmentation (koe.units.segment); defaults tuned to 3-7 tokens/s (docs/units.md)."""

    sec_per_syllable: float = field(
        default=0.1, metadata={"help": "mincut: a speech region of d seconds is first cut into ceil(d / this) + 1"})
    merge_threshold: float = field(
        default=0.5, metadata={"help": "merge adjacent segments while the cosine of their mean features >= this"})
    greedy_threshold: float = field(
        default=0.3, metadata={"help": "greedy: start a new segment when cos(frame, segment mean) < this"})
    max_segment_s: float = field(default=0.7, metadata={"help": "mincut: longest segment before merging"})
    silence_threshold: float = field(
        default=0.1, metadata={"help": "speech where the activity (feature L2 norm; log energy for mel/mfcc), "
                                       "min-max normalised between its 1st and 99th percentiles, exceeds this"})
    min_silence_s: float = field(default=0.05, metadata={"help": "shorter pauses inside speech are filled in"})
    min_speech_s: float = field(default=0.03, metadata={"help": "shorter speech runs are treated as silence"})
    min_segment_s: float = field(
        default=0.1, metadata={"help": "shorter segments join their more similar neighbour (after the algorithm)"})
    cmvn: bool = field(default=True, metadata={"help": "normalise each utterance's features to zero mean, unit "
                                                      "variance before segmenting and pooling"})
    smooth_s: float = field(default=0.05, metadata={"help": "moving average over this many seconds of frames"})
    cosine: bool = field(default=True, metadata={"help": "scale frames to unit length: similarities are cosines"})

    def validate(self) -> list[str]:
        problems = [f"syllables.{k}={v} must be > 0" for k, v in
                    (("sec_per_syllable", self.sec_per_syllable), ("max_segment_s", self.max_segment_s)) if v <= 0]
        problems += [f"syllables.{k}={v} must be >= 0" for k, v in
                     (("min_silence_s", self.min_silence_s), ("min_speech_s", self.min_speech_s),
                      ("min_segment_s", self.min_segment_s), ("smooth_s", self.smooth_s)) if v < 0]
        return problems


@dataclass
class FitConfig:
    """Fit a unit tokenizer: features of a seeded sample of frames, faiss k-means, optional BPE."""

    manifest: Path = field(metadata={"help": "manifest (JSON Lines) whose audio the codebook is fitted on"})
    out_dir: Path = field(metadata={"help": "tokenizer directory to write (unit_tokenizer.json, centroids.npy)"})
    features: str = field(default="mfcc", metadata={"help": FEATURES_HELP})
    k: int = field(default=100, metadata={"help": "number of units (clusters); 500 is the usual choice for HuBERT"})
    iterations: int = field(default=50, metadata={"help": "k-means (Lloyd) iterations"})
    max_frames: int = field(
        default=500_000, metadata={"help": "frames sampled for k-means (seeded, over randomly ordered utterances)"}
    )
    max_points_per_centroid: int = field(
        default=10_000,
        metadata={"help": "faiss subsamples to k*this many points; faiss's 256 fits HuBERT K=500 worse, so keep high"},
    )
    init: Literal["kmeans++", "random", "afkmc2"] = field(
        default="kmeans++", metadata={"help": "k-means init; faiss's default, random, merges clusters more often"}
    )
    nredo: int = field(default=1, metadata={"help": "k-means runs from different inits; the lowest inertia is kept"})
    seed: int = field(default=0, metadata={"help": "seed of utterance order, frame sampling and k-means init"})
    quantizer: Literal["kmeans", "classes"] = field(
        default="kmeans", metadata={"help": "kmeans, or classes = one unit per class of phonetic:<dir> features "
                                            "(argmax of the posteriors; k is then the number of classes)"})
    min_run_frames: int = field(
        default=1, metadata={"help": "runs of one unit shorter than this many frames go to the unit before them: "
                                     "removes flicker at unit edges (3 for phonetic classes)"})
    bpe_vocab_size: int = field(default=0, metadata={"help": "BPE vocabulary over dedup units (> k); 0 = no BPE"})
    segmentation: Literal["none", "mincut", "greedy", "uniform"] = field(
        default="none", metadata={"help": "none = frame units; mincut (SD-HuBERT), greedy (Sylber) or uniform (a "
                                          "baseline) = one token per syllable-like segment (mean-pooled features)"})
    syllables: SegmentOptions = field(default_factory=SegmentOptions)
    reduce_to: int = field(
        default=0, metadata={"help": "syllables: Ward-agglomerate the k k-means centroids to this many units; 0 = no"})
    split: str | None = field(default="train", metadata={"help": "manifest split to fit on; null = all"})
    chunk_s: float = field(default=30.0, metadata={"help": "HF encoders see audio in chunks of at most this long"})
    batch_s: float = field(default=320.0, metadata={"help": "padded seconds of audio per encoder batch"})
    max_duration_s: float | None = field(default=600.0, metadata={"help": "longer utterances are listed as failed"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    force: bool = field(default=False, metadata={"help": "refit even if out_dir holds a fit of the same config"})

    def validate(self) -> list[str]:
        problems = []
        try:
            parse_features(self.features)
        except ValueError as e:
            problems.append(str(e))
        if self.k < 2:
            problems.append(f"k={self.k} must be >= 2")
        if self.iterations < 1:
            problems.append(f"iterations={self.iterations} must be >= 1")
        if self.max_frames < self.k:
            problems.append(f"max_frames={self.max_frames} must be >= k={self.k}")
        if self.bpe_vocab_size and self.bpe_vocab_size <= self.k:
            problems.append(f"bpe_vocab_size={self.bpe_vocab_size} must be 0 or > k={self.k}")
        if self.max_points_per_centroid < 1 or self.nredo < 1:
            problems.append("max_points_per_centroid and nredo must be >= 1")
        if self.chunk_s <= 0 or self.batch_s <= 0:
            problems.append("chunk_s and batch_s must be > 0")
        if self.segmentation not in SEGMENTATIONS:
            problems.append(f"segmentation={self.segmentation!r}: expected one of {', '.join(SEGMENTATIONS)}")
        if self.quantizer == "classes" and (not self.features.startswith("phonetic:") or self.segmentation != "none"):
            problems.append("quantizer=classes needs features=phonetic:<dir> and segmentation=none")
        if self.min_run_frames < 1 or (self.min_run_frames > 1 and self.segmentation != "none"):
            problems.append(f"min_run_frames={self.min_run_frames} must be >= 1 (and 1 for syllable tokens)")
        if self.reduce_to and (self.segmentation == "none" or not 2 <= self.reduce_to < self.k):
            problems.append(f"reduce_to={self.reduce_to} needs a segmentation (not none) and 2 <= reduce_to < k")
        return problems + self.syllables.validate()


@dataclass
class EncodeConfig:
    """Encode a manifest into unit shards; work is split over processes and over torchrun ranks."""

    manifest: Path = field(metadata={"help": "manifest (JSON Lines) to encode"})
    tokenizer: Path = field(metadata={"help": "tokenizer directory written by `koe units fit`"})
    out_dir: Path = field(metadata={"help": "folder for meta.json and shard-NNNNN.npz"})
    num_workers: int = field(default=1, metadata={"help": "processes per rank (use 1 per GPU; more for CPU features)"})
    shard_size: int = field(default=1000, metadata={"help": "utterances per shard (shard i holds lines i*size..)"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N (torchrun: cuda:LOCAL_RANK)"})
    max_duration_s: float | None = field(default=600.0, metadata={"help": "longer utterances are listed as failed"})
    batch_s: float = field(
        default=0.0, metadata={"help": "padded seconds of audio per encoder batch; 0 = 640 on CUDA, 320 on CPU"})
    loader_threads: int = field(default=4, metadata={"help": "threads decoding audio ahead of the encoder"})
    force: bool = field(default=False, metadata={"help": "re-encode even if out_dir holds the same encode"})

    def validate(self) -> list[str]:
        problems = []
        if self.num_workers < 1:
            problems.append(f"num_workers={self.num_workers} must be >= 1")
        if self.shard_size < 1:
            problems.append(f"shard_size={self.shard_size} must be >= 1")
        if self.batch_s < 0:
            problems.append(f"batch_s={self.batch_s} must be >= 0 (0 = by device)")
        if self.loader_threads < 1:
            problems.append(f"loader_threads={self.loader_threads} must be >= 1")
        return problems


@dataclass
class StatsConfig:
    """Statistics of unit shards: token rates, bitrate, codebook usage, and with alignments purity and PNMI."""

    units_dir: Path = field(metadata={"help": "folder written by `koe units encode` (meta.json + shards)"})
    manifest: Path | None = field(default=None, metadata={"help": "manifest with phones/words for purity and PNMI"})
    out_dir: Path | None = field(default=None, metadata={"help": "where to write the stats (default: units_dir)"})


@dataclass
class PhoneticConfig:
    """Train the frame phone classifier behind `features=phonetic:<dir>` on a manifest with phone times."""

    manifest: Path = field(metadata={"help": "manifest whose utterances carry phones (`koe synth`, `koe align`)"})
    out_dir: Path = field(metadata={"help": "classifier directory to write (phonetic.json, model.safetensors)"})
    hidden_size: int = field(default=256, metadata={"help": "channels of the dilated convolution stack"})
    epochs: float = field(default=2.0, metadata={"help": "passes over the training frames"})
    batch_size: int = field(default=32, metadata={"help": "windows per step"})
    window_frames: int = field(default=200, metadata={"help": "frames (10 ms each) per training window"})
    lr: float = field(default=2e-3, metadata={"help": "peak AdamW learning rate (one-cycle schedule)"})
    heldout_fraction: float = field(default=0.05, metadata={"help": "utterances kept out to report frame accuracy"})
    split: str | None = field(default="train", metadata={"help": "manifest split to train on; null = all"})
    max_duration_s: float | None = field(default=600.0, metadata={"help": "longer utterances are listed as failed"})
    seed: int = field(default=0, metadata={"help": "seed of init, held-out choice and batches"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})

    def validate(self) -> list[str]:
        problems = [f"{k}={getattr(self, k)} must be > 0" for k in ("hidden_size", "epochs", "batch_size",
                                                                      "window_frames", "lr") if getattr(self, k) <= 0]
        if not 0 < self.heldout_fraction < 1:
            problems.append(f"heldout_fraction={self.heldout_fraction} must be in (0, 1)")
        return problems
