"""`koe vocoder train kind=hifigan`: train the neural unit vocoder (HiFi-GAN + duration predictor), resumably.

    koe vocoder train kind=hifigan manifest=runs/tiny/synth/manifest.jsonl units_dir=runs/tiny/units \
        out_dir=runs/voc exclude_speakers=[en-gb-x-rp+f2,en-029+m5]
    koe vocoder train src/koe/configs/vocoder/hifigan_gpu.yaml manifest=... units_dir=... out_dir=...

Reads top to bottom: setup (data, models, optimisers, resume), the GAN loop (discriminator step, then generator step
with 45 x mel L1 + LSGAN + 2 x feature matching + duration MSE), checkpoints every `save_every` steps, then the final
vocoder folder, a held-out mel L1, a sample WAV and the loss curve. Batches are a pure function of (seed, step)
(koe.vocoder.data), so a resumed run continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from koe.audio.mel import MelSpec
from koe.config import save_config
from koe.seed import seed_everything
from koe.stage import StageReport, progress, write_json
from koe.training.logger import MetricsLogger, plot_step_losses
from koe.training.schedule import lr_factor
from koe.vocoder.config import VocoderConfig
from koe.vocoder.data import Utterance, load_utterances, sample_batch
from koe.vocoder.discriminators import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from koe.vocoder.hifigan import GeneratorShape, HifiGanVocoder, batch_log_mel

STATE_FILE = "trainer_state.json"


def train_hifigan(cfg: VocoderConfig) -> StageReport:
    from koe.units.shards import load_units_meta

    # --- setup -------------------------------------------------------------------------------------------------
    h = cfg.hifigan
    seed_everything(cfg.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    report = StageReport("vocoder train", cfg.out_dir)
    save_config(cfg, cfg.out_dir)
    meta, spec = load_units_meta(cfg.units_dir), MelSpec()
    utts = load_utterances(cfg, meta.frame_rate_hz, spec, report)
    if len(utts) < 2:
        report.fail("data", f"too few usable utterances ({len(utts)}) in {cfg.units_dir}")
        return report.finish()
    held_out, train = utts[: max(1, min(16, len(utts) // 20))], utts[max(1, min(16, len(utts) // 20)):]
    speakers = sorted({u.speaker for u in utts})
    shape = GeneratorShape(meta.num_units, len(speakers), h.unit_embed_dim, h.prenet_layers,
                           h.upsample_initial_channel, h.upsample_rates, h.resblock_kernel_sizes,
                           h.resblock_dilations)
    vocoder = HifiGanVocoder(shape, speakers, meta.frame_rate_hz, spec).to(device).train()
    discs = Discriminators(h.periods, h.msd_scales, h.disc_width).to(device).train()
    opt_g = torch.optim.AdamW(vocoder.parameters(), h.lr, betas=tuple(h.betas), weight_decay=0.01)
    opt_d = torch.optim.AdamW(discs.parameters(), h.lr, betas=tuple(h.betas), weight_decay=0.01)
    start = _resume(cfg, vocoder, discs, opt_g, opt_d, device) if cfg.resume else 0
    log = MetricsLogger(cfg.out_dir, tensorboard=False, resume_step=start)
    filterbank = spec.filterbank().to(device)
    losses: list[float] = []
    began = time.perf_counter()

    # --- loop --------------------------------------------------------------------------------------------------
    step = start
    for step in progress(range(start, cfg.steps), desc="vocoder train", total=cfg.steps - start, unit="step"):
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = h.lr * lr_factor(step, cfg.steps, h.schedule, h.warmup_steps, 0.0, 0.1)
        batch = sample_batch(train, speakers, cfg.seed, step, cfg.batch_size, h.segment_frames,
                             spec.hop_length).to(device)
        fake = vocoder.generator(batch.units, batch.speakers)
        adversarial = step >= h.adversarial_start_step

        loss_d = torch.zeros((), device=device)
        if adversarial:  # discriminators: real -> 1, generated -> 0
            real_out, _ = discs(batch.wav)
            fake_out, _ = discs(fake.detach())
            loss_d = discriminator_loss(real_out, fake_out)
            _optimizer_step(opt_d, discs, loss_d, h.grad_clip)

        mel_l1 = torch.nn.functional.l1_loss(batch_log_mel(fake, spec, filterbank),
                                             batch_log_mel(batch.wav, spec, filterbank))
        log_d = vocoder.durations(batch.dedup_units, batch.speakers)
        dur_mse = ((log_d - batch.log_durations) ** 2)[batch.dedup_mask].mean()
        loss_g = h.mel_weight * mel_l1 + h.duration_weight * dur_mse
        adv = fm = torch.zeros((), device=device)
        if adversarial:
            _, real_feats = discs(batch.wav)
            fake_out, fake_feats = discs(fake)
            adv, fm = generator_adversarial_loss(fake_out), feature_matching_loss(real_feats, fake_feats)
            loss_g = loss_g + adv + h.fm_weight * fm
        _optimizer_step(opt_g, vocoder, loss_g, h.grad_clip)

        losses.append(mel_l1.item())
        if (step + 1) % h.log_every == 0 or step + 1 == cfg.steps:
            values = {"loss": loss_g, "mel_l1": mel_l1, "loss_d": loss_d, "adv": adv, "fm": fm, "duration_mse": dur_mse}
            log.write(step + 1, {**{k: round(v.item(), 4) for k, v in values.items()},
                                 "lr": opt_g.param_groups[0]["lr"]})
        out_of_time = h.time_budget_s > 0 and time.perf_counter() - began > h.time_budget_s
        if (step + 1) % h.save_every == 0 or out_of_time:
            _save_checkpoint(cfg, step + 1, vocoder, discs, opt_g, opt_d)
        if out_of_time:
            report.extra["stopped_early_at_step"] = step + 1
            break

    # --- final vocoder, held-out quality, summary -------------------------------------------------------------
    log.close()
    vocoder.eval()
    held_l1, sample = _held_out_mel_l1(vocoder, held_out, spec, filterbank)
    vocoder.save(cfg.out_dir, extra={"trained_steps": step + 1 if cfg.steps > start else start,
                                     "excluded_speakers": list(cfg.exclude_speakers), "seed": cfg.seed})
    sf.write(cfg.out_dir / f"sample_{held_out[0].id}.wav", sample, spec.sample_rate_hz)
    if losses:
        plot_step_losses(losses, cfg.out_dir / "loss.png", "log-mel L1", "hifigan vocoder: mel L1 per step")
    report.items_out = len(utts)
    report.extra.update(kind="hifigan", train_utterances=len(train), speakers=len(speakers), start_step=start,
                        steps_run=len(losses), final_train_mel_l1=round(float(np.mean(losses[-20:] or [0])), 4),
                        heldout_mel_l1=round(held_l1, 4), device=device,
                        train_time_s=round(time.perf_counter() - began, 1),
                        generator_params=sum(p.numel() for p in vocoder.generator.parameters()))
    return report.finish()


def _optimizer_step(opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


@torch.no_grad()
def _held_out_mel_l1(vocoder: HifiGanVocoder, held_out: list[Utterance], spec: MelSpec,
                     filterbank: torch.Tensor) -> tuple[float, np.ndarray]:
    """Mean log-mel L1 of whole held-out utterances synthesised from their true durations; the first one's audio."""
    scores, first = [], None
    for u in held_out:
        audio = vocoder.synthesize(u.units, u.durations, u.speaker)
        first = audio if first is None else first
        n = min(len(audio), len(u.wav))
        wavs = torch.from_numpy(np.stack([audio[:n], u.wav[:n]])).to(filterbank.device)
        mels = batch_log_mel(wavs, spec, filterbank)
        scores.append((mels[0] - mels[1]).abs().mean().item())
    return float(np.mean(scores)), first


def _checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (trainer_state.json is written last), oldest first."""
    return sorted(p.parent for p in (out_dir / "checkpoints").glob(f"step-*/{STATE_FILE}"))


def _save_checkpoint(cfg: VocoderConfig, step: int, vocoder, discs, opt_g, opt_d) -> None:
    path = cfg.out_dir / "checkpoints" / f"step-{step:07d}"
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"vocoder": vocoder.state_dict(), "discriminators": discs.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}, path / "state.pt")
    write_json(path / STATE_FILE, {"step": step, "seed": cfg.seed})
    for old in _checkpoints(cfg.out_dir)[: -cfg.hifigan.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)


def _resume(cfg: VocoderConfig, vocoder, discs, opt_g, opt_d, device: str) -> int:
    """Load the newest complete checkpoint of out_dir; the step to continue from (0 when there is none)."""
    found = _checkpoints(cfg.out_dir)
    if not found:
        return 0
    state = torch.load(found[-1] / "state.pt", map_location=device, weights_only=True)
    vocoder.load_state_dict(state["vocoder"])
    discs.load_state_dict(state["discriminators"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    step = json.loads((found[-1] / STATE_FILE).read_text())["step"]
    print(f"[vocoder train] resuming from {found[-1]} (step {step})")
    return step

