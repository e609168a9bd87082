"""`koe ssl pretrain`: HuBERT iteration 1 from scratch, masked prediction of k-means frame labels.

    koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert steps=2000            # MFCC k=100 targets, 4 x 256
    koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert-it2 tokenizer=tok/hubert-l3-k500   # iteration 2
    accelerate launch --num_processes 8 -m koe ssl pretrain data/manifest.jsonl out_dir=runs/hubert-base \
        model.hidden_size=768 model.num_layers=12 model.num_heads=12 model.intermediate_size=3072 model.conv_dim=512
    koe units fit data/manifest.jsonl out_dir=tok/hubert-l3 features=hf:runs/hubert/final@3 k=100

Reads top to bottom: setup (targets tokenizer, frame labels of every utterance, model, optimiser), the loop (one
seeded batch per step: crop, span masks, cross-entropy on masked frames), cleanup (evaluation, the encoder saved as a
plain HF directory in out_dir/final, loss curve, summary). Beside it: config.yaml (with the seed), metrics.jsonl,
tb/, loss_curve.png, ssl_pretrain_summary.json, ssl_pretrain_failures.jsonl and, when fitted, targets/.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.corpus.manifest import Utterance
from koe.seed import rng_for, seed_everything
from koe.ssl.config import PretrainConfig
from koe.ssl.data import StepBatches, step_loader
from koe.ssl.encoder import FrameGeometry, HubertPretrainer, LabelHead, build_hubert, normalize_wave, save_encoder
from koe.ssl.loop import start_run
from koe.ssl.targets import align_labels, frame_labels, label_grid, span_mask, target_tokenizer
from koe.stage import KoeInputError, StageReport, progress
from koe.training.logger import MetricsLogger
from koe.training.optim import build_adamw, optimizer_step
from koe.training.schedule import build_scheduler
from koe.units.encode import load_utterance

STAGE = "ssl pretrain"
COUNTS = ("ce_sum", "masked", "correct", "unmasked", "correct_unmasked")


class PretrainBatch:
    """Crops -> normalised waves [B, S], span masks [B, T] and aligned labels [B, T] (picklable for workers)."""

    def __init__(self, labels: dict[str, np.ndarray], grid: tuple[float, float], geometry: FrameGeometry,
                 mask_prob: float, mask_length: int) -> None:
        self.labels, self.grid, self.geometry = labels, grid, geometry
        self.mask_prob, self.mask_length = mask_prob, mask_length

    def __call__(self, crops: list[np.ndarray], utts: list[Utterance], offsets: list[int],
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        frames = self.geometry.num_frames(len(crops[0]))
        wave = torch.stack([normalize_wave(torch.from_numpy(c)) for c in crops])
        targets = np.stack([align_labels(self.labels[u.id], self.grid, self.geometry, o, frames)
                            for u, o in zip(utts, offsets, strict=True)])
        mask = span_mask(rng, len(crops), frames, self.mask_prob, self.mask_length)
        return {"wave": wave, "mask": torch.from_numpy(mask), "targets": torch.from_numpy(targets)}


def run_pretrain(cfg: PretrainConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    accelerator, report, train, held_out = start_run(cfg, STAGE)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    out_dir, manifest_dir = Path(cfg.out_dir), Path(cfg.manifest).parent
    with accelerator.main_process_first():
        tok = target_tokenizer(cfg.tokenizer, out_dir, cfg.manifest, cfg.split, cfg.num_clusters, cfg.seed,
                               str(accelerator.device))
    labels = frame_labels(tok, train + held_out, manifest_dir, cfg.max_duration_s, report)
    train, held_out = [u for u in train if u.id in labels], [u for u in held_out if u.id in labels]
    if not train:
        raise KoeInputError(f"{cfg.manifest}: no training utterance could be loaded ({len(report.failures)} failed)")
    grid = label_grid(tok.spec.features)

    seed_everything(cfg.seed)
    encoder = build_hubert(cfg.model, cfg.mask_prob, cfg.mask_length)
    geometry = FrameGeometry.of(encoder.config)
    trainer = HubertPretrainer(encoder, LabelHead(cfg.model.hidden_size, tok.num_units, cfg.final_dim,
                                                  cfg.logit_temp))
    num_params = sum(p.numel() for p in encoder.parameters())
    optimizer, frozen = build_adamw({"all": trainer.parameters()}, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.steps, frozen)
    trainer, optimizer = accelerator.prepare(trainer, optimizer)
    batches = StepBatches(train, manifest_dir, cfg.batch_size, cfg.max_crop_s, cfg.max_duration_s, cfg.seed, rank,
                          world, PretrainBatch(labels, grid, geometry, cfg.mask_prob, cfg.mask_length))
    log = MetricsLogger(out_dir, cfg.tensorboard, enabled=main,
                        panels={"masked cross-entropy (nats/frame)": ["loss", "eval_loss"],
                                "accuracy": ["masked_acc", "unmasked_acc", "eval_masked_acc"]})
    if main:
        print(f"[{STAGE}] {num_params / 1e6:.2f}M encoder params, {len(train)} train / {len(held_out)} held-out "
              f"utterances, {tok.num_units} targets from {tok.spec.features.name} "
              f"({tok.frame_rate_hz:g} Hz -> {TARGET_SAMPLE_RATE_HZ / geometry.stride:g} Hz), {world} process(es)")
    first_eval = _evaluate(trainer, held_out, labels, grid, geometry, cfg, accelerator)
    log.write(0, first_eval)

    # ---------------------------------------------------------------- loop
    t0 = time.perf_counter()
    interval = torch.zeros(len(COUNTS), dtype=torch.float64)
    audio_s, last = 0.0, {}
    trainer.train()
    steps = zip(range(cfg.steps), step_loader(batches, 0, cfg.steps, cfg.num_workers), strict=True)
    for step, batch in progress(steps, desc=STAGE, total=cfg.steps, unit="step") if main else steps:
        batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
        out = trainer(batch["wave"], batch["mask"], batch["targets"])
        accelerator.backward(out["ce_sum"] / out["masked"].clamp(min=1))
        grad_norm, lr = optimizer_step(accelerator, trainer, optimizer, scheduler, cfg.optim.grad_clip)
        interval += torch.stack([out[k].detach().double().cpu() for k in COUNTS])
        audio_s += batch["wave"].numel() / TARGET_SAMPLE_RATE_HZ * world
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            last = _rates(accelerator.reduce(interval.to(accelerator.device), reduction="sum").cpu())
            log.write(done, {**last, "lr": lr, "audio_s": round(audio_s, 1),
                             **({"grad_norm": float(grad_norm)} if grad_norm is not None else {})})
            interval.zero_()
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            log.write(done, _evaluate(trainer, held_out, labels, grid, geometry, cfg, accelerator))
            trainer.train()

    # ---------------------------------------------------------------- cleanup
    train_time = time.perf_counter() - t0
    final_eval = _evaluate(trainer, held_out, labels, grid, geometry, cfg, accelerator)
    log.write(cfg.steps, final_eval)
    if main:
        save_encoder(accelerator.unwrap_model(trainer).encoder, out_dir / "final")
    accelerator.wait_for_everyone()
    curve = log.close()
    report.items_out = len(train)
    report.extra.update({
        "steps": cfg.steps, "train_utterances": len(train), "held_out_utterances": len(held_out),
        "num_params": num_params, "targets_tokenizer": str(cfg.tokenizer or out_dir / "targets"),
        "targets_features": tok.spec.features.name, "targets_hash": tok.content_hash, "num_targets": tok.num_units,
        "targets_frame_rate_hz": tok.frame_rate_hz, "frame_rate_hz": TARGET_SAMPLE_RATE_HZ / geometry.stride,
        "train_time_s": round(train_time, 1), "audio_s_seen": round(audio_s, 1), "processes": world,
        "device": str(accelerator.device), **{f"final_{k}": v for k, v in last.items()},
        **{f"start_{k}": v for k, v in first_eval.items()}, **final_eval, "encoder_dir": str(out_dir / "final"),
    })
    if curve is not None:
        report.extra["loss_curve"] = str(curve)
    accelerator.end_training()
    return report.finish(quiet=not main)


def _rates(sums: torch.Tensor) -> dict[str, float]:
    s = dict(zip(COUNTS, sums.tolist(), strict=True))
    masked, unmasked = max(s["masked"], 1.0), max(s["unmasked"], 1.0)
    return {"loss": round(s["ce_sum"] / masked, 4), "masked_acc": round(s["correct"] / masked, 4),
            "unmasked_acc": round(s["correct_unmasked"] / unmasked, 4),
            "masked_fraction": round(s["masked"] / max(s["masked"] + s["unmasked"], 1.0), 4)}


@torch.no_grad()
def _evaluate(trainer, held_out: list[Utterance], labels: dict[str, np.ndarray], grid: tuple[float, float],
              geometry: FrameGeometry, cfg: PretrainConfig, accelerator) -> dict[str, float]:
    """Masked cross-entropy and accuracy on whole held-out utterances, padded batches, fixed per-utterance masks."""
    if not held_out:
        return {}
    model = accelerator.unwrap_model(trainer).eval()
    sums = torch.zeros(len(COUNTS), dtype=torch.float64)
    ordered = sorted(held_out, key=lambda u: -u.duration_s)
    for i in range(0, len(ordered), cfg.batch_size):
        chunk = ordered[i : i + cfg.batch_size]
        waves = [normalize_wave(torch.from_numpy(load_utterance(u, Path(cfg.manifest).parent, cfg.max_duration_s)))
                 for u in chunk]
        longest = max(len(w) for w in waves)
        total = geometry.num_frames(longest)
        wave, attention = torch.zeros(len(waves), longest), torch.zeros(len(waves), longest, dtype=torch.long)
        targets, mask = torch.full((len(waves), total), -1), torch.zeros(len(waves), total, dtype=torch.bool)
        for b, (u, w) in enumerate(zip(chunk, waves, strict=True)):
            n = geometry.num_frames(len(w))
            wave[b, : len(w)], attention[b, : len(w)] = w, 1
            targets[b, :n] = torch.from_numpy(align_labels(labels[u.id], grid, geometry, 0, n))
            mask[b, :n] = torch.from_numpy(span_mask(rng_for(cfg.seed, "eval-mask", u.id), 1, n, cfg.mask_prob,
                                                     cfg.mask_length)[0])
        with accelerator.autocast():
            out = model(*(t.to(accelerator.device) for t in (wave, mask, targets, attention)))
        sums += torch.stack([out[k].double().cpu() for k in COUNTS])
    rates = _rates(sums)
    return {"eval_loss": rates["loss"], "eval_masked_acc": rates["masked_acc"],
            "eval_unmasked_acc": rates["unmasked_acc"]}
