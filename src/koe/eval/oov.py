"""Out-of-vocabulary share of a benchmark: how many of its words the model never read in training.

    vocab = training_vocabulary("runs/tiny/interleaved/final")   # TrainingVocab(words, sources, reason)
    oov_report(items, vocab.words, warn_share=0.1)               # {"oov_type_share": 0.84, ...}

A benchmark scored on words the model never read measures something else than it claims (a BLiMP set whose word
types are 84% unseen is a test of guessing), so `koe eval` reports the share per benchmark and warns above a
threshold. The training text is found from the model directory: `koe train` saves its config.yaml beside `final/`
(and above `checkpoints/step-N/`); its `data_dir` holds the text_vocab.json of `koe data build`, and a model that
was initialised from another koe model (`model.name_or_path`) adds that model's words, recursively. A hub model
(trained outside koe) has an unknown vocabulary: the share is then null with the reason.

Words counted per item: the prompt, the right candidate and the references, i.e. what a model must know to get
the item right (the wrong side of a lexical pair is a pseudo-word by design).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import yaml

from koe.bench.items import BenchItem
from koe.data.words import read_text_vocab, words_of

MAX_DEPTH = 8  # init chains longer than this are not koe's (or loop)


@dataclasses.dataclass
class TrainingVocab:
    """The words a model read as text in training; None with a reason when that cannot be known."""

    words: set[str] | None
    sources: list[str]
    reason: str | None = None


def _train_config(model_dir: Path) -> Path | None:
    for parent in (model_dir.parent, model_dir.parent.parent):
        cfg = parent / "config.yaml"
        if cfg.is_file() and "data_dir" in (yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}):
            return cfg
    return None


def training_vocabulary(model: str | Path, override: str | Path | None = None) -> TrainingVocab:
    """Words of the model's training text (see the module docstring); `override` names a data dir or a
    text_vocab.json directly, for models whose training dirs moved."""
    if override is not None:
        words = read_text_vocab(override)
        if words is None:
            return TrainingVocab(None, [str(override)], f"{override}: no text_vocab.json")
        return TrainingVocab(set(words), [str(override)])
    words: set[str] = set()
    sources: list[str] = []
    current = Path(model)
    for _ in range(MAX_DEPTH):
        cfg_path = _train_config(current)
        if cfg_path is None:
            return TrainingVocab(None, sources, f"{current}: no koe training config beside it (trained outside "
                                 "koe?), so its training text is unknown")
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        found = read_text_vocab(cfg["data_dir"])
        if found is None:
            return TrainingVocab(None, sources, f"{cfg['data_dir']}: no text_vocab.json (built before koe recorded "
                                 "training words; rebuild it with force=true)")
        words |= set(found)
        sources.append(str(Path(cfg["data_dir"]) / "text_vocab.json"))
        init = (cfg.get("model") or {}).get("name_or_path")
        if init is None:
            return TrainingVocab(words, sources)  # trained from scratch: the chain is complete
        current = Path(init)
        if not current.is_dir():
            return TrainingVocab(None, sources, f"initialised from {init}, a model trained outside koe: its "
                                 "training text is unknown")
    return TrainingVocab(None, sources, f"{model}: more than {MAX_DEPTH} models in its init chain")


def item_words(item: BenchItem) -> list[str]:
    sides = [item.prompt, item.candidates[item.label]]
    texts = [s.text for s in sides if s is not None and s.text] + list(item.references)
    return [w for t in texts for w in words_of(t)]


def oov_report(items: list[BenchItem], vocab: TrainingVocab, warn_share: float) -> dict:
    """Word types and tokens of the benchmark's items absent from the training words, with up to 10 examples."""
    counts: Counter = Counter(w for it in items for w in item_words(it))
    if vocab.words is None:
        return {"status": "n/a", "reason": vocab.reason, "num_types": len(counts)}
    missing = Counter({w: n for w, n in counts.items() if w not in vocab.words})
    type_share = len(missing) / len(counts) if counts else 0.0
    token_share = sum(missing.values()) / sum(counts.values()) if counts else 0.0
    return {"num_types": len(counts), "num_oov_types": len(missing), "oov_type_share": round(type_share, 4),
            "oov_token_share": round(token_share, 4), "examples": [w for w, _ in missing.most_common(10)],
            "warn_share": warn_share, "warning": type_share > warn_share}
