"""The speech-text vocabulary: a text tokenizer extended with unit tokens and modality markers.

    tok = AutoTokenizer.from_pretrained("Qwen/Qwen2.5-0.5B")
    vocab = extend_tokenizer(tok, num_units=500)          # adds <u0>..<u499>, <speech>, <text>
    tok.save_pretrained("data/tokenizer")                  # loads later with plain AutoTokenizer, no koe needed
    vocab.unit_token_id(42) == vocab.unit_offset + 42
    SpeechVocab.from_tokenizer(AutoTokenizer.from_pretrained("data/tokenizer")) == vocab

Id layout (all contiguous, so a model can slice its embedding or output matrix by modality):

    [0, text_vocab_size)                        the text tokenizer's ids (incl. eos/pad, added if missing)
    [unit_offset, unit_offset + num_units)      <u0> .. <u{K-1}>        unit_offset == text_vocab_size
    [.., .. + num_bpe_units)                    <ub0> .. <ub{M-1}>       unit ids K..K+M-1 of a unit BPE
    speech_marker_id, text_marker_id            <speech>, <text>         right after the units

Unit u (0 <= u < num_units + num_bpe_units) is token `unit_offset + u`. Units are plain added tokens (decoding
shows `<u7>`); the markers are special tokens (dropped by `decode(..., skip_special_tokens=True)`).
`units_only_tokenizer` builds the reduced vocabulary of a speech-only model: units at ids 0..K-1, then the markers,
eos and pad. Written by `koe data build` into `<data_dir>/tokenizer`; read by `koe train`, `koe eval`, `koe generate`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tokenizers import AddedToken, Tokenizer, models
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPEECH_MARKER = "<speech>"
TEXT_MARKER = "<text>"
DEFAULT_EOS = "</s>"
DEFAULT_PAD = "<pad>"
_UNIT_RE = re.compile(r"<u(\d+)>")


def unit_token(u: int) -> str:
    return f"<u{u}>"


def bpe_unit_token(j: int) -> str:
    return f"<ub{j}>"


@dataclasses.dataclass(frozen=True)
class SpeechVocab:
    """Where units and markers sit in an extended vocabulary (see the module docstring for the layout)."""

    text_vocab_size: int
    unit_offset: int
    num_units: int
    speech_marker_id: int
    text_marker_id: int
    eos_id: int
    pad_id: int
    num_bpe_units: int = 0

    @property
    def total_units(self) -> int:
        """Unit ids a unit tokenizer can emit: k-means units plus BPE merges."""
        return self.num_units + self.num_bpe_units

    @property
    def vocab_size(self) -> int:
        """Embedding rows a model needs: every id of the tokenizer."""
        return max(self.unit_offset + self.total_units, self.speech_marker_id + 1, self.text_marker_id + 1,
                   self.eos_id + 1, self.pad_id + 1)

    def unit_token_id(self, u: int) -> int:
        if not 0 <= u < self.total_units:
            raise ValueError(f"unit {u} outside [0, {self.total_units})")
        return self.unit_offset + u

    def is_unit(self, token_id: int) -> bool:
        return self.unit_offset <= token_id < self.unit_offset + self.total_units

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechVocab:
        return cls(**d)

    @classmethod
    def from_tokenizer(cls, tok: PreTrainedTokenizerBase) -> SpeechVocab:
        """Recover the layout from a tokenizer extended by `extend_tokenizer` or built by `units_only_tokenizer`.

        Raises ValueError when the unit tokens are missing or not contiguous, so a tokenizer/shard mismatch is
        caught at load time rather than as garbage training data.
        """
        vocab = tok.get_vocab()
        if unit_token(0) not in vocab:
            raise ValueError(f"tokenizer {tok.name_or_path!r} has no {unit_token(0)}: not a koe speech vocabulary")
        offset = vocab[unit_token(0)]
        num_units = _count_contiguous(vocab, unit_token, offset)
        num_bpe = _count_contiguous(vocab, bpe_unit_token, offset + num_units)
        for marker in (SPEECH_MARKER, TEXT_MARKER):
            if marker not in vocab:
                raise ValueError(f"tokenizer {tok.name_or_path!r} has no {marker} marker")
        if tok.eos_token_id is None or tok.pad_token_id is None:
            raise ValueError(f"tokenizer {tok.name_or_path!r} lacks an eos or pad token")
        return cls(text_vocab_size=offset, unit_offset=offset, num_units=num_units,
                   speech_marker_id=vocab[SPEECH_MARKER], text_marker_id=vocab[TEXT_MARKER],
                   eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, num_bpe_units=num_bpe)


def _count_contiguous(vocab: dict[str, int], name, start: int) -> int:
    n = 0
    while vocab.get(name(n)) == start + n:
        n += 1
    if name(n) in vocab:
        raise ValueError(f"{name(n)} has id {vocab[name(n)]}, expected {start + n}: unit ids are not contiguous")
    return n


def extend_tokenizer(tokenizer: PreTrainedTokenizerBase, num_units: int, num_bpe_units: int = 0) -> SpeechVocab:
    """Add eos/pad (when missing), unit tokens and the two markers to `tokenizer` in place; return the layout.

    The model's embedding matrix must then be resized to `vocab.vocab_size` (koe.model does that). Units are added
    before the markers and checked to receive contiguous ids; a tokenizer that already holds `<u0>` is refused, since
    extending twice would silently shift every unit id.
    """
    if num_units < 1 or num_bpe_units < 0:
        raise ValueError(f"num_units={num_units} must be >= 1 and num_bpe_units={num_bpe_units} >= 0")
    if unit_token(0) in tokenizer.get_vocab():
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} already has unit tokens; load it with from_tokenizer")
    if tokenizer.eos_token is None:
        tokenizer.add_special_tokens({"eos_token": DEFAULT_EOS})
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": DEFAULT_PAD})
    offset = len(tokenizer)
    units = [unit_token(u) for u in range(num_units)] + [bpe_unit_token(j) for j in range(num_bpe_units)]
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in units])
    tokenizer.add_tokens([AddedToken(m, special=True, normalized=False) for m in (SPEECH_MARKER, TEXT_MARKER)],
                         special_tokens=True)
    vocab = SpeechVocab.from_tokenizer(tokenizer)
    if vocab.unit_offset != offset or vocab.total_units != num_units + num_bpe_units:
        raise ValueError(f"unit tokens got ids from {vocab.unit_offset}, expected a contiguous block from {offset}")
    return vocab


def units_only_tokenizer(num_units: int, num_bpe_units: int = 0) -> PreTrainedTokenizerFast:
    """A tokenizer holding only units, the two markers, eos and pad: the vocabulary of a speech-only model.

    Units take ids 0..K+M-1, so `unit_offset == text_vocab_size == 0`. There is no unk token: text given to a
    speech-only model is an error, not a silent stream of unknowns.
    """
    tokens = [unit_token(u) for u in range(num_units)] + [bpe_unit_token(j) for j in range(num_bpe_units)]
    specials = [SPEECH_MARKER, TEXT_MARKER, DEFAULT_EOS, DEFAULT_PAD]
    backend = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(tokens + specials)}))
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in tokens])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=DEFAULT_EOS, pad_token=DEFAULT_PAD)
