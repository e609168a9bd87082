"""Model init: load any HF causal LM (or build a small one), extend its vocabulary to a koe tokenizer, save it plain.

    tok = AutoTokenizer.from_pretrained("runs/data/tokenizer")
    vocab = SpeechVocab.from_tokenizer(tok)
    model, first_new = init_model(ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B"), tok, vocab, max_seq_len=2048)
    save_model(model, tok, "runs/train/final")   # AutoModelForCausalLM.from_pretrained works without koe

The "TWIST" init keeps every pretrained weight and only adds rows for the unit tokens and markers. The new rows
(input embeddings and, when untied, output embeddings) start at the mean of the text rows plus a little noise, so
the first speech tokens neither dominate nor vanish in the softmax. A local path and a hub id take the same code
path (`from_pretrained`); tests pass a tiny `save_pretrained` directory.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedModel, PreTrainedTokenizerBase, Qwen2Config

from koe.data.vocab import SpeechVocab
from koe.model.config import LoraConfig, ModelConfig


def resolve_attn_implementation(name: str) -> str:
    """`auto` picks flash-attention 2 when installed, else torch's varlen flash kernels (koe.model.attention) on
    CUDA, else SDPA; all three keep packed documents apart exactly. The varlen function is registered on demand."""
    from koe.model.attention import VARLEN, register_varlen, varlen_available

    if name == VARLEN:
        return register_varlen()
    if name != "auto":
        return name
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return register_varlen() if varlen_available() else "sdpa"


def scratch_config(cfg: ModelConfig, vocab_size: int, max_seq_len: int, vocab: SpeechVocab) -> Qwen2Config:
    """A small Qwen2 or Llama config from the sizes in `cfg`; special ids follow the koe tokenizer."""
    kwargs = dict(vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                  num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
                  intermediate_size=cfg.intermediate_size, max_position_embeddings=max(max_seq_len, 128),
                  tie_word_embeddings=cfg.tie_embeddings, eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id,
                  bos_token_id=None, rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta})
    return Qwen2Config(**kwargs) if cfg.arch == "qwen2" else LlamaConfig(**kwargs)


def round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / max(multiple, 1)) * max(multiple, 1))


def init_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, vocab: SpeechVocab, max_seq_len: int,
               seed: int = 0) -> tuple[PreTrainedModel, int]:
    """Load or build the model in fp32 and size its vocabulary for `tokenizer`.

    Returns the model and `first_new`: ids >= first_new are rows this run added (all rows for a scratch model),
    which the frozen-text warm-up trains alone.
    """
    needed = max(len(tokenizer), vocab.vocab_size)
    attn = resolve_attn_implementation(cfg.attn_implementation)
    if cfg.name_or_path is None:
        torch.manual_seed(seed)
        config = scratch_config(cfg, round_up(needed, cfg.pad_vocab_multiple), max_seq_len, vocab)
        model = AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=torch.float32)
        first_new = 0
    else:
        model = AutoModelForCausalLM.from_pretrained(cfg.name_or_path, attn_implementation=attn, dtype=torch.float32)
        generator = torch.Generator().manual_seed(seed)
        first_new = extend_embeddings(model, needed, vocab.text_vocab_size, cfg.init_noise_scale,
                                      cfg.pad_vocab_multiple, generator)
    for target in (model.config, model.generation_config):
        if target is not None:
            target.eos_token_id = vocab.eos_id
            target.pad_token_id = vocab.pad_id
    return model, first_new


def extend_embeddings(model: PreTrainedModel, num_tokens: int, text_vocab_size: int, noise_scale: float,
                      pad_multiple: int, generator: torch.Generator) -> int:
    """Resize the embeddings to hold `num_tokens` ids and re-initialise every row from `first_new` on.

    `first_new = min(text_vocab_size, pretrained rows)`: the rows the text model actually trained. Rows past that
    (unit tokens, markers, and e.g. Qwen's unused padding rows that the units now occupy) get the text rows' mean
    plus `noise_scale * per-dimension std` of Gaussian noise. A matrix with no text rows (a units-only tokenizer)
    takes the statistics of all pretrained rows. Returns `first_new`.
    """
    old_rows = model.get_input_embeddings().weight.shape[0]
    first_new = min(text_vocab_size, old_rows)
    rows = round_up(num_tokens, pad_multiple)
    if first_new > 0:
        rows = max(rows, old_rows)  # never drop pretrained rows that text ids may still use
    weights = embedding_weights(model)
    stats = [_row_stats(w[: first_new or old_rows]) for w in weights]
    if rows != old_rows:
        model.resize_token_embeddings(rows, mean_resizing=False)
    with torch.no_grad():
        for w, (mean, std) in zip(embedding_weights(model), stats, strict=True):
            n = w.shape[0] - first_new
            noise = torch.randn(n, w.shape[1], generator=generator, dtype=torch.float32) * (noise_scale * std)
            w[first_new:] = (mean + noise).to(w.dtype)
    return first_new


def _row_stats(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = w.detach().float()
    return w.mean(0), w.std(0) if w.shape[0] > 1 else torch.zeros_like(w[0])


def embedding_weights(model: PreTrainedModel) -> list[torch.Tensor]:
    """The matrices whose rows are indexed by token id: input embeddings, and output embeddings when untied."""
    weights = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != weights[0].data_ptr():
        weights.append(out.weight)
    return weights


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path,
               state_dict: dict | None = None) -> Path:
    """Write a plain HF directory (config, safetensors, tokenizer with the unit tokens); LoRA is merged first.

    `state_dict` (gathered by accelerate under FSDP/ZeRO-3) replaces the model's own tensors when given.
    """
    out = Path(out_dir)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(out, state_dict=state_dict)
    tokenizer.save_pretrained(out)
    check_tokenizer_round_trip(tokenizer, out)
    return out


PROBE = "Hello world, 12345 and 6789  two  spaces; it's fine! <u0><u1> <u2> <speech> x <text> y"


def check_tokenizer_round_trip(tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> bool:
    """Warn when `AutoTokenizer` on the saved directory encodes differently from the tokenizer that was saved.

    transformers 5 picks the tokenizer class from the model type for some models: a `qwen2` directory always loads
    as `Qwen2Tokenizer`, which re-splits digits, so a custom (non-Qwen) tokenizer beside a Qwen2 model would
    silently tokenize differently at eval time. Scratch models therefore default to the Llama architecture, whose
    directories load the saved tokenizer as it is. Returns True when the encodings agree.
    """
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(str(out_dir))
    probe = PROBE + " " + tokenizer.decode(list(range(min(len(tokenizer), 200))))
    same = len(reloaded) == len(tokenizer) and reloaded(probe).input_ids == tokenizer(probe).input_ids
    if not same:
        warnings.warn(f"{out_dir}: AutoTokenizer loads the saved tokenizer as {type(reloaded).__name__}, which "
                      f"encodes differently from the trained {type(tokenizer).__name__}; load it with "
                      f"transformers.TokenizersBackend.from_pretrained, or use a Llama-type model (see "
                      f"docs/training.md)", stacklevel=2)
    return same


def apply_lora(model: PreTrainedModel, cfg: LoraConfig, first_new: int) -> PreTrainedModel:
    """Wrap `model` with peft LoRA adapters; the new token rows stay trainable through `trainable_token_indices`.

    Only the rows from `first_new` on are trained in full (input embeddings, and output embeddings when untied),
    so the adapter checkpoint stays small and the text rows are untouched.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    rows = model.get_input_embeddings().weight.shape[0]
    new_ids = list(range(first_new, rows))
    names = {id(m): n.rsplit(".", 1)[-1] for n, m in model.named_modules()}
    targets = {names[id(model.get_input_embeddings())]: new_ids}
    if len(embedding_weights(model)) > 1:
        targets[names[id(model.get_output_embeddings())]] = new_ids
    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                              target_modules=list(cfg.target_modules), trainable_token_indices=targets,
                              task_type="CAUSAL_LM")
    return get_peft_model(model, peft_cfg)
