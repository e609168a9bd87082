"""`koe generate`: speech continuation, speech to text, text to speech, and "think in text, then speak".

    koe generate runs/tiny/interleaved/final task=text_to_speech prompts='["the red fox runs ."]' \
        vocoder=runs/tiny/vocoder out_dir=runs/tiny/generated

Each sample gets a folder with prompt.json, text.txt (generated text, if any), units.json (generated units, if any)
and audio.wav (through the vocoder, when one is given). Sequences follow docs/sequences.md: a `<speech>` or `<text>`
marker opens every span.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from koe.audio import load_audio
from koe.config import save_config
from koe.corpus.text import read_text_items
from koe.data.vocab import SpeechVocab
from koe.generate.config import GenerateConfig
from koe.generate.decoding import Sampling, generate_span, modality_mask
from koe.stage import KoeInputError, StageReport, progress


def _prompts(cfg: GenerateConfig) -> list[str]:
    if len(cfg.prompts) == 1 and cfg.prompts[0].endswith((".txt", ".jsonl")) and Path(cfg.prompts[0]).exists():
        return [item.text for item in read_text_items(cfg.prompts[0])]
    return list(cfg.prompts)


class Generator:
    """A loaded model with its vocabulary, unit tokenizer and vocoder; one method per task."""

    def __init__(self, cfg: GenerateConfig):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        self.vocab = SpeechVocab.from_tokenizer(self.tokenizer)
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model).to(device).eval()
        size = self.model.get_input_embeddings().weight.shape[0]
        self.masks = {m: modality_mask(self.vocab, m, size) for m in ("speech", "text") if
                      m == "speech" or self.vocab.text_vocab_size > 0}
        self.sampling = Sampling(cfg.temperature, cfg.top_k, cfg.top_p)
        self.max_new_tokens = cfg.max_new_tokens
        self.prompt_seconds = cfg.prompt_seconds
        self.unit_tokenizer = None
        if cfg.unit_tokenizer is not None:
            from koe.units.tokenizer import UnitTokenizer

            self.unit_tokenizer = UnitTokenizer.load(cfg.unit_tokenizer)
        self.vocoder = None
        if cfg.vocoder is not None:
            from koe.vocoder import UnitVocoder

            self.vocoder = UnitVocoder.load(cfg.vocoder)

    def text_ids(self, text: str) -> list[int]:
        if "text" not in self.masks:
            raise KoeInputError("text prompt: this model has a units-only vocabulary")
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def speech_ids(self, audio_path: str) -> list[int]:
        wav = load_audio(audio_path, duration_s=self.prompt_seconds)
        units, _ = self.unit_tokenizer.encode_audio(wav)
        return [self.vocab.unit_token_id(int(u)) for u in units]

    def span(self, prompt: list[int], modality: str) -> list[int]:
        return generate_span(self.model, prompt, self.masks[modality], self.vocab, self.sampling, self.max_new_tokens)

    def run(self, task: str, prompt: str) -> dict:
        """Returns {"text": str | None, "units": list[int] | None}."""
        v = self.vocab
        if task in ("continue", "speech_to_text"):
            context = [v.speech_marker_id, *self.speech_ids(prompt)]
        else:
            context = [v.text_marker_id, *self.text_ids(prompt)]
        text_out = units_out = None
        if task in ("speech_to_text", "text", "think_then_speak"):
            context = context + ([v.text_marker_id] if task == "speech_to_text" else [])
            new = self.span(context, "text")
            text_out = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            context = context + new
        if task in ("continue", "text_to_speech", "think_then_speak"):
            context = context + ([] if task == "continue" else [v.speech_marker_id])
            units_out = [i - v.unit_offset for i in self.span(context, "speech")]
        return {"text": text_out, "units": units_out}

    def audio(self, units: list[int]) -> np.ndarray | None:
        if self.vocoder is None or not units:
            return None
        from koe.vocoder import units_to_audio

        return units_to_audio(self.vocoder, [u for u in units if u < self.vocoder.num_units])


def run_generate(cfg: GenerateConfig) -> StageReport:
    if cfg.task == "spoken_answer":  # a `koe sft` model answers with its own strategy (koe.strategies)
        from koe.strategies.generate import run_spoken_answer

        return run_spoken_answer(cfg)
    prompts = _prompts(cfg)
    report = StageReport("generate", cfg.out_dir, items_in=len(prompts))
    save_config(cfg, cfg.out_dir)
    generator = Generator(cfg)
    for i, prompt in enumerate(progress(prompts, desc="generate")):
        torch.manual_seed(cfg.seed + i)
        sample_dir = cfg.out_dir / f"sample_{i:03d}"
        sample_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = generator.run(cfg.task, prompt)
        except KoeInputError as e:
            report.fail(f"sample_{i:03d}", str(e), prompt)
            continue
        (sample_dir / "prompt.json").write_text(json.dumps({"task": cfg.task, "prompt": prompt}, ensure_ascii=False))
        if result["text"] is not None:
            (sample_dir / "text.txt").write_text(result["text"] + "\n")
        if result["units"] is not None:
            (sample_dir / "units.json").write_text(json.dumps(result["units"]))
            audio = generator.audio(result["units"])
            if audio is not None:
                sf.write(sample_dir / "audio.wav", audio, generator.vocoder.mel.sample_rate_hz)
        report.ok()
    return report.finish()
