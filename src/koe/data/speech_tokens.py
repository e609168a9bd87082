"""The speech vocabulary of a model: its unit tokenizer, and where unit ids sit among the model's token ids.

    speech = SpeechTokens(vocab, UnitTokenizer.load("runs/tiny/interleaved/final/unit_tokenizer"))
    ids, durations = speech.from_units(rec.units, rec.durations)   # a unit shard's record -> model token ids
    ids = speech.from_audio(wav)                                    # audio -> the same ids
    units = speech.to_units(generated_ids)                          # model ids -> dedup units for a vocoder

This is the one contract from audio to model ids (docs/sequences.md#unit-ids): dedup units -> the unit tokenizer's
BPE (when it has one) -> `unit_offset + id`; and back: `- unit_offset` -> BPE undone -> repeats merged. `koe data
build`, the bench token cache (which stores the tokenizer-level ids), `koe eval` and `koe generate` all use it.

Every folder that holds model ids carries the unit tokenizer they were made with (`write_speech_vocab`):

    <dir>/speech_vocab.json     {"schema_version": 1, "unit_tokenizer_hash": "3f2a9c0d1e2b4a5f",
                                 "unit_tokenizer": "unit_tokenizer"}
    <dir>/unit_tokenizer/       a copy of the tokenizer directory (same content hash)

`koe data build` writes it into the data dir, `koe train` copies it into `final/` and every checkpoint, and
`resolve_unit_tokenizer` reads it back for `koe eval`, `koe bench build model=` and `koe generate`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError, write_json

if TYPE_CHECKING:
    from koe.units.tokenizer import UnitTokenizer

SPEECH_VOCAB_FILE = "speech_vocab.json"
UNIT_TOKENIZER_DIR = "unit_tokenizer"
SCHEMA_VERSION = 1
_OLD_MODEL_HINT = ("it was made before models carried their unit tokenizer: pass unit_tokenizer=DIR (the tokenizer "
                   "its data was encoded with)")


@dataclasses.dataclass
class SpeechTokens:
    """Unit ids <-> model token ids for one vocabulary; `unit_tokenizer` is needed for audio, BPE and decoding."""

    vocab: SpeechVocab
    unit_tokenizer: UnitTokenizer | None = None

    def __post_init__(self) -> None:
        tok = self.unit_tokenizer
        if tok is not None and (tok.num_units, tok.vocab_size - tok.num_units) != (self.vocab.num_units,
                                                                                   self.vocab.num_bpe_units):
            raise KoeInputError(
                f"tokenizer-mismatch: unit tokenizer {tok.content_hash} ({tok.root}) has {tok.num_units} units + "
                f"{tok.vocab_size - tok.num_units} BPE pieces, the model vocabulary {self.vocab.num_units} + "
                f"{self.vocab.num_bpe_units}")

    @property
    def tokenizer(self) -> UnitTokenizer:
        if self.unit_tokenizer is None:
            raise KoeInputError("no-unit-tokenizer: speech needs the model's unit tokenizer; the model dir holds "
                                f"none ({SPEECH_VOCAB_FILE}) and no unit_tokenizer= was given")
        return self.unit_tokenizer

    def from_unit_ids(self, unit_ids: np.ndarray) -> np.ndarray:
        """Model token ids (int64) of tokenizer-level unit ids (BPE already applied, as the bench cache stores)."""
        unit_ids = np.asarray(unit_ids, dtype=np.int64)
        if len(unit_ids) and (unit_ids.min() < 0 or unit_ids.max() >= self.vocab.total_units):
            bad = int(unit_ids.max()) if unit_ids.max() >= self.vocab.total_units else int(unit_ids.min())
            raise ValueError(f"unit id {bad} outside the model's {self.vocab.total_units} unit ids (units made "
                             "with another unit tokenizer?)")
        return unit_ids + self.vocab.unit_offset

    def from_units(self, units: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model token ids and their frames from dedup units (a unit shard's record); BPE applied when the
        tokenizer has it. Without a tokenizer only a BPE-free vocabulary can be mapped (ids = units + offset)."""
        if self.unit_tokenizer is not None:
            ids, durations = self.unit_tokenizer.units_to_ids(units, durations)
        elif self.vocab.num_bpe_units:
            raise KoeInputError("no-unit-tokenizer: the vocabulary has unit BPE ids, so dedup units need the unit "
                                "tokenizer's BPE to become model ids")
        else:
            ids = np.asarray(units, dtype=np.int64)
            if len(ids) and ids.max() >= self.vocab.num_units:
                raise ValueError(f"unit {int(ids.max())} outside the model's {self.vocab.num_units} units")
        return self.from_unit_ids(ids), np.asarray(durations, dtype=np.int64)

    def from_audio(self, wav: np.ndarray) -> np.ndarray:
        """Model token ids of a 16 kHz mono waveform (`from_units` of its dedup units)."""
        return self.from_units(*self.tokenizer.encode_audio(wav))[0]

    def to_unit_ids(self, token_ids: Iterable[int]) -> np.ndarray:
        """Tokenizer-level unit ids of model token ids; ValueError on a non-unit id (a marker, text, eos)."""
        ids = np.asarray(list(token_ids), dtype=np.int64)
        bad = [int(i) for i in ids if not self.vocab.is_unit(int(i))]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are not unit ids [{self.vocab.unit_offset}, "
                             f"{self.vocab.unit_offset + self.vocab.total_units})")
        return ids - self.vocab.unit_offset

    def to_units(self, token_ids: Iterable[int]) -> np.ndarray:
        """Dedup units (int32) of model token ids: offset removed, BPE undone, repeats merged (for a vocoder)."""
        unit_ids = self.to_unit_ids(token_ids)
        if self.unit_tokenizer is None:
            if self.vocab.num_bpe_units:
                raise KoeInputError("no-unit-tokenizer: BPE unit ids cannot be undone without the unit tokenizer")
            return unit_ids.astype(np.int32)
        return self.unit_tokenizer.ids_to_units(unit_ids)


# ------------------------------------------------------------------------------------ the folder contract
def write_speech_vocab(unit_tokenizer: UnitTokenizer, directory: str | Path) -> Path:
    """Copy `unit_tokenizer` into `directory/unit_tokenizer` and record its hash in speech_vocab.json."""
    d = Path(directory)
    target = d / UNIT_TOKENIZER_DIR
    if target.exists():
        shutil.rmtree(target)  # a stale copy must not keep files the new tokenizer lacks (bpe.json)
    unit_tokenizer.copy_to(target)
    write_json(d / SPEECH_VOCAB_FILE, {"schema_version": SCHEMA_VERSION,
                                       "unit_tokenizer_hash": unit_tokenizer.content_hash,
                                       "unit_tokenizer": UNIT_TOKENIZER_DIR})
    return d


def copy_speech_vocab(source: str | Path, targets: Iterable[str | Path]) -> list[Path]:
    """Give every existing target folder (a model's final/, its checkpoints) the speech vocabulary of `source` (a
    data dir); returns the folders written. A source without one (data built before this contract) writes
    nothing: such models need unit_tokenizer= later, and say so."""
    recorded = read_speech_vocab(source)
    if recorded is None:
        warnings.warn(f"{source} has no {SPEECH_VOCAB_FILE} (built before data dirs carried their unit tokenizer): "
                      "the model dirs get none, and koe eval / koe generate will need unit_tokenizer=DIR",
                      stacklevel=2)
        return []
    tok = _load(Path(source), recorded)
    return [write_speech_vocab(tok, t) for t in map(Path, targets) if t.is_dir()]


def read_speech_vocab(directory: str | Path) -> dict | None:
    """speech_vocab.json of a data or model dir, or None when the dir has none (an old dir or a hub model)."""
    path = Path(directory) / SPEECH_VOCAB_FILE
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("schema_version", 0) > SCHEMA_VERSION:
            raise KoeInputError(f"{path}: schema_version {d['schema_version']} is newer than {SCHEMA_VERSION}")
        return {"unit_tokenizer_hash": str(d["unit_tokenizer_hash"]), "unit_tokenizer": str(d["unit_tokenizer"])}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise KoeInputError(f"bad-speech-vocab: {path}: {e}") from None


def _load(directory: Path, recorded: dict, device: str = "cpu") -> UnitTokenizer:
    from koe.units.tokenizer import UnitTokenizer

    tok = UnitTokenizer.load(directory / recorded["unit_tokenizer"], device=device)
    if tok.content_hash != recorded["unit_tokenizer_hash"]:
        raise KoeInputError(f"tokenizer-mismatch: {directory / SPEECH_VOCAB_FILE} records unit tokenizer "
                            f"{recorded['unit_tokenizer_hash']}, but {directory / recorded['unit_tokenizer']} is "
                            f"{tok.content_hash}")
    return tok


def resolve_unit_tokenizer(model_dir: str | Path, override: str | Path | None = None, device: str = "cpu",
                           required: bool = False) -> UnitTokenizer | None:
    """The unit tokenizer of a model dir: its own copy by default; `override` (the `unit_tokenizer=` option) must
    have the same content hash, and is the only way for a model dir without one. Refused with an error naming
    both hashes when they differ, and (with `required`) when neither is there, saying how to fix it."""
    from koe.units.tokenizer import UnitTokenizer

    model_dir = Path(model_dir)
    recorded = read_speech_vocab(model_dir) if model_dir.is_dir() else None
    given = UnitTokenizer.load(override, device=device) if override is not None else None
    if recorded is None:
        if given is None and required:
            raise KoeInputError(f"no-unit-tokenizer: {model_dir} has no {SPEECH_VOCAB_FILE}: {_OLD_MODEL_HINT}")
        return given
    if given is not None and given.content_hash != recorded["unit_tokenizer_hash"]:
        raise KoeInputError(
            f"tokenizer-mismatch: unit_tokenizer={override} has content hash {given.content_hash}, but {model_dir} "
            f"was trained on unit tokenizer {recorded['unit_tokenizer_hash']} ({model_dir / SPEECH_VOCAB_FILE}); "
            "drop unit_tokenizer= to use the model's own")
    return given if given is not None else _load(model_dir, recorded, device)


def check_unit_tokenizer(expected_hash: str | None, tok: UnitTokenizer, where: str | Path) -> None:
    """Refuse `tok` when a folder recorded another tokenizer hash (both hashes named); None = nothing recorded."""
    if expected_hash is not None and tok.content_hash != expected_hash:
        raise KoeInputError(f"tokenizer-mismatch: {where} was encoded with unit tokenizer {expected_hash}, but "
                            f"{tok.root} is {tok.content_hash}")
