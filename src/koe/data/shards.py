"""Token shards: the training documents `koe data build` writes and `koe train` reads.

    data_dir/
      meta.json                 DataMeta: vocabulary layout, token counts per split/kind/modality, seed, config
      tokenizer/                the extended HF tokenizer (AutoTokenizer.from_pretrained works without koe)
      train/shard-00000.npz     tokens uint32 [T], doc_offsets int64 [D+1], modality uint8 [T], doc_kind uint8 [D]
      valid/shard-00000.npz

    meta = load_data_meta("data")
    for doc in read_token_shards("data", "train"):   # Document(tokens, modality, kind)
        ...
    ds = TokenDataset("data", "valid"); ds[3].tokens

Document d of a shard is `tokens[doc_offsets[d]:doc_offsets[d+1]]`, always ending with the eos id. `modality` marks
each token TEXT (0), SPEECH (1) or MARKER (2: `<speech>`, `<text>`, eos), so a trainer can weight or mask losses per
modality; `doc_kind` is TEXT_ONLY (0), SPEECH_ONLY (1), INTERLEAVED (2) or PAIRED (3). See docs/sequences.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError, write_json

SCHEMA_VERSION = 1
TEXT, SPEECH, MARKER = 0, 1, 2
MODALITIES = ("text", "speech", "marker")
TEXT_ONLY, SPEECH_ONLY, INTERLEAVED, PAIRED = 0, 1, 2, 3
KINDS = ("text", "speech", "interleaved", "paired")
TOKENIZER_DIR = "tokenizer"


@dataclasses.dataclass
class Document:
    """One training document: token ids, a modality per token, and the document's kind."""

    tokens: np.ndarray  # uint32 [n]
    modality: np.ndarray  # uint8 [n]
    kind: int


@dataclasses.dataclass
class SplitStats:
    """Counts of one split; `tokens_by_kind[kind][modality]` holds every token exactly once."""

    num_documents: int = 0
    num_tokens: int = 0
    num_shards: int = 0
    documents_by_kind: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    tokens_by_kind: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=lambda: {k: dict.fromkeys(MODALITIES, 0) for k in KINDS})

    def add(self, modality: np.ndarray, kind: int) -> None:
        self.num_documents += 1
        self.num_tokens += len(modality)
        name = KINDS[kind]
        self.documents_by_kind[name] += 1
        counts = np.bincount(modality, minlength=len(MODALITIES))
        for m, n in zip(MODALITIES, counts, strict=True):
            self.tokens_by_kind[name][m] += int(n)

    @property
    def tokens_by_modality(self) -> dict[str, int]:
        return {m: sum(self.tokens_by_kind[k][m] for k in KINDS) for m in MODALITIES}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tokens_by_modality"] = self.tokens_by_modality
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitStats:
        stats = cls(**{k: v for k, v in d.items() if k != "tokens_by_modality"})
        for kind in KINDS:  # meta.json written before a kind existed has no entry for it
            stats.documents_by_kind.setdefault(kind, 0)
            stats.tokens_by_kind.setdefault(kind, dict.fromkeys(MODALITIES, 0))
        return stats


@dataclasses.dataclass
class DataMeta:
    """meta.json of a token-shard directory."""

    vocab: SpeechVocab
    splits: dict[str, SplitStats]
    seed: int
    unit_tokenizer_hash: str | None = None
    tokenizer_dir: str = TOKENIZER_DIR  # relative to the data dir
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "tokenizer_dir": self.tokenizer_dir,
                "vocab": self.vocab.to_dict(), "unit_tokenizer_hash": self.unit_tokenizer_hash, "seed": self.seed,
                "splits": {s: st.to_dict() for s, st in self.splits.items()}, "config": self.config}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "meta.json") -> DataMeta:
        if d.get("schema_version", 0) > SCHEMA_VERSION:
            raise KoeInputError(f"{where}: schema_version {d['schema_version']} is newer than {SCHEMA_VERSION}")
        try:
            return cls(vocab=SpeechVocab.from_dict(d["vocab"]),
                       splits={s: SplitStats.from_dict(v) for s, v in d["splits"].items()},
                       seed=d["seed"], unit_tokenizer_hash=d.get("unit_tokenizer_hash"),
                       tokenizer_dir=d.get("tokenizer_dir", TOKENIZER_DIR), config=d.get("config", {}),
                       schema_version=d.get("schema_version", SCHEMA_VERSION))
        except (KeyError, TypeError) as e:
            raise KoeInputError(f"{where}: malformed token-shard meta ({e})") from None


def load_data_meta(data_dir: str | Path) -> DataMeta:
    path = Path(data_dir) / "meta.json"
    if not path.exists():
        raise KoeInputError(f"{path}: token-shard meta not found (run `koe data build`)")
    return DataMeta.from_dict(json.loads(path.read_text()), str(path))


def write_data_meta(data_dir: str | Path, meta: DataMeta) -> None:
    write_json(Path(data_dir) / "meta.json", meta.to_dict())


class TokenShardWriter:
    """Append documents to `<data_dir>/<split>/shard-NNNNN.npz`, starting a new shard every `shard_tokens` tokens.

        with TokenShardWriter(data_dir, "train", eos_id=vocab.eos_id) as w:
            w.add(tokens, modality, INTERLEAVED)
        w.stats  # SplitStats

    Each shard is written atomically (temporary file, then rename) and is uncompressed, so loading is a copy.
    """

    def __init__(self, data_dir: str | Path, split: str, eos_id: int, shard_tokens: int = 1 << 22):
        self.dir = Path(data_dir) / split
        self.dir.mkdir(parents=True, exist_ok=True)
        self.eos_id = eos_id
        self.shard_tokens = shard_tokens
        self.stats = SplitStats()
        self._tokens: list[np.ndarray] = []
        self._modality: list[np.ndarray] = []
        self._kinds: list[int] = []
        self._pending = 0

    def add(self, tokens, modality, kind: int) -> None:
        """Add one document; it must end with eos and have one modality per token."""
        tokens = np.asarray(tokens, dtype=np.uint32)
        modality = np.asarray(modality, dtype=np.uint8)
        if len(tokens) == 0 or tokens[-1] != self.eos_id:
            raise ValueError(f"a document must end with eos ({self.eos_id})")
        if modality.shape != tokens.shape or modality.max() >= len(MODALITIES) or not 0 <= kind < len(KINDS):
            raise ValueError(f"modality must be one of 0/1/2 per token and kind one of 0..{len(KINDS) - 1}")
        self._tokens.append(tokens)
        self._modality.append(modality)
        self._kinds.append(kind)
        self._pending += len(tokens)
        self.stats.add(modality, kind)
        if self._pending >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self._tokens:
            return
        lengths = np.array([len(t) for t in self._tokens], dtype=np.int64)
        path = self.dir / f"shard-{self.stats.num_shards:05d}.npz"
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, tokens=np.concatenate(self._tokens), modality=np.concatenate(self._modality),
                 doc_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                 doc_kind=np.array(self._kinds, dtype=np.uint8))
        os.replace(tmp, path)
        self.stats.num_shards += 1
        self._tokens, self._modality, self._kinds, self._pending = [], [], [], 0

    def close(self) -> SplitStats:
        self.flush()
        return self.stats

    def __enter__(self) -> TokenShardWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


def shard_paths(data_dir: str | Path, split: str) -> list[Path]:
    paths = sorted((Path(data_dir) / split).glob("shard-[0-9][0-9][0-9][0-9][0-9].npz"))
    if not paths:
        raise KoeInputError(f"{Path(data_dir) / split}: no token shards for split {split!r}")
    return paths


def load_shard(path: str | Path) -> dict[str, np.ndarray]:
    """The four arrays of one shard, with their shapes checked against each other."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("tokens", "modality", "doc_offsets", "doc_kind")}
    off = arrays["doc_offsets"]
    if (len(off) != len(arrays["doc_kind"]) + 1 or off[0] != 0 or off[-1] != len(arrays["tokens"])
            or len(arrays["modality"]) != len(arrays["tokens"])):
        raise KoeInputError(f"{path}: inconsistent token shard (offsets, kinds and tokens disagree)")
    return arrays


def read_token_shards(data_dir: str | Path, split: str) -> Iterator[Document]:
    """Every document of a split in order, one shard in memory at a time."""
    for path in shard_paths(data_dir, split):
        a = load_shard(path)
        off = a["doc_offsets"]
        for d in range(len(a["doc_kind"])):
            s, e = off[d], off[d + 1]
            yield Document(a["tokens"][s:e], a["modality"][s:e], int(a["doc_kind"][d]))


class TokenDataset:
    """Random access to the documents of a split (a shard is loaded on first use and a few are kept cached)."""

    def __init__(self, data_dir: str | Path, split: str, cache_shards: int = 4):
        self.paths = shard_paths(data_dir, split)
        counts = []
        for p in self.paths:
            with np.load(p) as z:
                counts.append(len(z["doc_kind"]))
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._load = lru_cache(maxsize=cache_shards)(lambda i: load_shard(self.paths[i]))

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> Document:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        a = self._load(shard)
        d = index - int(self._starts[shard])
        s, e = a["doc_offsets"][d], a["doc_offsets"][d + 1]
        return Document(a["tokens"][s:e], a["modality"][s:e], int(a["doc_kind"][d]))
