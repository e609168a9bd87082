"""Model and LoRA configs: what `koe.model.init` builds and wraps. Owned by koe.model so that koe.model imports
nothing from a stage package (`koe train` embeds them as `model.*` and `lora.*`).

    ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B")          # TWIST init of a pretrained causal LM
    ModelConfig(hidden_size=128, num_layers=2)              # a small scratch model
    LoraConfig(enabled=True, r=16)

No heavy imports here, so `koe train --help` is instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    """Where the model comes from: a pretrained causal LM (TWIST init) or a small config trained from scratch."""

    name_or_path: str | None = field(default=None, metadata={
        "help": "hub id or local dir of any HF causal LM (Qwen, Llama, SmolLM, Pythia...); null = scratch model"})
    arch: Literal["llama", "qwen2"] = field(default="llama", metadata={
        "help": "scratch model architecture (a qwen2 directory always reloads with Qwen2Tokenizer: keep llama for "
                "custom tokenizers)"})
    hidden_size: int = field(default=128, metadata={"help": "scratch: hidden size"})
    num_layers: int = field(default=4, metadata={"help": "scratch: transformer layers"})
    num_heads: int = field(default=4, metadata={"help": "scratch: attention heads"})
    num_kv_heads: int = field(default=2, metadata={"help": "scratch: key/value heads (grouped-query attention)"})
    intermediate_size: int = field(default=384, metadata={"help": "scratch: MLP width"})
    rope_theta: float = field(default=10000.0, metadata={"help": "scratch: RoPE base"})
    tie_embeddings: bool = field(default=True, metadata={"help": "scratch: share input and output embeddings"})
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flex_attention", "koe_varlen"] = field(
        default="auto", metadata={"help": "auto = flash_attention_2 when installed on CUDA, else koe_varlen (torch's "
                                          "varlen flash kernels) on CUDA, else sdpa; packing is exact with all of "
                                          "them (docs/performance.md compares their speed)"})
    init_noise_scale: float = field(default=0.1, metadata={
        "help": "new token rows = mean of the text rows + N(0, (scale * std of the text rows)^2)"})
    pad_vocab_multiple: int = field(default=64, metadata={"help": "round the embedding rows up to a multiple"})


@dataclass
class LoraConfig:
    """LoRA through peft; the new token rows stay fully trainable (peft trainable_token_indices)."""

    enabled: bool = field(default=False, metadata={"help": "train LoRA adapters instead of all weights"})
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"],
                                      metadata={"help": "module names that get adapters"})
