import json

import soundfile as sf
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from koe.config import load_config
from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import SpeechVocab, extend_tokenizer
from koe.generate.config import GenerateConfig
from koe.generate.decoding import modality_mask
from koe.generate.run import run_generate
from koe.vocoder import UnitVocoder

TEXTS = ["the red fox runs .", "a small dog sees the fox .", "what does the dog see ?"] * 20


def _tiny_model(tmp_path, num_units: int = 12):
    tok = train_text_tokenizer(TEXTS, vocab_size=300, out_dir=tmp_path / "tok")
    vocab = extend_tokenizer(tok, num_units=num_units)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
    model_dir = tmp_path / "model"
    Qwen2ForCausalLM(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    vocoder_dir = tmp_path / "vocoder"
    UnitVocoder(num_units, 100.0, hidden_size=8, num_layers=1, kernel_size=3).save(vocoder_dir)
    return model_dir, vocoder_dir, vocab


def test_modality_masks_partition_the_vocabulary(tmp_path):
    _, _, vocab = _tiny_model(tmp_path)
    speech = modality_mask(vocab, "speech", vocab.vocab_size)
    text = modality_mask(vocab, "text", vocab.vocab_size)
    assert speech[vocab.unit_offset: vocab.unit_offset + vocab.num_units].all()
    units = torch.zeros(vocab.vocab_size, dtype=torch.bool)
    units[vocab.unit_offset: vocab.unit_offset + vocab.num_units] = True
    eos = torch.zeros_like(units)
    eos[vocab.eos_id] = True
    assert torch.equal(speech, units | eos)
    assert not (text & units).any() and text[: vocab.text_vocab_size].sum() >= vocab.text_vocab_size - 2
    for marker in (vocab.speech_marker_id, vocab.text_marker_id):
        assert not speech[marker] and not text[marker]
    assert speech[vocab.eos_id] and text[vocab.eos_id]


def test_think_then_speak_writes_text_units_and_wav(tmp_path):
    model_dir, vocoder_dir, vocab = _tiny_model(tmp_path)
    cfg = load_config(GenerateConfig, None, [
        f"model={model_dir}", "task=think_then_speak", "prompts=[the red fox]", f"vocoder={vocoder_dir}",
        f"out_dir={tmp_path / 'gen'}", "max_new_tokens=12", "temperature=1.0"])
    report = run_generate(cfg)
    assert report.exit_code == 0
    sample = tmp_path / "gen" / "sample_000"
    units = json.loads((sample / "units.json").read_text())
    assert all(0 <= u < vocab.num_units for u in units)
    assert (sample / "text.txt").exists()
    if units:
        audio, sr = sf.read(sample / "audio.wav")
        assert sr == 16000 and len(audio) > 0


def test_generated_speech_never_contains_text_tokens(tmp_path):
    model_dir, _, vocab = _tiny_model(tmp_path)
    from koe.generate.run import Generator

    cfg = load_config(GenerateConfig, None, [f"model={model_dir}", "task=text_to_speech", "max_new_tokens=40",
                                             "temperature=2.0", "top_k=0", "top_p=1.0"])
    out = Generator(cfg).run("text_to_speech", "the red fox")
    assert out["text"] is None and len(out["units"]) > 0
    assert all(0 <= u < vocab.num_units for u in out["units"])
    assert SpeechVocab.from_tokenizer(AutoTokenizer.from_pretrained(model_dir)) == vocab
