"""Sequence packing: koe token shards -> rows of `max_seq_len` tokens with per-document positions and labels.

    rows = PackedRows("runs/data", "train", max_seq_len=256, seed=0, pad_id=vocab.pad_id)
    batch = rows.batch(range(8))   # input_ids, position_ids, labels, modality: LongTensor [8, 256]

Each shard's documents are concatenated in a seeded order and cut into rows; a document that does not fit goes on
in the next row. `position_ids` restart at 0 at every document start and at every row start, and that is all the
model needs to keep documents apart: flash-attention 2 turns position resets into varlen boundaries, and
transformers' SDPA/eager masks detect them and build a block-causal mask when no attention_mask is passed
(tests/train/test_packing.py checks that a packed document's logits equal the document's logits alone).
`labels` follow the HF convention (position t is predicted from t-1): -100 at the first token of a document (never
predicted across a boundary) and on padding (only the last row of a shard is padded).

Rows are addressed by a global index that runs on across epochs: epoch e visits the shards in a seeded order, and
the rows of a shard in a seeded order, so any index -> row is a pure function of (seed, index). That makes the
data-loader position of a checkpoint just the step number, and lets each process build only its own rows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from koe.data.shards import MARKER, load_shard, shard_paths
from koe.seed import rng_for

IGNORE = -100


class PackedRows:
    """Random access to packed rows of one split; a couple of packed shards stay cached."""

    def __init__(self, data_dir: str | Path, split: str, max_seq_len: int, seed: int, pad_id: int,
                 cache_shards: int = 2):
        self.paths = shard_paths(data_dir, split)
        self.max_seq_len = max_seq_len
        self.seed = seed
        self.pad_id = pad_id
        tokens = []
        for p in self.paths:
            with np.load(p) as z:
                tokens.append(int(z["doc_offsets"][-1]))
        self.shard_tokens = np.array(tokens, dtype=np.int64)
        self.shard_rows = -(-self.shard_tokens // max_seq_len)
        self.rows_per_epoch = int(self.shard_rows.sum())
        self.tokens_per_epoch = int(self.shard_tokens.sum())
        self._cache: OrderedDict[tuple[int, int], dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = cache_shards

    def locate(self, index: int) -> tuple[int, int, int]:
        """Global row index -> (epoch, shard, row within the packed shard)."""
        epoch, i = divmod(int(index), self.rows_per_epoch)
        order = rng_for(self.seed, "shards", epoch).permutation(len(self.paths))
        ends = np.cumsum(self.shard_rows[order])
        k = int(np.searchsorted(ends, i, side="right"))
        start = int(ends[k - 1]) if k else 0
        return epoch, int(order[k]), i - start

    def row(self, index: int) -> dict[str, np.ndarray]:
        epoch, shard, r = self.locate(index)
        packed = self._packed(epoch, shard)
        return {k: v[r] for k, v in packed.items()}

    def batch(self, indices: Iterable[int]) -> dict[str, torch.Tensor]:
        """Stack rows into LongTensors: input_ids, position_ids, labels, modality ([B, max_seq_len] each)."""
        rows = [self.row(i) for i in indices]
        return {k: torch.from_numpy(np.stack([r[k] for r in rows]).astype(np.int64)) for k in rows[0]}

    def _packed(self, epoch: int, shard: int) -> dict[str, np.ndarray]:
        key = (epoch, shard)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        a = load_shard(self.paths[shard])
        packed = pack_documents(a["tokens"], a["modality"], a["doc_offsets"], self.max_seq_len, self.pad_id,
                                doc_order=rng_for(self.seed, "docs", epoch, shard).permutation(len(a["doc_kind"])))
        perm = rng_for(self.seed, "rows", epoch, shard).permutation(len(packed["input_ids"]))
        packed = {k: v[perm] for k, v in packed.items()}
        self._cache[key] = packed
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return packed


def pack_documents(tokens: np.ndarray, modality: np.ndarray, doc_offsets: np.ndarray, max_seq_len: int,
                   pad_id: int, doc_order: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Concatenate documents (in `doc_order`) and cut them into rows; see the module docstring for the fields."""
    starts, ends = doc_offsets[:-1], doc_offsets[1:]
    if doc_order is not None:
        starts, ends = starts[doc_order], ends[doc_order]
    lengths = ends - starts
    index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)]) if len(starts) else \
        np.zeros(0, np.int64)
    ids = tokens[index].astype(np.int32)
    mod = modality[index].astype(np.int8)
    doc_start = np.zeros(len(ids), dtype=bool)
    doc_start[np.cumsum(lengths)[:-1]] = True
    if len(ids):
        doc_start[0] = True
    n_rows = max(1, -(-len(ids) // max_seq_len))
    pad = n_rows * max_seq_len - len(ids)
    if pad:
        ids = np.concatenate([ids, np.full(pad, pad_id, np.int32)])
        mod = np.concatenate([mod, np.full(pad, MARKER, np.int8)])
        doc_start = np.concatenate([doc_start, np.zeros(pad, bool)])
        doc_start[len(index)] = True  # padding is a segment of its own, so real tokens never attend to it
    labels = np.where(doc_start, IGNORE, ids).astype(np.int32)
    labels[len(index):] = IGNORE
    shape = (n_rows, max_seq_len)
    seg_start = doc_start.reshape(shape).copy()
    seg_start[:, 0] = True
    cols = np.broadcast_to(np.arange(max_seq_len), shape)
    positions = cols - np.maximum.accumulate(np.where(seg_start, cols, 0), axis=1)
    return {"input_ids": ids.reshape(shape), "position_ids": positions.astype(np.int32),
            "labels": labels.reshape(shape), "modality": mod.reshape(shape)}


def micro_batch_indices(step: int, micro: int, rank: int, world: int, micro_batch_size: int,
                        grad_accum_steps: int) -> range:
    """Global row indices of one process's micro-batch.

    Step s owns rows [s*G, (s+1)*G) with G = micro_batch_size * grad_accum_steps * world; micro-batch k of every
    process comes before micro-batch k+1, so 2 processes x 4 rows read exactly the rows 1 process x 8 rows reads.
    """
    global_rows = micro_batch_size * grad_accum_steps * world
    start = step * global_rows + (micro * world + rank) * micro_batch_size
    return range(start, start + micro_batch_size)
