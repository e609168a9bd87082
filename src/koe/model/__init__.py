"""koe.model: the model side every stage shares, below all stage packages (docs/architecture.md#layering).

    from koe.model.config import ModelConfig, LoraConfig     # light: no torch, so `koe train --help` stays instant
    from koe.model.init import init_model, save_model
    model, first_new = init_model(ModelConfig(name_or_path="Qwen/Qwen2.5-0.5B"), tokenizer, vocab, max_seq_len=2048)
    save_model(model, tokenizer, "runs/train/final")

`config` (model and LoRA options), `init` (TWIST init, vocabulary extension, LoRA, plain HF save) and `attention`
(document-masked varlen attention for packed rows). This `__init__` imports nothing, so importing a config does
not pull in torch and transformers.
"""
