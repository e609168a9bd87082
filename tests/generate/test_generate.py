"""`koe generate` on a tiny random model: modality masks, files per sample, empty outputs and bad prompts fail."""

import json

import numpy as np
import soundfile as sf
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from unit_tokenizers import make_unit_tokenizer

from koe.config import load_config
from koe.data.speech_tokens import write_speech_vocab
from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import SpeechVocab, extend_tokenizer
from koe.generate.config import GenerateConfig
from koe.generate.run import generate_one, run_generate
from koe.model.speech_text_lm import Sampling, SpeechTextLM
from koe.vocoder import UnitVocoder

TEXTS = ["the red fox runs .", "a small dog sees the fox .", "what does the dog see ?"] * 20


def _tiny_model(tmp_path, num_units: int = 12, eos_bias: float = 0.0, with_tokenizer: bool = True):
    tok = train_text_tokenizer(TEXTS, vocab_size=300, out_dir=tmp_path / "tok")
    vocab = extend_tokenizer(tok, num_units=num_units)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config)
    if eos_bias:  # eos dominates every step: the model stops at once
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.weight[vocab.eos_id] = eos_bias
            model.model.norm.weight.fill_(1.0)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    if with_tokenizer:
        write_speech_vocab(make_unit_tokenizer(tmp_path / "units", num_units=num_units), model_dir)
    vocoder_dir = tmp_path / "vocoder"
    UnitVocoder(num_units, 100.0, hidden_size=8, num_layers=1, kernel_size=3).save(vocoder_dir)
    return model_dir, vocoder_dir, vocab


def _wav(path, seconds: float = 0.5):
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.4 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32),
             16000)
    return path


def test_span_masks_partition_the_vocabulary(tmp_path):
    model_dir, _, vocab = _tiny_model(tmp_path)
    lm = SpeechTextLM.load(model_dir, device="cpu")
    speech, text = lm.span_mask("speech"), lm.span_mask("text")
    units = torch.zeros(lm.num_logits, dtype=torch.bool)
    units[vocab.unit_offset: vocab.unit_offset + vocab.num_units] = True
    assert torch.equal(speech, units)
    assert not (text & units).any() and text[: vocab.text_vocab_size].sum() == vocab.text_vocab_size - 2
    for special in (vocab.speech_marker_id, vocab.text_marker_id, vocab.eos_id, vocab.pad_id):
        assert not speech[special] and not text[special]
    # eos comes in as the default stop id: a span may end, and the stop id is not returned
    out = lm.generate([vocab.speech_marker_id], "speech", 30, Sampling(temperature=3.0),
                      generator=torch.Generator().manual_seed(1))
    assert all(vocab.is_unit(i) for i in out.ids) and out.stop_id in (None, vocab.eos_id)


def test_think_then_speak_writes_text_units_and_wav(tmp_path):
    model_dir, vocoder_dir, vocab = _tiny_model(tmp_path)
    cfg = load_config(GenerateConfig, None, [
        f"model={model_dir}", "task=think_then_speak", "prompts=[the red fox]", f"vocoder={vocoder_dir}",
        f"out_dir={tmp_path / 'gen'}", "max_new_tokens=12", "temperature=1.0"])
    report = run_generate(cfg)
    assert report.exit_code == 0, report.failures
    sample = tmp_path / "gen" / "sample_000"
    units = json.loads((sample / "units.json").read_text())
    assert units and all(0 <= u < vocab.num_units for u in units)
    assert (sample / "text.txt").read_text().strip()
    audio, sr = sf.read(sample / "audio.wav")
    assert sr == 16000 and len(audio) > 0


def test_generation_api_per_step_mask_stop_ids_and_split(tmp_path):
    model_dir, _, vocab = _tiny_model(tmp_path)
    lm = SpeechTextLM.load(model_dir, device="cpu")
    prompt = [vocab.text_marker_id, *lm.text_ids("the red fox")]
    switch = 5  # five text tokens, then speech: a per-step modality mask
    out = lm.generate(prompt, lambda new: "text" if len(new) < switch else "speech", 12,
                      Sampling(temperature=1.5), stop_ids=set(), generator=torch.Generator().manual_seed(0))
    assert len(out.ids) == 12 and out.stop_id is None
    assert out.modalities == ["text"] * switch + ["speech"] * 7
    assert [m for m, _ in out.split()] == ["text", "speech"] and out.of("speech") == out.ids[switch:]
    again = lm.generate(prompt, lambda new: "text" if len(new) < switch else "speech", 12,
                        Sampling(temperature=1.5), stop_ids=set(), generator=torch.Generator().manual_seed(0))
    assert again.ids == out.ids  # seeded
    greedy = lm.generate(prompt, "speech", 6, stop_ids={out.ids[switch]})
    assert greedy.stop_id in (None, out.ids[switch]) and out.ids[switch] not in greedy.ids


def test_generated_speech_never_contains_text_tokens(tmp_path):
    model_dir, _, vocab = _tiny_model(tmp_path)
    cfg = load_config(GenerateConfig, None, [f"model={model_dir}", "task=text_to_speech", "max_new_tokens=40",
                                             "temperature=2.0", "top_k=0", "top_p=1.0"])
    lm = SpeechTextLM.load(model_dir, device="cpu")
    out = generate_one(lm, cfg, "the red fox", torch.Generator().manual_seed(0))
    assert out["text"] is None and len(out["units"]) > 0
    assert all(0 <= u < vocab.num_units for u in out["units"])
    assert SpeechVocab.from_tokenizer(AutoTokenizer.from_pretrained(model_dir)) == vocab


def test_continue_with_zero_units_is_a_listed_failure(tmp_path):
    """issue 12: `task=continue` that produced 0 units used to report "1 out, 0 failed"."""
    model_dir, _, _ = _tiny_model(tmp_path, eos_bias=50.0)
    wav = _wav(tmp_path / "prompt.wav")
    cfg = load_config(GenerateConfig, None, [f"model={model_dir}", "task=continue", f"prompts=[{wav}]",
                                             f"out_dir={tmp_path / 'gen'}", "max_new_tokens=10", "device=cpu"])
    report = run_generate(cfg)
    assert report.exit_code == 1 and report.items_out == 0
    assert len(report.failures) == 1 and "empty-output" in report.failures[0].reason
    assert "0 units" in report.failures[0].reason


def test_bad_prompts_fail_alone(tmp_path):
    """A vocabulary problem (text for a units-only span) or an unreadable prompt fails its item; the rest runs."""
    model_dir, _, _ = _tiny_model(tmp_path)
    wav = _wav(tmp_path / "prompt.wav")
    cfg = load_config(GenerateConfig, None, [f"model={model_dir}", "task=continue",
                                             f"prompts=[{tmp_path / 'missing.wav'},{wav}]", "temperature=1.0",
                                             f"out_dir={tmp_path / 'gen'}", "max_new_tokens=10", "device=cpu"])
    report = run_generate(cfg)
    assert report.exit_code == 1 and report.items_out == 1
    assert [f.item for f in report.failures] == ["sample_000"] and "missing.wav" in report.failures[0].reason
    assert json.loads((tmp_path / "gen" / "sample_001" / "units.json").read_text())


def test_audio_prompt_needs_a_unit_tokenizer_and_says_how(tmp_path):
    import pytest

    from koe.stage import KoeInputError

    model_dir, _, _ = _tiny_model(tmp_path, with_tokenizer=False)
    wav = _wav(tmp_path / "prompt.wav")
    args = [f"model={model_dir}", "task=continue", f"prompts=[{wav}]", f"out_dir={tmp_path / 'gen'}",
            "max_new_tokens=4", "device=cpu", "temperature=1.0"]
    with pytest.raises(KoeInputError, match="unit_tokenizer=DIR"):
        run_generate(load_config(GenerateConfig, None, args))
    make_unit_tokenizer(tmp_path / "explicit", num_units=12)
    report = run_generate(load_config(GenerateConfig, None, [*args, f"unit_tokenizer={tmp_path / 'explicit'}"]))
    assert report.exit_code == 0, report.failures
