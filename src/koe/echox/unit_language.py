"""The unit language: BPE merges over dedup units, the T2C's target vocabulary (FIELD.md "EchoX" stage II).

    ul = UnitLanguage.fit(unit_sequences, num_units=40, vocab_size=400)
    ids = ul.encode(units);  units_again = ul.undo(ids)            # undo runs before the vocoder
    ul.length_stats(unit_sequences)                                 # {"units_per_item": .., "tokens_per_item": ..}

Built on koe.units.bpe (the `tokenizers` BPE that `koe units fit bpe_vocab_size=` also uses), so a unit language is
the same object whichever stage made it. vocab_size = num_units is the identity: no merges ("w/o unit language").
Saved as unit_language.json (+ bpe.json) in the T2C directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from koe.units.bpe import bpe_decode, bpe_encode, train_bpe


class UnitLanguage:
    def __init__(self, num_units: int, bpe=None):
        self.num_units, self.bpe = num_units, bpe

    @classmethod
    def fit(cls, sequences: list[list[int]], num_units: int, vocab_size: int) -> UnitLanguage:
        if vocab_size <= num_units:
            return cls(num_units)
        return cls(num_units, train_bpe([np.asarray(s, np.int32) for s in sequences], num_units, vocab_size))

    @property
    def vocab_size(self) -> int:
        return self.bpe.get_vocab_size() if self.bpe is not None else self.num_units

    def encode(self, units: list[int]) -> list[int]:
        if self.bpe is None:
            return list(units)
        u = np.asarray(units, np.int32)
        return bpe_encode(self.bpe, u, np.ones_like(u))[0].tolist()

    def undo(self, ids: list[int]) -> list[int]:
        """Unit-language ids back to dedup units (what the vocoder reads); ids outside the vocabulary are dropped."""
        ids = [i for i in ids if 0 <= i < self.vocab_size]
        return list(ids) if self.bpe is None else bpe_decode(self.bpe, np.asarray(ids)).tolist()

    def length_stats(self, sequences: list[list[int]]) -> dict[str, float]:
        units = float(np.mean([len(s) for s in sequences]))
        tokens = float(np.mean([len(self.encode(s)) for s in sequences]))
        return {"units_per_item": round(units, 2), "tokens_per_item": round(tokens, 2),
                "length_reduction": round(units / max(tokens, 1e-9), 3), "vocab_size": self.vocab_size}

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        spec = {"num_units": self.num_units, "bpe": "bpe.json" if self.bpe is not None else None}
        if self.bpe is not None:
            (d / "bpe.json").write_text(self.bpe.to_str())
        (d / "unit_language.json").write_text(json.dumps(spec, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> UnitLanguage:
        from tokenizers import Tokenizer

        d = Path(directory)
        spec = json.loads((d / "unit_language.json").read_text())
        bpe = Tokenizer.from_str((d / spec["bpe"]).read_text()) if spec["bpe"] else None
        return cls(spec["num_units"], bpe)
