"""`koe generate`: speech continuation, speech to text, text to speech, and "think in text, then speak".

    koe generate runs/tiny/interleaved/final task=text_to_speech prompts='["the red fox runs ."]' \
        vocoder=runs/tiny/vocoder out_dir=runs/tiny/generated
    koe generate runs/tiny/interleaved/final task=continue prompts='[prompt.wav]' prompt_seconds=2

Each sample gets a folder with prompt.json, text.txt (generated text, if any), units.json (generated dedup units, if
any: unit BPE undone, so a vocoder reads them) and audio.wav (through the vocoder, when one is given). Audio prompts
are encoded by the model's own unit tokenizer (koe.model.speech_text_lm). Sequences follow docs/sequences.md: a
`<speech>` or `<text>` marker opens every span. A prompt that cannot be read or encoded, or whose generation is empty,
is a listed failure (exit 1); the other prompts still run.
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
from koe.generate.config import GenerateConfig
from koe.model.speech_text_lm import Sampling, SpeechTextLM
from koe.stage import KoeInputError, StageReport, progress

AUDIO_TASKS = ("continue", "speech_to_text")
SPEECH_OUT = ("continue", "text_to_speech", "think_then_speak")
TEXT_OUT = ("speech_to_text", "text", "think_then_speak")


def _prompts(cfg: GenerateConfig) -> list[str]:
    if len(cfg.prompts) == 1 and cfg.prompts[0].endswith((".txt", ".jsonl")) and Path(cfg.prompts[0]).exists():
        return [item.text for item in read_text_items(cfg.prompts[0])]
    return list(cfg.prompts)


def generate_one(lm: SpeechTextLM, cfg: GenerateConfig, prompt: str, generator: torch.Generator) -> dict:
    """{"text": str | None, "units": list[int] | None} for one prompt; KoeInputError when a span comes out empty."""
    v = lm.vocab
    sampling = Sampling(cfg.temperature, cfg.top_k, cfg.top_p)
    if cfg.task in AUDIO_TASKS:
        context = [v.speech_marker_id, *lm.audio_ids(load_audio(prompt, duration_s=cfg.prompt_seconds))]
    else:
        context = [v.text_marker_id, *lm.text_ids(prompt)]
    text = units = None
    if cfg.task in TEXT_OUT:
        context += [v.text_marker_id] if cfg.task == "speech_to_text" else []
        new = lm.generate(context, "text", cfg.max_new_tokens, sampling, generator=generator).ids
        text = lm.decode_text(new).strip()
        if not text:
            raise KoeInputError(f"empty-output: task={cfg.task} produced no text")
        context += new
    if cfg.task in SPEECH_OUT:
        context += [] if cfg.task == "continue" else [v.speech_marker_id]
        new = lm.generate(context, "speech", cfg.max_new_tokens, sampling, generator=generator).ids
        units = lm.units(new).tolist()
        if not units:
            raise KoeInputError(f"empty-output: task={cfg.task} produced 0 units (the model stopped at once)")
    return {"text": text, "units": units}


def load_vocoder(cfg: GenerateConfig, lm: SpeechTextLM):
    """The vocoder of cfg.vocoder (None when not given); refused when it reads another unit count than the model."""
    if cfg.vocoder is None:
        return None
    from koe.vocoder import UnitVocoder

    vocoder = UnitVocoder.load(cfg.vocoder)
    if vocoder.num_units != lm.vocab.num_units:
        raise KoeInputError(f"vocoder-mismatch: {cfg.vocoder} reads {vocoder.num_units} units, the model's unit "
                            f"tokenizer makes {lm.vocab.num_units}")
    return vocoder


def run_generate(cfg: GenerateConfig) -> StageReport:
    if cfg.task == "spoken_answer":  # a `koe sft` model answers with its own strategy (koe.strategies)
        from koe.strategies.generate import run_spoken_answer

        return run_spoken_answer(cfg)
    prompts = _prompts(cfg)
    report = StageReport("generate", cfg.out_dir, items_in=len(prompts))
    save_config(cfg, cfg.out_dir)
    lm = SpeechTextLM.load(cfg.model, cfg.device, cfg.dtype, unit_tokenizer=cfg.unit_tokenizer,
                           require_unit_tokenizer=cfg.task in AUDIO_TASKS)
    vocoder = load_vocoder(cfg, lm)
    for i, prompt in enumerate(progress(prompts, desc="generate")):
        name = f"sample_{i:03d}"
        sample_dir = cfg.out_dir / name
        sample_dir.mkdir(parents=True, exist_ok=True)
        (sample_dir / "prompt.json").write_text(json.dumps({"task": cfg.task, "prompt": prompt, "seed": cfg.seed + i},
                                                           ensure_ascii=False))
        generator = torch.Generator(device=lm.device).manual_seed(cfg.seed + i)
        try:
            result = generate_one(lm, cfg, prompt, generator)
        except (KoeInputError, ValueError) as e:  # a bad prompt or a vocabulary error fails this item only
            report.fail(name, str(e), prompt if cfg.task in AUDIO_TASKS else None)
            continue
        if result["text"] is not None:
            (sample_dir / "text.txt").write_text(result["text"] + "\n")
        if result["units"] is not None:
            (sample_dir / "units.json").write_text(json.dumps(result["units"]))
            if vocoder is not None:
                from koe.vocoder import units_to_audio

                audio = units_to_audio(vocoder, np.asarray(result["units"]))
                sf.write(sample_dir / "audio.wav", audio, vocoder.mel.sample_rate_hz)
        report.ok()
    return report.finish()
