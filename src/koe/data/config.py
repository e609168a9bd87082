"""Config of `koe data build` (no heavy imports here, so `koe --help` stays instant).

    koe data build units_dir=out/units manifest=out/manifest.jsonl text=[tiny/text.jsonl] \
        text_tokenizer=train:2000 mixture.text=0.3 interleave_method=coin out_dir=out/data
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from koe.config import at_least

KINDS = ("text", "interleaved", "speech", "paired")


def _h(text: str) -> dict:
    return {"help": text}


@dataclass
class MixtureConfig:
    """Token-budget weights of the document kinds (normalised; 0 leaves a kind out)."""

    text: float = field(default=0.20, metadata=_h("weight of text-only documents, by tokens (SlamKit: 0.20)"))
    interleaved: float = field(default=0.54, metadata=_h("weight of interleaved documents, by tokens (SlamKit: 0.54)"))
    speech: float = field(default=0.25, metadata=_h("weight of speech-only documents, by tokens (SlamKit: 0.25)"))
    paired: float = field(default=0.0, metadata=_h(
        "weight of paired documents: an utterance's speech, then its transcript (ASR-style; SlamKit: none)"))
    fill: Literal["downsample", "upsample"] = field(
        default="downsample",
        metadata=_h("without budget_tokens: downsample = largest budget repeating nothing; "
                    "upsample = smallest budget using every document (smaller kinds repeat)"))
    budget_tokens: int = field(default=0, metadata=_h("total train tokens (documents repeat as needed); 0 = use fill"))

    def weights(self) -> dict[str, float]:
        total = self.text + self.interleaved + self.speech + self.paired
        return {k: getattr(self, k) / total for k in KINDS if getattr(self, k) > 0}


@dataclass
class BuildConfig:
    """Build text-only, speech-only and interleaved token shards for speech-text LM training (docs/sequences.md)."""

    out_dir: str = field(default="out/data", metadata=_h("output folder: meta.json, tokenizer/, <split>/shard-*.npz"))
    units_dir: str | None = field(
        default=None, metadata=_h("unit shards from `koe units encode` (meta.json + npz); required"))
    unit_tokenizer: str | None = field(
        default=None, metadata=_h("unit tokenizer dir; default: the one units_dir/meta.json records (its content "
                                  "hash must match either way)"))
    manifest: str | None = field(default=None, metadata=_h("manifest with word times and splits (the one encoded)"))
    text: list[str] = field(
        default_factory=list,
        metadata=_h("text corpora: .txt (a line per item), .jsonl text items, a `datasets` save_to_disk folder, "
                    "or hf:<name>[:<split>]"))
    text_column: str = field(default="text", metadata=_h("column of a Hugging Face dataset holding the text"))
    text_valid_fraction: float = field(
        default=0.05, metadata=_h("fraction of train-split text items moved to valid (by a hash of the id)"))
    text_tokenizer: str = field(
        default="train:2000",
        metadata=_h("HF tokenizer (hub id or path), train:<vocab_size> to train a byte-level BPE on the text, "
                    "or units for a units-only vocabulary (speech-only models)"))
    text_span_prefix: str = field(
        default=" ", metadata=_h("put before every text segment (' ' for byte-level BPE, '' for SentencePiece)"))
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    interleave_method: Literal["poisson", "coin", "sentence"] = field(
        default="poisson", metadata=_h("how speech words are chosen: poisson spans, per-word coin, per-sentence coin"))
    speech_fraction: float = field(default=0.3, metadata=_h("target fraction of words spoken in interleaved docs"))
    poisson_lambda: float = field(default=10.0, metadata=_h("mean speech-span length in words (poisson method)"))
    num_epochs_variants: int = field(
        default=1, metadata=_h("interleavings drawn per train utterance (epoch 0..E-1 seeds), all written"))
    unaligned_units: Literal["attach", "drop"] = field(
        default="attach", metadata=_h("units outside every word: attach to the adjacent word, or drop"))
    no_alignment: Literal["speech_only", "fail"] = field(
        default="speech_only", metadata=_h("utterance without words: use it for speech-only docs only, or fail it"))
    silence_words: list[str] = field(
        default_factory=lambda: ["", "<sil>", "sil", "sp", "<s>", "</s>", "[NOISE]", "<unk>"],
        metadata=_h("word labels that are silence or noise, not words"))
    speech_utts_per_doc: int = field(default=1, metadata=_h("utterances of one speaker joined per speech-only doc"))
    max_seq_len: int = field(default=2048, metadata=_h("longer documents are split at span boundaries"))
    shard_tokens: int = field(default=1 << 22, metadata=_h("tokens per shard file"))
    seed: int = field(default=0, metadata=_h("seed of every random choice (splits, interleaving, mixture)"))
    force: bool = field(default=False, metadata=_h("rebuild even when out_dir holds a build of the same config"))

    def validate(self) -> list[str]:
        problems = []
        weights = {k: getattr(self.mixture, k) for k in KINDS}
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            problems.append(f"mixture weights must be >= 0 with a positive sum, got {weights}")
        if not self.units_dir:
            problems.append("units_dir is required (its unit tokenizer fixes the unit vocabulary, even for text-only)")
        if (weights["interleaved"] > 0 or weights["speech"] > 0 or weights["paired"] > 0) and not self.manifest:
            problems.append("manifest is required for speech-only, interleaved or paired documents")
        if weights["text"] > 0 and not self.text:
            problems.append("mixture.text > 0 needs text corpora (text=[...]); or set mixture.text=0")
        if self.text_tokenizer == "units" and (weights["text"] > 0 or weights["interleaved"] > 0
                                               or weights["paired"] > 0):
            problems.append("text_tokenizer=units has no text: set mixture.text, .interleaved and .paired to 0")
        if self.text_tokenizer.startswith("train:") and not self.text_tokenizer[6:].isdigit():
            problems.append(f"text_tokenizer={self.text_tokenizer!r}: expected train:<vocab_size>")
        if not 0 < self.speech_fraction < 1:
            problems.append(f"speech_fraction={self.speech_fraction} must be in (0, 1)")
        if not 0 <= self.text_valid_fraction < 1:
            problems.append(f"text_valid_fraction={self.text_valid_fraction} must be in [0, 1)")
        if self.poisson_lambda <= 0:
            problems.append(f"poisson_lambda={self.poisson_lambda} must be > 0")
        problems += at_least(self, ("num_epochs_variants", "speech_utts_per_doc", "shard_tokens"), 1)
        if self.max_seq_len < 8:
            problems.append(f"max_seq_len={self.max_seq_len} must be >= 8")
        if self.mixture.budget_tokens < 0:
            problems.append(f"mixture.budget_tokens={self.mixture.budget_tokens} must be >= 0")
        return problems
