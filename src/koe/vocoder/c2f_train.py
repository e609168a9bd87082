"""`koe vocoder train kind=c2f`: train the coarse-to-fine acoustic model (koe.vocoder.coarse_to_fine).

    koe vocoder train kind=c2f c2f.codec=runs/codec manifest=runs/tiny/synth/manifest.jsonl \
        units_dir=runs/tiny/units out_dir=runs/c2f steps=1500 exclude_speakers=[en-gb-x-rp+f2,en-029+m5]

Reads top to bottom: setup (each utterance's audio encoded once by the codec into the targets [levels, frames], its
phonetic units repeated to the codec frame rate, the shared AdamW / schedule / accelerator of koe.training), the
loop (random crops, a pure function of (seed, step); loss = mean over levels of the cross-entropy of level l given
the true levels < l, plus the duration MSE), then the vocoder folder (with a copy of the codec), held-out
accuracies per level (teacher-forced and free-running) and a sample WAV.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import soundfile as sf
import torch

from koe.audio.mel import MelSpec
from koe.config import save_config
from koe.seed import seed_everything
from koe.stage import KoeInputError, StageReport, progress, write_json
from koe.training.device import make_accelerator
from koe.training.logger import MetricsLogger
from koe.training.optim import build_adamw, optimizer_step
from koe.training.schedule import build_scheduler
from koe.vocoder.coarse_to_fine import C2FShape, CoarseToFineVocoder
from koe.vocoder.config import VocoderConfig


@dataclasses.dataclass
class Example:
    id: str
    speaker: int
    frame_units: np.ndarray  # int64 [T] unit id per codec frame
    codes: np.ndarray  # int64 [levels, T]
    units: np.ndarray  # int64 [M] dedup units
    durations: np.ndarray  # int64 [M] unit frames


def load_examples(cfg: VocoderConfig, vocoder: CoarseToFineVocoder, utts, codec) -> list[Example]:
    """Encode every utterance's audio with the codec; frames are cropped to the shorter of units and codes."""
    out = []
    for u in progress(utts, desc="c2f codes", unit="utt"):
        codes = codec.encode(u.wav)
        frames = vocoder.code_rate_units(u.units, u.durations)
        n = min(len(frames), codes.shape[1])
        out.append(Example(u.id, vocoder.speakers.index(u.speaker), frames[:n], codes[:, :n], u.units, u.durations))
    return out


def sample_batch(examples: list[Example], seed: int, step: int, batch_size: int, frames: int):
    """(units [B, T], speakers [B], codes [L, B, T], mask [B, T], dedup [B, M], log_dur [B, M], dedup_mask)."""
    rng = np.random.default_rng([seed, step])
    chosen = [examples[i] for i in rng.integers(0, len(examples), batch_size)]
    levels = chosen[0].codes.shape[0]
    units, codes = np.zeros((batch_size, frames), np.int64), np.zeros((levels, batch_size, frames), np.int64)
    mask = np.zeros((batch_size, frames), bool)
    longest = max(len(e.units) for e in chosen)
    dedup, log_d = np.zeros((batch_size, longest), np.int64), np.zeros((batch_size, longest), np.float32)
    dedup_mask = np.zeros((batch_size, longest), bool)
    for i, e in enumerate(chosen):
        start = int(rng.integers(0, max(1, len(e.frame_units) - frames + 1)))
        n = min(frames, len(e.frame_units) - start)
        units[i, :n], codes[:, i, :n], mask[i, :n] = e.frame_units[start:start + n], e.codes[:, start:start + n], 1
        m = len(e.units)
        dedup[i, :m], log_d[i, :m], dedup_mask[i, :m] = e.units, np.log1p(e.durations), 1
    return tuple(map(torch.from_numpy, (units, np.array([e.speaker for e in chosen]), codes, mask, dedup, log_d,
                                        dedup_mask)))


def train_c2f(cfg: VocoderConfig) -> StageReport:
    from koe.units.codec import CodecTokenizer
    from koe.units.shards import load_units_meta
    from koe.vocoder.data import load_utterances

    # --- setup -------------------------------------------------------------------------------------------------
    c = cfg.c2f
    seed_everything(cfg.seed)
    report = StageReport("vocoder train", cfg.out_dir)
    save_config(cfg, cfg.out_dir)
    accelerator = make_accelerator(cfg.device, "fp32")
    device = accelerator.device
    codec = CodecTokenizer.load(c.codec, device=str(device))
    meta = load_units_meta(cfg.units_dir)
    utts = load_utterances(cfg, meta.frame_rate_hz, MelSpec(), report)
    if len(utts) < 2:
        raise KoeInputError(f"too few usable utterances ({len(utts)}) in {cfg.units_dir}")
    speakers = sorted({u.speaker for u in utts})
    shape = C2FShape(meta.num_units, len(speakers), codec.num_levels, codec.codebook_size, c.hidden_size,
                     c.num_layers)
    vocoder = CoarseToFineVocoder(shape, speakers, meta.frame_rate_hz, codec.frame_rate_hz)
    examples = load_examples(cfg, vocoder, utts, codec)
    n_held = max(1, min(16, len(examples) // 20))
    held, train = examples[:n_held], examples[n_held:]
    optimizer, frozen = build_adamw({"c2f": vocoder.parameters()}, c.optim)
    scheduler = build_scheduler(optimizer, c.optim, cfg.steps, frozen)
    model, optimizer, scheduler = accelerator.prepare(vocoder, optimizer, scheduler)
    log = MetricsLogger(cfg.out_dir, tensorboard=False,
                        panels={"loss": ["loss", "code_ce", "duration_mse"], "level accuracy": ["acc_l0", "acc_last"]})
    began, losses = time.perf_counter(), []

    # --- loop --------------------------------------------------------------------------------------------------
    model.train()
    step = 0
    for step in progress(range(cfg.steps), desc="c2f train", total=cfg.steps, unit="step"):
        units, spk, codes, mask, dedup, log_d, dedup_mask = (t.to(device) for t in sample_batch(
            train, cfg.seed, step, cfg.batch_size, c.segment_frames))
        logits = vocoder.model(units, spk, codes)  # [L, B, T, K]
        ce = torch.nn.functional.cross_entropy(logits[:, mask].transpose(1, 2), codes[:, mask],
                                             reduction="none").mean(1)  # [L]: one cross-entropy per level
        dur_mse = ((vocoder.durations(dedup, spk) - log_d) ** 2)[dedup_mask].mean()
        loss = ce.mean() + dur_mse
        accelerator.backward(loss)
        _, lr = optimizer_step(accelerator, model, optimizer, scheduler, c.optim.grad_clip)
        losses.append(loss.item())
        if (step + 1) % c.log_every == 0 or step + 1 == cfg.steps:
            acc = (logits.argmax(-1)[:, mask] == codes[:, mask]).float().mean(1)
            log.write(step + 1, {"loss": round(loss.item(), 4), "code_ce": round(ce.mean().item(), 4),
                                 "duration_mse": round(dur_mse.item(), 4), "acc_l0": round(acc[0].item(), 4),
                                 "acc_last": round(acc[-1].item(), 4), "lr": lr})
        if c.time_budget_s > 0 and time.perf_counter() - began > c.time_budget_s:
            report.extra["stopped_early_at_step"] = step + 1
            break
    log.close()

    # --- vocoder folder, held-out accuracy, sample --------------------------------------------------------------
    vocoder = accelerator.unwrap_model(model).eval().cpu()
    codec = CodecTokenizer.load(c.codec)
    vocoder.codec = codec
    evaluation = evaluate_c2f(vocoder, held)
    vocoder.save(cfg.out_dir, c.codec, extra={"trained_steps": step + 1, "seed": cfg.seed, "heldout": evaluation,
                                              "excluded_speakers": list(cfg.exclude_speakers)})
    write_json(cfg.out_dir / "c2f_eval.json", evaluation)
    e = held[0]
    audio = vocoder.synthesize(e.units, e.durations, speakers[e.speaker])
    sf.write(cfg.out_dir / f"sample_{e.id}.wav", audio, vocoder.sample_rate_hz)
    report.items_out = len(examples)
    report.extra.update(kind="c2f", train_utterances=len(train), speakers=len(speakers), steps_run=step + 1,
                        first_loss=round(float(np.mean(losses[:10])), 4),
                        final_loss=round(float(np.mean(losses[-20:])), 4), device=str(device),
                        train_time_s=round(time.perf_counter() - began, 1), **{
                            k: evaluation[k] for k in ("teacher_forced_accuracy", "generated_accuracy")})
    return report.finish()


@torch.no_grad()
def evaluate_c2f(vocoder: CoarseToFineVocoder, examples: list[Example]) -> dict:
    """Per-level code accuracy of whole held-out utterances: given the true coarser levels, and free-running."""
    levels = vocoder.shape.levels
    tf, gen, frames = np.zeros(levels), np.zeros(levels), 0
    for e in examples:
        units, spk = torch.from_numpy(e.frame_units)[None], torch.tensor([e.speaker])
        codes = torch.from_numpy(e.codes)[:, None]
        tf += (vocoder.model(units, spk, codes).argmax(-1) == codes).sum((1, 2)).numpy()
        gen += (vocoder.model.generate(units, spk) == codes).sum((1, 2)).numpy()
        frames += len(e.frame_units)
    return {"utterances": len(examples), "frames": frames,
            "teacher_forced_accuracy": [round(x / frames, 4) for x in tf],
            "generated_accuracy": [round(x / frames, 4) for x in gen]}
