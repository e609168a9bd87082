"""Saving and loading a strategy-tuned model: a plain HF dir plus the strategy's options and extra modules.

    save_bundle(lm, tokenizer, extras, options, "runs/dialogue/sft/parallel/final")
    bundle, strategy = load_bundle("runs/dialogue/sft/parallel/final")

The HF part (config, safetensors, tokenizer) loads with AutoModelForCausalLM alone; `koe_strategy.json` names the
strategy and its options, `strategy_modules.safetensors` holds the extra heads (parallel's speech head, text_units'
unit decoder). This is the one place that imports the loaded-model class SpeechTextLM.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from koe.stage import KoeInputError, write_json
from koe.strategies import get_strategy
from koe.strategies.base import Bundle
from koe.strategies.options import StrategyOptions

STRATEGY_FILE = "koe_strategy.json"
MODULES_FILE = "strategy_modules.safetensors"


def save_bundle(lm: torch.nn.Module, tokenizer, extras: torch.nn.ModuleDict, options: StrategyOptions,
                out_dir: str | Path) -> Path:
    from safetensors.torch import save_file

    from koe.model.init import save_model

    out = save_model(lm, tokenizer, out_dir)
    write_json(out / STRATEGY_FILE, dataclasses.asdict(options))
    state = {k: v.detach().cpu().contiguous() for k, v in extras.state_dict().items()}
    if state:
        save_file(state, str(out / MODULES_FILE))
    return out


def read_options(path: str | Path, override: StrategyOptions | None = None) -> StrategyOptions:
    """The strategy a model dir was tuned for; `override` for a plain model (no koe_strategy.json)."""
    file = Path(path) / STRATEGY_FILE
    if not file.exists():
        if override is None:
            raise KoeInputError(f"no-strategy: {path}: no {STRATEGY_FILE} (not tuned by koe sft); give strategy=")
        return override
    saved = StrategyOptions(**json.loads(file.read_text()))
    if override is not None and override.name != saved.name:
        raise KoeInputError(f"strategy-mismatch: {path} was tuned for {saved.name}, not {override.name}")
    return saved


def load_bundle(path: str | Path, device: str = "auto", override: StrategyOptions | None = None,
                unit_tokenizer: str | Path | None = None):
    """(Bundle, strategy) of a model dir, in eval mode, float32, with the unit tokenizer the dir carries (or
    `unit_tokenizer`, which must have the same hash)."""
    from safetensors.torch import load_file

    from koe.model.speech_text_lm import SpeechTextLM

    options = read_options(path, override)
    strategy = get_strategy(options)
    lm = SpeechTextLM.load(str(path), device=device, dtype="float32", unit_tokenizer=unit_tokenizer)
    if lm.vocab.num_bpe_units:
        raise KoeInputError(f"bpe-units: {path}: the answer strategies read and write plain units; this model's "
                            "vocabulary has BPE unit ids (train it with bpe_vocab_size=0)")
    extras = strategy.extra_modules(lm.model, lm.vocab)
    modules = Path(path) / MODULES_FILE
    if len(extras):
        if not modules.exists():
            raise KoeInputError(f"bad-model: {path}: strategy {options.name} needs {MODULES_FILE}")
        extras.load_state_dict(load_file(str(modules)))
    extras = extras.to(lm.device).eval()
    return Bundle(lm.model, lm.tok, lm.vocab, extras, lm.device, lm.unit_tokenizer), strategy
