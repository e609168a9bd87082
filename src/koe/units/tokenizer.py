"""A fitted unit tokenizer: one self-contained directory that turns 16 kHz audio into de-duplicated units.

    tok = UnitTokenizer.load("tok/hubert500", device="cuda")
    units, durations = tok.encode_audio(wav)        # int32 dedup units, int32 frames per unit
    pairs = tok.encode_batch([wav_a, wav_b])          # [(units, durations), ...]
    ids, durations = tok.audio_to_ids(wav)            # the unit ids a model reads (BPE applied, if any)
    units = tok.ids_to_units(ids)                     # and back: dedup units for a vocoder
    tok.frame_rate_hz, tok.num_units, tok.vocab_size, tok.content_hash

Directory (written by `koe units fit`, read by `koe units encode`, `koe data build`, `koe bench build`,
`koe generate`); see docs/units.md:

    unit_tokenizer.json   {"schema_version": 1, "features": {"backend": "hf", "source": "facebook/hubert-base-ls960",
                           "layer": 9, "sample_rate_hz": 16000, "frame_rate_hz": 50.0, "dim": 768, "params": {...}},
                           "num_units": 500, "dedup": true, "bpe": null, "fit": {...}, "content_hash": "3f2a..."}
    centroids.npy         float32 [num_units, dim]
    bpe.json              optional `tokenizers` BPE over unit characters (bpe: {"vocab_size", "file"})

Syllable tokenizers (`koe units fit segmentation=mincut|greedy`) add a "segmentation" section (koe.units.segment
SegmentParams): frames are cut into syllable-like segments, each segment's mean feature gets the nearest centroid,
and repeats are kept (`dedup` false). Frame tokenizers have no such key, so their JSON and hash are unchanged.

content_hash = first 16 hex of sha256(spec JSON without the hash + centroid bytes + bpe.json bytes); it changes
whenever anything that changes the units changes, and `load` refuses a directory whose files no longer match it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.stage import KoeInputError, atomic_write_text, write_json
from koe.units.features import FeatureExtractor, FeatureSpec, Prepared, build_extractor

SCHEMA_VERSION = 1
SPEC_FILE, CENTROIDS_FILE, BPE_FILE = "unit_tokenizer.json", "centroids.npy", "bpe.json"


def dedup_units(frames: np.ndarray, min_run_frames: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encode frame labels: (units with consecutive repeats removed, frames per unit), both int32.

    With min_run_frames > 1, runs shorter than that are flicker at a unit edge: their frames go to the kept run
    before them (leading ones to the first kept run), so durations still sum to the number of frames.
    """
    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    units, durations = _run_lengths(frames)
    keep = durations >= min_run_frames
    if min_run_frames > 1 and keep.any() and not keep.all():
        owner = np.maximum(np.cumsum(keep) - 1, 0)
        units, durations = units[keep], np.bincount(owner, weights=durations).astype(np.int64)
        starts = np.concatenate([[True], units[1:] != units[:-1]])  # neighbours that met across a dropped run
        units, durations = units[starts], np.bincount(np.cumsum(starts) - 1, weights=durations).astype(np.int64)
    return units.astype(np.int32), durations.astype(np.int32)


def _run_lengths(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.concatenate([[True], labels[1:] != labels[:-1]]))
    return labels[starts], np.diff(np.concatenate([starts, [len(labels)]]))


def expand_units(units: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """The frame-level label sequence back from dedup units and durations (inverse of dedup_units)."""
    return np.repeat(np.asarray(units, dtype=np.int32), np.asarray(durations, dtype=np.int64))


@dataclasses.dataclass
class Tokens:
    """One utterance's tokens: ids, frames per token (summing to the utterance's frames) and, for syllable units,
    the true [start, end) frames of each token's segment (int32 [M, 2]; None for frame units)."""

    units: np.ndarray
    durations: np.ndarray
    segments: np.ndarray | None = None


@dataclasses.dataclass
class UnitTokenizerSpec:
    """The contents of unit_tokenizer.json."""

    features: FeatureSpec
    num_units: int
    dedup: bool = True
    bpe: dict[str, Any] | None = None  # {"vocab_size": int, "file": "bpe.json"}
    fit: dict[str, Any] = dataclasses.field(default_factory=dict)  # manifest, num_frames, seed, iterations, ...
    content_hash: str = ""
    schema_version: int = SCHEMA_VERSION
    segmentation: dict[str, Any] | None = None  # SegmentParams of a syllable tokenizer; None = frame units
    min_run_frames: int = 1  # shorter runs are merged into the unit before them (dedup_units)

    def to_dict(self) -> dict[str, Any]:
        d = {**dataclasses.asdict(self), "features": self.features.to_dict()}
        for key, default in (("segmentation", None), ("min_run_frames", 1)):
            if d[key] == default:  # older tokenizers keep the JSON (and content hash) they always had
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = SPEC_FILE) -> UnitTokenizerSpec:
        if d.get("schema_version", 0) > SCHEMA_VERSION:
            raise KoeInputError(f"{where}: schema_version {d['schema_version']} is newer than {SCHEMA_VERSION}")
        try:
            return cls(**{**d, "features": FeatureSpec.from_dict(d["features"])})
        except (KeyError, TypeError) as e:
            raise KoeInputError(f"{where}: not a unit tokenizer spec ({e})") from None


def content_hash(spec: UnitTokenizerSpec, centroids: np.ndarray, bpe_bytes: bytes | None) -> str:
    blob = json.dumps({**spec.to_dict(), "content_hash": None}, sort_keys=True).encode()
    h = hashlib.sha256(blob)
    h.update(np.ascontiguousarray(centroids, dtype="<f4").tobytes())
    h.update(bpe_bytes or b"")
    return h.hexdigest()[:16]


class UnitTokenizer:
    """Features -> nearest centroid per frame -> run-length dedup; the feature extractor loads on first use."""

    def __init__(self, spec: UnitTokenizerSpec, centroids: np.ndarray, bpe_json: str | None = None,
                 device: str = "cpu", batch_s: float = 160.0) -> None:
        centroids = np.asarray(centroids, dtype=np.float32)
        if centroids.shape != (spec.num_units, spec.features.dim):
            raise KoeInputError(f"centroids have shape {centroids.shape}, the spec says "
                                f"[{spec.num_units}, {spec.features.dim}]")
        self.spec, self.centroids, self.bpe_json = spec, centroids, bpe_json
        self.device, self.batch_s = device, batch_s
        self.root: Path | None = None  # the directory it was loaded from: relative feature sources live there
        self._extractor: FeatureExtractor | None = None
        self._bpe = None
        self._centroids_t = None
        if not spec.content_hash:
            spec.content_hash = content_hash(spec, centroids, self._bpe_bytes())

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu", batch_s: float = 160.0) -> UnitTokenizer:
        """Read a tokenizer directory; KoeInputError if it is incomplete or its files do not match its hash."""
        d = Path(directory)
        spec_path = d / SPEC_FILE
        if not spec_path.exists():
            raise KoeInputError(f"{d}: not a unit tokenizer directory (no {SPEC_FILE}; run `koe units fit`)")
        spec = UnitTokenizerSpec.from_dict(json.loads(spec_path.read_text()), where=str(spec_path))
        try:
            centroids = np.load(d / CENTROIDS_FILE)
            bpe_json = (d / spec.bpe["file"]).read_text(encoding="utf-8") if spec.bpe else None
        except OSError as e:
            raise KoeInputError(f"{d}: incomplete tokenizer directory ({e})") from None
        tok = cls(dataclasses.replace(spec, content_hash=""), centroids, bpe_json, device, batch_s)
        if tok.content_hash != spec.content_hash:
            raise KoeInputError(f"{spec_path}: content_hash {spec.content_hash} does not match the files "
                                f"({tok.content_hash}); the directory was modified after `koe units fit`")
        tok.root = d
        return tok

    def save(self, directory: str | Path) -> Path:
        """Write the three files (bpe.json only with BPE); returns the directory."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.bpe_json is not None:
            atomic_write_text(d / BPE_FILE, self.bpe_json)
        tmp = d / f".{CENTROIDS_FILE}.tmp"
        with tmp.open("wb") as f:
            np.save(f, self.centroids)
        tmp.replace(d / CENTROIDS_FILE)
        write_json(d / SPEC_FILE, self.spec.to_dict())
        return d

    def _bpe_bytes(self) -> bytes | None:
        return self.bpe_json.encode("utf-8") if self.bpe_json is not None else None

    @property
    def content_hash(self) -> str:
        return self.spec.content_hash

    @property
    def num_units(self) -> int:
        return self.spec.num_units

    @property
    def vocab_size(self) -> int:
        """Ids a language model needs: the BPE vocabulary with BPE, else num_units."""
        return self.spec.bpe["vocab_size"] if self.spec.bpe else self.spec.num_units

    @property
    def frame_rate_hz(self) -> float:
        return self.spec.features.frame_rate_hz

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            features = self.spec.features
            if features.source and self.root is not None and (self.root / features.source).is_dir():
                features = dataclasses.replace(features, source=str(self.root / features.source))
            self._extractor = build_extractor(features, self.device, batch_s=self.batch_s)
        return self._extractor

    @property
    def segment_params(self):
        """koe.units.segment.SegmentParams of a syllable tokenizer, None for frame units."""
        if self.spec.segmentation is None:
            return None
        from koe.units.segment import SegmentParams

        return SegmentParams.from_dict(self.spec.segmentation)

    def frame_units(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        """Frame-level unit labels (before dedup; syllable ids repeated over their durations), one array per input."""
        return [expand_units(t.units, t.durations) for t in self.tokenize(wavs)]

    def tokenize(self, wavs: list[np.ndarray]) -> list[Tokens]:
        """Tokens of each 16 kHz mono float32 input."""
        return self.tokenize_features(self.extractor.extract([np.asarray(w, dtype=np.float32) for w in wavs]))

    def tokenize_prepared(self, prepared: Prepared) -> list[Tokens]:
        """The device half of `tokenize` (see `prepare`)."""
        return self.tokenize_features(self.extractor.run(prepared))

    def tokenize_features(self, feats: list) -> list[Tokens]:
        """Tokens from feature tensors [frames, dim]: dedup frame labels, or pooled syllable segments."""
        params = self.segment_params
        if params is None:
            return [Tokens(*dedup_units(f, self.spec.min_run_frames)) for f in self._labels(feats)]
        import torch

        from koe.units.segment import segment_features
        from koe.units.syllables import syllable_tokens

        spec = self.spec.features
        cut = [segment_features(f.float().cpu().numpy(), spec.backend, spec.frame_rate_hz, params,
                                spec.params.get("n_mels", 40)) for f in feats]
        labels = self._labels([torch.from_numpy(pooled) for _, pooled in cut])
        out = []
        for f, (segs, _), lab in zip(feats, cut, labels, strict=True):
            out.append(Tokens(*syllable_tokens(segs, lab, len(f)), segs.astype(np.int32)))
        return out

    def prepare(self, wavs: list[np.ndarray]) -> Prepared:
        """The CPU half of encode_batch (chunk, sort, pad), safe to run in a loader thread once `extractor` exists."""
        return self.extractor.prepare([np.asarray(w, dtype=np.float32) for w in wavs])

    def encode_prepared(self, prepared: Prepared) -> list[tuple[np.ndarray, np.ndarray]]:
        """The device half of encode_batch."""
        return [(t.units, t.durations) for t in self.tokenize_prepared(prepared)]

    def _labels(self, feats: list) -> list[np.ndarray]:
        import torch

        from koe.units.kmeans import assign_units

        if self._centroids_t is None:
            self._centroids_t = torch.from_numpy(self.centroids).to(self.extractor.device)
        if not feats:
            return []
        labels = assign_units(torch.cat(feats), self._centroids_t).to(torch.int32).cpu().numpy()
        return np.split(labels, np.cumsum([len(f) for f in feats])[:-1])

    def encode_batch(self, wavs: list[np.ndarray], sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(dedup units int32, durations int32 in frames) per mono float32 input; other rates are resampled."""
        if sample_rate_hz != TARGET_SAMPLE_RATE_HZ:
            import soxr

            wavs = [soxr.resample(w, sample_rate_hz, TARGET_SAMPLE_RATE_HZ, quality="HQ") for w in wavs]
        return [(t.units, t.durations) for t in self.tokenize(wavs)]

    def encode_audio(self, wav: np.ndarray, sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(dedup units int32, durations int32 in frames) of one mono float32 waveform."""
        return self.encode_batch([wav], sample_rate_hz)[0]

    @property
    def bpe(self):
        """The `tokenizers.Tokenizer` over unit characters, or None without BPE."""
        if self._bpe is None and self.bpe_json is not None:
            from tokenizers import Tokenizer

            self._bpe = Tokenizer.from_str(self.bpe_json)
        return self._bpe

    def apply_bpe(self, units: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BPE ids and their durations (frames) of a dedup sequence; the identity without BPE."""
        if self.bpe is None:
            return np.asarray(units, np.int32), np.asarray(durations, np.int32)
        from koe.units.bpe import bpe_encode

        return bpe_encode(self.bpe, units, durations)

    def undo_bpe(self, ids: np.ndarray) -> np.ndarray:
        """Dedup units spelled by BPE ids; the identity without BPE."""
        if self.bpe is None:
            return np.asarray(ids, np.int32)
        from koe.units.bpe import bpe_decode

        return bpe_decode(self.bpe, ids)

    # ------------------------------------------------------------------ the unit-id contract (docs/units.md)
    def units_to_ids(self, units: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unit ids a language model reads, and their frames, from a unit shard's dedup units: BPE applied when
        the tokenizer has one. Every consumer (data build, the bench cache, eval, generate) goes through here, so a
        model is always scored and prompted with the ids it was trained on. ValueError on a unit outside the
        tokenizer's [0, num_units)."""
        units = np.asarray(units)
        if len(units) and (units.min() < 0 or units.max() >= self.num_units):
            raise ValueError(f"unit {int(units.max()) if units.max() >= self.num_units else int(units.min())} "
                             f"outside [0, {self.num_units}) of unit tokenizer {self.content_hash}")
        return self.apply_bpe(units, durations)

    def audio_to_ids(self, wav: np.ndarray, sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ
                     ) -> tuple[np.ndarray, np.ndarray]:
        """`units_to_ids` of one waveform's dedup units."""
        return self.units_to_ids(*self.encode_audio(wav, sample_rate_hz))

    def ids_to_units(self, ids: np.ndarray) -> np.ndarray:
        """The inverse of `units_to_ids`: BPE undone and, for a dedup tokenizer, repeats that meet across two
        pieces (or that a model generated) merged, so the vocoder gets the dedup units it was trained on."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"unit id {int(ids.max()) if ids.max() >= self.vocab_size else int(ids.min())} "
                             f"outside [0, {self.vocab_size}) of unit tokenizer {self.content_hash}")
        units = self.undo_bpe(ids)
        if self.spec.dedup and len(units):
            units = units[np.concatenate([[True], units[1:] != units[:-1]])]
        return np.asarray(units, np.int32)

    def copy_to(self, directory: str | Path) -> Path:
        """Write this tokenizer to `directory` with everything it needs (a classifier bundled in its source folder
        too), so the copy loads alone and keeps the content hash; returns the directory."""
        import shutil

        d = self.save(directory)
        source = self.spec.features.source
        if source and self.root is not None and not Path(source).is_absolute() and (self.root / source).is_dir():
            shutil.copytree(self.root / source, d / source, dirs_exist_ok=True)
        return d

