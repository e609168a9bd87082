"""Inputs of `koe data build` other than units: text corpora, their train/valid split, and the text tokenizer.

    items = read_text_corpus("tiny/text.jsonl")            # or .txt, a save_to_disk folder, hf:name[:split]
    split = text_split(item, valid_fraction=0.05, seed=0)  # "train" | "valid" | None (test items are not used)
    tok = load_text_tokenizer("train:2000", training_texts)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from koe.corpus.text import TextItem, read_text_items
from koe.seed import derive_seed
from koe.stage import KoeInputError


def read_text_corpus(source: str, text_column: str = "text") -> list[TextItem]:
    """Text items of one source; a Hugging Face dataset's `train`/`validation` splits keep their split.

    `tinyspeech:N[:seed]` generates N TinySpeech text items (all facts included, text-only ones too).
    """
    if source.startswith("tinyspeech:"):
        from koe.tinyspeech import generate_text_corpus

        num, _, seed = source.removeprefix("tinyspeech:").partition(":")
        return generate_text_corpus(int(num), seed=int(seed or 0))
    if source.startswith("hf:"):
        name, _, split = source[3:].partition(":")
        import datasets

        try:
            data = datasets.load_dataset(name, split=split or None)
        except Exception as e:  # a hub or file error: report it as this input's problem
            raise KoeInputError(f"text-corpus: {source}: cannot load ({type(e).__name__}: {e})") from None
        return _dataset_items(data, name.replace("/", "-"), text_column, source)
    path = Path(source)
    if path.is_dir():
        import datasets

        try:
            data = datasets.load_from_disk(str(path))
        except FileNotFoundError as e:
            raise KoeInputError(f"text-corpus: {path}: not a `datasets` save_to_disk folder ({e})") from None
        return _dataset_items(data, path.name, text_column, source)
    return read_text_items(path)


def _dataset_items(data, name: str, column: str, source: str) -> list[TextItem]:
    splits = dict(data) if hasattr(data, "keys") else {"train": data}
    items = []
    for split_name, ds in splits.items():
        if column not in ds.column_names:
            raise KoeInputError(f"text-corpus: {source}: no column {column!r} (has {ds.column_names})")
        split = {"validation": "valid", "valid": "valid", "test": "test"}.get(split_name, "train")
        items += [TextItem(id=f"{name}-{split_name}-{i:07d}", text=t, split=split)
                  for i, t in enumerate(ds[column]) if t and t.strip()]
    return items


def text_split(item: TextItem, valid_fraction: float, seed: int) -> str | None:
    """Where a text item goes: its own valid split, or a seeded hash-based share of train; test items nowhere."""
    if item.split == "test":
        return None
    if item.split == "valid":
        return "valid"
    return "valid" if derive_seed(seed, "text-valid", item.id) % 1_000_000 < valid_fraction * 1_000_000 else "train"


def load_text_tokenizer(spec: str, training_texts: Iterable[str]):
    """A HF tokenizer from a hub id or path, a freshly trained byte-level BPE (`train:<vocab_size>`), or a
    units-only vocabulary (`units`, returned as None: the caller builds it once the number of units is known)."""
    if spec == "units":
        return None
    if spec.startswith("train:"):
        from koe.data.text_tokenizer import train_text_tokenizer

        return train_text_tokenizer(training_texts, int(spec[6:]))
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(spec)
    except (OSError, ValueError) as e:
        raise KoeInputError(f"text-tokenizer: {spec}: cannot load ({e})") from None
