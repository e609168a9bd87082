"""The words a model read as text in training: counted by `koe data build`, read by `koe eval` for OOV shares.

    counts = training_text_words(weights, texts["train"], transcripts)   # Counter of lower-cased words
    write_text_vocab("runs/data", counts)                                # runs/data/text_vocab.json
    read_text_vocab("runs/data")                                         # the Counter again, or None

text_vocab.json: `{"schema_version": 1, "num_types": N, "num_tokens": T, "words": {"the": 5321, ...}}`, words
sorted by count. Why a word list and not the tokenizer: a BPE tokenizer spells every word, so it cannot say which
words the model has seen; a benchmark whose words are mostly unseen tests something else than it claims.
Words are `words_of(text)`: lower-cased runs of letters and digits, inner apostrophes kept ("don't").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from koe.stage import write_json

TEXT_VOCAB_FILE = "text_vocab.json"
SCHEMA_VERSION = 1
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def words_of(text: str) -> list[str]:
    """Lower-cased words of a text; punctuation and markers like `<u12>` do not count."""
    return [w.replace("\u2019", "'") for w in _WORD.findall(text.lower())]


def training_text_words(weights: dict[str, float], texts: Iterable[str], transcripts: Iterable[str]) -> Counter:
    """Words of the text a build's train documents can hold: the text corpora when text-only documents are mixed
    in, the transcripts when interleaved or paired documents are (their text spans come from the transcripts)."""
    counts: Counter = Counter()
    if "text" in weights:
        for t in texts:
            counts.update(words_of(t))
    if "interleaved" in weights or "paired" in weights:
        for t in transcripts:
            counts.update(words_of(t))
    return counts


def write_text_vocab(data_dir: str | Path, counts: Counter) -> Path:
    path = Path(data_dir) / TEXT_VOCAB_FILE
    write_json(path, {"schema_version": SCHEMA_VERSION, "num_types": len(counts), "num_tokens": sum(counts.values()),
                      "words": dict(counts.most_common())})
    return path


def read_text_vocab(data_dir: str | Path) -> Counter | None:
    """The word counts of a data dir (or a text_vocab.json path); None when the build predates them."""
    path = Path(data_dir)
    path = path if path.suffix == ".json" else path / TEXT_VOCAB_FILE
    if not path.is_file():
        return None
    return Counter(json.loads(path.read_text(encoding="utf-8"))["words"])
