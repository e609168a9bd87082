"""Optional BPE over de-duplicated unit sequences, with the `tokenizers` library.

    bpe = train_bpe([units_a, units_b, ...], num_units=500, vocab_size=4000)
    tokens, durations = bpe_encode(bpe, units, durations)          # durations summed over each merged piece
    units_again = bpe_decode(bpe, tokens)

Unit u is written as the single character chr(UNIT_CHAR_OFFSET + u) (CJK ideographs: one code point each, no
normaliser or pre-tokeniser touches them), so a whole utterance is one "word" to the BPE trainer. The alphabet is
seeded with all `num_units` characters, which gives BPE ids 0..num_units-1 to the units themselves (checked) and
merged pieces the ids above.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

UNIT_CHAR_OFFSET = 0x4E00  # CJK Unified Ideographs: 20,992 contiguous code points
MAX_UNITS = 20_992


def units_to_text(units: np.ndarray) -> str:
    return "".join(chr(UNIT_CHAR_OFFSET + int(u)) for u in units)


def text_to_units(text: str) -> np.ndarray:
    return np.fromiter((ord(ch) - UNIT_CHAR_OFFSET for ch in text), dtype=np.int32, count=len(text))


def train_bpe(sequences: Iterable[np.ndarray], num_units: int, vocab_size: int):
    """A `tokenizers.Tokenizer` whose first num_units ids are the units; raises ValueError on bad sizes."""
    from tokenizers import Tokenizer, models, trainers

    if num_units > MAX_UNITS:
        raise ValueError(f"BPE supports at most {MAX_UNITS} units, got {num_units}")
    if vocab_size <= num_units:
        raise ValueError(f"bpe_vocab_size={vocab_size} must exceed the number of units {num_units}")
    alphabet = [chr(UNIT_CHAR_OFFSET + u) for u in range(num_units)]
    tok = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, limit_alphabet=num_units,
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator((units_to_text(s) for s in sequences), trainer)
    vocab = tok.get_vocab()
    if any(vocab.get(ch) != u for u, ch in enumerate(alphabet)):
        raise RuntimeError("tokenizers did not give units the BPE ids 0..num_units-1; unit/BPE ids would differ")
    return tok


def bpe_encode(tok, units: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BPE ids of a dedup unit sequence, and the frames each piece spans (sum of its units' durations)."""
    enc = tok.encode(units_to_text(units))
    ids = np.asarray(enc.ids, dtype=np.int32)
    ends = np.asarray([end for _, end in enc.offsets], dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(durations, dtype=np.int64)])
    starts = np.concatenate([[0], ends[:-1]]) if len(ends) else ends
    return ids, (cum[ends] - cum[starts]).astype(np.int32)


def bpe_decode(tok, ids: np.ndarray) -> np.ndarray:
    """The dedup unit sequence that a list of BPE ids spells."""
    return text_to_units("".join(tok.id_to_token(int(i)) for i in ids))
