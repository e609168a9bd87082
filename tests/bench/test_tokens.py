"""The unit-token cache: encoded once per tokenizer content hash, completed when items are added."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from koe.bench.items import BenchInfo, BenchItem, Side, write_items
from koe.bench.tokens import cache_path, tokenize_bench
from koe.units.features import FeatureSpec
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec


def tiny_unit_tokenizer(out: Path, seed: int) -> Path:
    spec = UnitTokenizerSpec(features=FeatureSpec(backend="mel", frame_rate_hz=100.0, dim=80), num_units=8)
    centroids = np.random.default_rng(seed).normal(-5, 3, size=(8, 80)).astype(np.float32)
    return UnitTokenizer(spec, centroids).save(out)


class Counting:
    """A real unit tokenizer that counts how many WAVs it encodes."""

    def __init__(self, tok: UnitTokenizer):
        self.tok, self.calls = tok, 0
        self.content_hash = tok.content_hash

    def audio_to_ids(self, wav):
        self.calls += 1
        return self.tok.audio_to_ids(wav)


def _bench(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        sides = []
        for j in range(2):
            rel = f"audio/v/{i}-{j}.wav"
            (root / "audio" / "v").mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, rng.normal(0, 0.1, 4000).astype(np.float32), 16_000)
            sides.append(Side(f"w{i}{j}", rel))
        items.append(BenchItem(id=f"p{i}@v", group=f"p{i}", benchmark="b", task="pair", source="s", category="c",
                               voice="v", candidates=sides))
    write_items(root, items, BenchInfo("b", ["pair"], "s", ["v"], n, n))
    return root


def test_cache_hit_miss_by_tokenizer_hash(tmp_path):
    bench = _bench(tmp_path / "b", 2)
    tok_a = Counting(UnitTokenizer.load(tiny_unit_tokenizer(tmp_path / "ta", seed=0)))
    units, encoded = tokenize_bench(bench, tok_a)
    assert encoded == 4 and tok_a.calls == 4 and len(units) == 4
    assert cache_path(bench, tok_a).name == f"{tok_a.content_hash}.jsonl"
    again, encoded = tokenize_bench(bench, tok_a)  # hit: nothing decoded or encoded
    assert encoded == 0 and tok_a.calls == 4
    assert all(np.array_equal(units[k], again[k]) for k in units)
    tok_b = Counting(UnitTokenizer.load(tiny_unit_tokenizer(tmp_path / "tb", seed=1)))
    assert tok_b.content_hash != tok_a.content_hash
    _, encoded = tokenize_bench(bench, tok_b)  # another tokenizer: its own file, everything encoded
    assert encoded == 4 and len(list((bench / "tokens").glob("*.jsonl"))) == 2
    _bench(tmp_path / "b", 3)  # one more pair: only its two WAVs are encoded
    _, encoded = tokenize_bench(bench, tok_a)
    assert encoded == 2 and tok_a.calls == 6
