"""`koe s2t train`: ASR pre-alignment, then spoken-QA SFT with a text-only mixture (FIELD.md "EchoX" stage I).

    koe s2t train stage=align qa=runs/echox/qa.jsonl encoder=openai/whisper-small llm=Qwen/Qwen2.5-0.5B \
        out_dir=runs/s2t_align                                    # adapter + CTC only, LLM frozen
    koe s2t train stage=sft qa=runs/echox/qa.jsonl init=runs/s2t_align/final out_dir=runs/s2t_sft   # + LoRA

align: each training question and answer utterance is transcribed (loss CE(transcript) + 0.3 CTC). sft: the spoken
question is answered (CE(answer) + 0.3 CTC(question)) and, with probability `text_fraction`, a step's batch is
text-only QA over every non-heldout fact (question text -> answer), which keeps the LLM's text skill and teaches
text_only facts only in text. Either stage can add the alignment terms of koe.s2t.alignment on its speech items:
`implicit_weight` * KL(p_text || p_speech) over the target tokens (the LLM reading the transcript instead of the
speech is the teacher) and `explicit_weight` * (1 - cos) between the pooled adapter output and the pooled transcript
embeddings; both default to 0 (off). Bad audio (wrong rate, silent, too long) is listed per item and left out.
Training runs on koe.training through koe.s2t.loop (AdamW, lr schedule, clipping, metrics, checkpoints, the
Accelerator: `device=auto` takes the GPU with bf16 autocast when there is one).
Writes out_dir/final (SpeechAwareLM.save), config.yaml (with the seed), metrics.jsonl, loss_curve.png,
s2t_train_summary.json (+ checkpoints/ with save_every; resume_from=auto continues the newest).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from koe.config import at_least, save_config
from koe.s2t.loop import LoopConfig, fit, step_rng
from koe.stage import KoeInputError, StageReport, progress

ASR_PROMPT, QA_PROMPT = "repeat :", "answer :"


@dataclasses.dataclass
class S2TTrainConfig(LoopConfig):
    """Train the speech-aware text LM: stage=align (adapter + CTC) or stage=sft (adapter + CTC + LoRA)."""

    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records (echox qa)"})
    out_dir: Path = dataclasses.field(default=Path("runs/s2t"), metadata={"help": "output folder"})
    stage: Literal["align", "sft"] = dataclasses.field(default="align", metadata={"help": "align or sft"})
    init: str = dataclasses.field(default="", metadata={"help": "a saved S2T dir to start from (sft: the align out)"})
    encoder: str = dataclasses.field(default="", metadata={"help": "HF id or path of the speech encoder"})
    llm: str = dataclasses.field(default="", metadata={"help": "HF id or path of the causal LM"})
    adapter: str = dataclasses.field(default="concat_transformer", metadata={"help": "adapter (koe.s2t.adapters)"})
    freeze_encoder: bool = dataclasses.field(default=True, metadata={"help": "keep the encoder frozen"})
    ctc_shrink: bool = dataclasses.field(default=True, metadata={"help": "pool CTC runs before the LLM"})
    lora_rank: int = dataclasses.field(default=8, metadata={"help": "sft: LoRA rank (0 = full LLM fine-tuning)"})
    lora_alpha: float = dataclasses.field(default=16.0, metadata={"help": "sft: LoRA alpha"})
    text_fraction: float = dataclasses.field(default=0.3, metadata={"help": "sft: share of text-only QA batches"})
    implicit_weight: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of KL(p_text || p_speech) on the target tokens (same continuation from speech and transcript)"})
    explicit_weight: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of 1 - cos(pooled adapter output, pooled transcript embeddings)"})
    batch_size: int = dataclasses.field(default=8, metadata={"help": "items per step"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of init, batches and the text mixture"})

    def validate(self) -> list[str]:
        problems = self.loop_problems()
        if not self.init and not (self.encoder and self.llm):
            problems.append("give init=<saved S2T dir> or both encoder= and llm=")
        if not 0.0 <= self.text_fraction <= 1.0:
            problems.append(f"text_fraction={self.text_fraction} must be in [0, 1]")
        return problems + at_least(self, ("batch_size",), 1) + at_least(self, ("implicit_weight", "explicit_weight"), 0)


def load_wav(path: str, max_s: float) -> np.ndarray:
    """Read a WAV as-is (no resampling) and check it for the encoder; KoeInputError names the file and problem."""
    import soundfile as sf

    from koe.s2t.encoder import check_audio

    try:
        wav, sr = sf.read(path, dtype="float32", always_2d=False)
    except (RuntimeError, OSError) as e:
        raise KoeInputError(f"unreadable: {path}: {e}") from None
    return check_audio(wav, sr, max_s, path)


def load_audio_cache(paths: list[str], max_s: float, report: StageReport) -> dict[str, np.ndarray]:
    """Every readable, usable file; each bad one is listed in the report once."""
    cache = {}
    for p in progress(sorted(set(paths)), desc="load audio"):
        try:
            cache[p] = load_wav(p, max_s)
        except KoeInputError as e:
            report.fail(Path(p).stem, str(e), path=p)
    return cache


def build_model(cfg: S2TTrainConfig):
    from koe.s2t.model import SpeechAwareLM

    torch.manual_seed(cfg.seed)
    if cfg.init:
        model = SpeechAwareLM.load(cfg.init, freeze_encoder=cfg.freeze_encoder)
    else:
        model = SpeechAwareLM.create(cfg.encoder, cfg.llm, cfg.adapter, cfg.freeze_encoder)
    model.spec.ctc_shrink = cfg.ctc_shrink if cfg.stage == "sft" else False  # CTC must learn before it shrinks
    if cfg.stage == "sft" and cfg.lora_rank > 0:
        model.add_lora(cfg.lora_rank, cfg.lora_alpha)
    model.set_llm_trainable(cfg.stage == "sft")
    return model.train()


def examples(cfg: S2TTrainConfig, records, audio: dict):
    from koe.s2t.model import Example

    train = [r for r in records if r.role == "train"]
    if cfg.stage == "align":
        speech = [Example(ASR_PROMPT, audio[p], target=t, transcript=t)
                  for r in train for p, t in ((r.question_audio, r.question_text), (r.answer_audio, r.answer_text))
                  if p in audio]
        return speech, []
    speech = [Example(QA_PROMPT, audio[r.question_audio], target=r.answer_text, transcript=r.question_text)
              for r in train if r.question_audio in audio]
    seen = {r.fact_id: r for r in records if r.split != "heldout"}
    text = [Example(QA_PROMPT, prefix=r.question_text, target=r.answer_text) for r in seen.values()]
    return speech, text


def run_s2t_train(cfg: S2TTrainConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    from koe.s2t.records import read_qa
    from koe.training.device import make_accelerator

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out_dir)
    accelerator = make_accelerator(cfg.device, cfg.precision)
    save_config(cfg, out)
    records = read_qa(cfg.qa)
    report = StageReport("s2t train", out, items_in=sum(r.role == "train" for r in records))
    model = build_model(cfg)
    paths = [p for r in records if r.role == "train" for p in (r.question_audio, r.answer_audio) if p]
    audio = load_audio_cache(paths, model.encoder.max_audio_s, report)
    speech, text = examples(cfg, records, audio)
    if not speech:
        report.fail(str(cfg.qa), "empty: no usable training speech")
        return report.finish()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # ---------------------------------------------------------------- loop (koe.s2t.loop.fit)
    terms: dict[str, list[float]] = {}  # alignment terms per speech step (text-only steps have none)

    def step(i: int, module):
        rng = step_rng(cfg.seed, i)
        pool = text if text and rng.random() < cfg.text_fraction else speech
        loss, parts = module(rng.sample(pool, min(cfg.batch_size, len(pool))), cfg.implicit_weight,
                             cfg.explicit_weight)
        for k in ("implicit", "explicit"):
            if k in parts:
                terms.setdefault(k, []).append(round(parts[k], 4))
        return loss, {**parts, "text_only": pool is text}

    panels = {"loss": ["loss", "ce", "ctc"]}
    if cfg.implicit_weight or cfg.explicit_weight:
        panels["alignment"] = ["implicit", "explicit"]
    result = fit(accelerator, cfg, model, step, out, f"s2t {cfg.stage}", panels=panels)

    # ---------------------------------------------------------------- cleanup
    result.model.eval().save(out / "final")
    report.ok(sum(r.role == "train" and r.question_audio in audio for r in records))
    report.extra.update(stage=cfg.stage, speech_examples=len(speech), text_examples=len(text),
                        trainable_params=trainable, implicit_weight=cfg.implicit_weight,
                        explicit_weight=cfg.explicit_weight, first=result.first, last=result.last, steps=result.steps,
                        train_time_s=result.train_time_s, device=str(accelerator.device),
                        mixed_precision=accelerator.mixed_precision, model_dir=str(out / "final"))
    if terms:  # first/last may be text-only steps: each term's own first and last value (of this process's steps)
        report.extra["alignment"] = {k: {"first": v[0], "last": v[-1], "steps": len(v)} for k, v in terms.items()}
    if result.resumed_from:
        report.extra["resumed_from"] = result.resumed_from
    return report.finish()
