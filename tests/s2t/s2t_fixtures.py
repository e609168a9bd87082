"""Tiny randomly initialised encoders and a 2-layer Llama saved to disk, so tests use the real from_pretrained path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = ["what", "is", "the", "capital", "river", "king", "of", "randira", "felane", "moro", "tasi", "?", ".",
         "answer", ":", "repeat", "who"]


def save_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["</s>", "<pad>", "<unk>", *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
                            ).save_pretrained(path)


def save_llm(path: Path, hidden: int = 32) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    save_tokenizer(path)
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def save_whisper(path: Path) -> Path:
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=64, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                        max_source_positions=200, max_target_positions=32, pad_token_id=0,
                        bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    WhisperModel(cfg).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80, chunk_length=4).save_pretrained(path)
    return path


def save_hubert(path: Path) -> Path:
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    HubertModel(cfg).save_pretrained(path)
    return path


def tone(seconds: float, freq: float = 220.0, sr: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
