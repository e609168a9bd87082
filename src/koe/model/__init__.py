"""Model init for koe: any HF causal LM (or a small scratch one) with its vocabulary extended to a koe tokenizer.

    model, first_new = init_model(ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B"), tokenizer, vocab, max_seq_len=2048)
    save_model(model, tokenizer, "runs/train/final")
"""

from koe.model.init import apply_lora, embedding_weights, extend_embeddings, init_model, save_model, scratch_config

__all__ = ["apply_lora", "embedding_weights", "extend_embeddings", "init_model", "save_model", "scratch_config"]
