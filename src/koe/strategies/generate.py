"""`koe generate task=spoken_answer`: answer spoken questions with the strategy a `koe sft` model was tuned for.

    koe generate runs/dialogue/sft/interleaved/final task=spoken_answer prompts='["question.wav"]' \
        vocoder=runs/dialogue/vocoder out_dir=runs/dialogue/generated

Each prompt (a WAV of a question) gets sample_NNN/ with prompt.json, text.txt (the text answer), units.json (the
answer's units, none for the cascade) and audio.wav (vocoded units, or the cascade's espeak audio).
"""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
import torch

from koe.audio import TARGET_SAMPLE_RATE_HZ, load_audio
from koe.config import save_config
from koe.dialogue.examples import DialogueExample
from koe.stage import KoeInputError, StageReport, progress
from koe.strategies.base import example_tokens
from koe.strategies.loading import load_bundle


def run_spoken_answer(cfg) -> StageReport:
    """cfg is a koe.generate.config.GenerateConfig with task=spoken_answer."""
    from koe.vocoder import UnitVocoder, units_to_audio

    report = StageReport("generate", cfg.out_dir, items_in=len(cfg.prompts))
    save_config(cfg, cfg.out_dir)
    bundle, strategy = load_bundle(cfg.model, cfg.device, unit_tokenizer=cfg.unit_tokenizer)
    unit_tok = bundle.unit_tokenizer
    if unit_tok is None:
        raise KoeInputError(f"no-unit-tokenizer: {cfg.model} carries none; give unit_tokenizer=DIR")
    vocoder = UnitVocoder.load(cfg.vocoder) if cfg.vocoder is not None else None
    for i, prompt in enumerate(progress(cfg.prompts, desc="generate spoken_answer")):
        torch.manual_seed(cfg.seed + i)
        sample = Path(cfg.out_dir) / f"sample_{i:03d}"
        try:
            units = [int(u) for u in unit_tok.encode_audio(load_audio(prompt, duration_s=cfg.prompt_seconds))[0]]
            ex = DialogueExample(f"sample_{i:03d}", "prompt", "eval", "speech", "heldout", "heldout", "?", "?", [],
                                 str(Path(prompt).resolve()), None, units, None, "en-us", None)
            ans = strategy.answer(bundle, example_tokens(ex, bundle.tokenizer, bundle.vocab), ex, "/",
                                  cfg.max_new_tokens)
        except KoeInputError as e:
            report.fail(f"sample_{i:03d}", str(e), prompt)
            continue
        sample.mkdir(parents=True, exist_ok=True)
        (sample / "prompt.json").write_text(json.dumps({"task": cfg.task, "prompt": prompt,
                                                        "strategy": strategy.name}))
        (sample / "text.txt").write_text(ans.text + "\n")
        audio, rate = ans.audio, TARGET_SAMPLE_RATE_HZ
        if ans.units is not None:
            (sample / "units.json").write_text(json.dumps(ans.units))
            kept = [u for u in ans.units if vocoder is not None and u < vocoder.num_units]
            audio = units_to_audio(vocoder, kept) if kept else None
            rate = vocoder.sample_rate_hz if vocoder is not None else rate
        if audio is not None:
            sf.write(sample / "audio.wav", audio, rate)
        report.ok()
    return report.finish()
