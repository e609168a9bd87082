"""Supervised phonetic units: a small frame phone classifier over log-mel, trained on a manifest's phone alignments.

    koe units train-phonetic runs/tiny/synth/manifest.jsonl out_dir=runs/tiny/phonetic
    koe units fit runs/tiny/synth/manifest.jsonl features=phonetic:runs/tiny/phonetic quantizer=classes \
        min_run_frames=3 out_dir=runs/tiny/tokenizer

Why: k-means over log-mel or MFCC frames of a few hours of speech gives units that change with the voice and flicker
inside a phone, and a small speech LM learns little from them (on TinySpeech a unit 4-gram scores chance on word vs
pseudo-word pairs, a phone 3-gram 80%). Where phone alignments exist (`koe synth` writes exact ones, `koe align`
forced ones), a classifier trained on them gives voice-independent, phone-like units: the supervised-tokenizer idea
of GLM-4-Voice and CosyVoice's S3 tokenizer (ASR-supervised codes), small enough to train on a CPU in minutes.

The classifier's per-frame phone posteriors are a feature backend (`phonetic:<dir>`, 100 Hz). `quantizer=classes`
makes each phone class one unit (identity centroids: the nearest one-hot centroid to a posterior is its argmax);
`quantizer=kmeans` clusters the posteriors instead. Directory: phonetic.json (phones, architecture, mel parameters,
held-out frame accuracy, sha256 of the weights) + model.safetensors; format in docs/units.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from koe.stage import KoeInputError, atomic_write_text
from koe.units.features import MEL_PARAMS, FeatureExtractor, FeatureSpec, SpectralExtractor

SCHEMA_VERSION = 1
SPEC_FILE, WEIGHTS_FILE = "phonetic.json", "model.safetensors"
BUNDLED_DIR = "phonetic"  # inside a tokenizer directory fitted on phonetic features
NORMALIZATION = "utterance_above_floor"  # phonetic.json "normalization"; absent = all frames (older classifiers)
SILENCE = "<sil>"
DILATIONS = (1, 2, 4, 1)  # receptive field 1 + 4 * (1 + 2 + 4) + 2 = 31 frames = 0.31 s


def phone_class(label: str) -> str:
    """Class of an aligned phone label: espeak stress marks and ARPAbet stress digits removed (`'eI` -> `eI`,
    `AH0` -> `AH`), silence labels mapped to one class. Stress is a property of the word, not of the frame."""
    label = label.strip().lstrip("',%=")
    if label.lower() in ("", "sil", "sp", "spn", "<sil>", "_", "pau"):
        return SILENCE
    return re.sub(r"(?<=[A-Za-z])[012]$", "", label)


class PhoneClassifier(torch.nn.Module):
    """Dilated 1-D convolutions over utterance-normalised log-mel; 0.31 s of context per frame."""

    def __init__(self, n_mels: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        channels = n_mels
        for i, d in enumerate(DILATIONS):
            k = 3 if i == len(DILATIONS) - 1 else 5
            layers += [torch.nn.Conv1d(channels, hidden_size, k, padding=d * (k - 1) // 2, dilation=d),
                       torch.nn.GELU()]
            channels = hidden_size
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Conv1d(hidden_size, num_classes, 1)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """[B, T, n_mels] log-mel (already normalised) -> [B, T, classes] logits."""
        return self.head(self.body(logmel.transpose(1, 2))).transpose(1, 2)


def normalize_utterance(logmel: torch.Tensor, log_floor: float | None = None) -> torch.Tensor:
    """Mean/variance normalisation over the utterance's own frames: removes most of the voice and channel.

    With `log_floor` (the log-mel floor, log(1e-10) by default), the statistics leave out digital silence (frames
    whose loudest band is within 1 nat of the floor, and the 2 frames either side, whose windows straddle it): zero
    padding or espeak's exact-zero pauses would otherwise set the mean and variance by how much of the clip is
    padding (0.15 s of zeros around a word raised its phone error rate from 43% to 70%). Fewer than 10 frames left:
    all frames are used."""
    x = logmel
    if log_floor is not None:
        silent = (logmel.max(dim=1).values <= log_floor + 1.0).float()[None, None]
        near_silent = torch.nn.functional.max_pool1d(silent, 5, stride=1, padding=2)[0, 0] > 0
        heard = logmel[~near_silent]
        x = heard if len(heard) >= 10 else logmel
    return (logmel - x.mean(0)) / (x.std(0) + 1e-5)


def log_floor_of(spec: dict[str, Any]) -> float | None:
    """The floor `normalize_utterance` skips for a classifier spec; None for classifiers trained before that."""
    return math.log(spec["mel"]["log_floor"]) if spec.get("normalization") == NORMALIZATION else None


def weights_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def save_classifier(out_dir: Path, model: PhoneClassifier, phones: list[str], hidden_size: int,
                    extra: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_FILE
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(weights))
    spec = {"schema_version": SCHEMA_VERSION, "phones": phones, "hidden_size": hidden_size, "dilations": DILATIONS,
            "mel": MEL_PARAMS, "normalization": NORMALIZATION, "weights_sha256": weights_sha256(weights), **extra}
    atomic_write_text(out_dir / SPEC_FILE, json.dumps(spec, indent=1) + "\n")


def load_classifier(directory: str | Path) -> tuple[PhoneClassifier, dict[str, Any]]:
    """The classifier and its spec; a directory whose weights changed since the spec was written is refused."""
    directory = Path(directory)
    spec_path, weights = directory / SPEC_FILE, directory / WEIGHTS_FILE
    if not spec_path.exists() or not weights.exists():
        raise KoeInputError(f"features=phonetic:{directory}: missing {SPEC_FILE} or {WEIGHTS_FILE} "
                            "(train one with `koe units train-phonetic`)")
    spec = json.loads(spec_path.read_text())
    if weights_sha256(weights) != spec["weights_sha256"]:
        raise KoeInputError(f"{weights}: weights do not match {spec_path} (weights_sha256); retrain or restore")
    model = PhoneClassifier(spec["mel"]["n_mels"], spec["hidden_size"], len(spec["phones"]))
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), spec


def bundle_classifier(source: str | Path, tokenizer_dir: Path) -> str:
    """Copy the classifier into `tokenizer_dir/phonetic` and return that path relative to the tokenizer, so a
    tokenizer directory holds everything it needs and can be moved or shared (the classifier is ~100 KB)."""
    import shutil

    target = tokenizer_dir / BUNDLED_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in (SPEC_FILE, WEIGHTS_FILE):
        if Path(source).resolve() != target.resolve():
            shutil.copyfile(Path(source) / name, target / name)
    return BUNDLED_DIR


class PhoneticExtractor(FeatureExtractor):
    """Phone posteriors [frames, classes] at 100 Hz: log-mel -> utterance normalisation -> classifier -> softmax."""

    def __init__(self, source: str, device: torch.device, batch_s: float) -> None:
        super().__init__(batch_s)
        model, spec = load_classifier(source)
        self.device = device
        self.mel = SpectralExtractor("mel", device, batch_s, spec["mel"])
        self.model = model.to(device)
        self.log_floor = log_floor_of(spec)
        self.spec = FeatureSpec(backend="phonetic", source=str(source), frame_rate_hz=self.mel.spec.frame_rate_hz,
                                dim=len(spec["phones"]),
                                params={"weights_sha256": spec["weights_sha256"], "phones": spec["phones"]})

    def num_frames(self, n: int) -> int:
        return self.mel.num_frames(n)

    @torch.inference_mode()
    def _forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        return [torch.softmax(self.model(normalize_utterance(logmel, self.log_floor)[None])[0], dim=-1)
                for logmel in self.mel._forward(inputs)]
