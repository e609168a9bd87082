"""The one place vocoder kinds are registered: which class loads a vocoder folder, which function trains a kind.

    vocoder = load_vocoder("runs/voc")          # reads vocoder.json "kind", imports only that class
    report = trainer_for("hifigan")(cfg)

Adding a vocoder = one module with a class (`load(path, device)`, `synthesize(units, durations, speaker)`,
`num_units`, `mel`, `sample_rate_hz`) and a trainer, plus one line in each table below.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from koe.stage import KoeInputError

# vocoder.json "kind" -> class
KINDS = {
    "unit-mel-griffin-lim": "koe.vocoder.model:UnitVocoder",
    "unit-hifigan": "koe.vocoder.hifigan:HifiGanVocoder",
    "unit-codec-c2f": "koe.vocoder.coarse_to_fine:CoarseToFineVocoder",
}
# VocoderConfig.kind -> trainer
TRAINERS = {
    "baseline": "koe.vocoder.train:train_baseline",
    "hifigan": "koe.vocoder.hifigan_train:train_hifigan",
    "c2f": "koe.vocoder.c2f_train:train_c2f",
}


def _load(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def vocoder_kind(path: str | Path) -> str:
    """The kind written in `path`/vocoder.json; KoeInputError naming the folder when it is not a vocoder."""
    meta_path = Path(path) / "vocoder.json"
    if not meta_path.exists():
        raise KoeInputError(f"not a vocoder: {path}: no vocoder.json (train one with `koe vocoder train`)")
    kind = json.loads(meta_path.read_text()).get("kind", "unit-mel-griffin-lim")
    if kind not in KINDS:
        raise KoeInputError(f"unknown vocoder kind: {meta_path}: {kind!r} (known: {', '.join(KINDS)})")
    return kind


def vocoder_class(kind: str) -> type:
    return _load(KINDS[kind])


def load_vocoder(path: str | Path, device: str = "cpu"):
    return vocoder_class(vocoder_kind(path)).load(path, device=device)


def trainer_for(kind: str):
    if kind not in TRAINERS:
        raise KoeInputError(f"unknown vocoder kind {kind!r} (known: {', '.join(TRAINERS)})")
    return _load(TRAINERS[kind])
