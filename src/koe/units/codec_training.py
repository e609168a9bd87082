"""`koe units train-codec`: train koe's own mel codec end to end (koe.units.codec_model), resumably.

    koe units train-codec runs/tiny/synth/manifest.jsonl out_dir=runs/codec steps=1500 device=cpu
    python -c "from koe.units.codec import CodecTokenizer; print(CodecTokenizer.load('runs/codec').bitrate_bps)"

Reads top to bottom: setup (log-mel of every utterance once, per-bin normalisation, model, k-means initialisation of
every RVQ level from the untrained encoder's outputs, the shared AdamW/schedule/accelerator of koe.training, resume),
the loop (random crops as a pure function of (seed, step); loss = log-mel L1 + commitment; on `quantizer_dropout` of
the steps only the first n levels, n random), checkpoints (koe.training.checkpoint), then the codec folder, a
held-out evaluation (mel L1 of whole utterances with 1..L levels, codebook usage / perplexity per level) and a
sample WAV pair (Griffin-Lim of the original mel beside the codec's).
"""

from __future__ import annotations

import time

import numpy as np
import soundfile as sf
import torch

from koe.audio import load_audio
from koe.audio.mel import MelSpec, griffin_lim, log_mel
from koe.config import save_config
from koe.corpus.manifest import read_manifest
from koe.seed import seed_everything
from koe.stage import KoeInputError, StageReport, progress, write_json
from koe.training.checkpoint import (
    check_resume_step,
    load_checkpoint,
    prepare_out_dir,
    resolve_resume,
    save_checkpoint,
)
from koe.training.device import make_accelerator
from koe.training.logger import MetricsLogger
from koe.training.optim import build_adamw, optimizer_step
from koe.training.schedule import build_scheduler
from koe.units.codec_config import CodecTrainConfig
from koe.units.codec_model import CodecShape, KoeCodec
from koe.units.rvq import codebook_stats

STAGE = "units train-codec"


def load_mels(cfg: CodecTrainConfig, spec: MelSpec, report: StageReport) -> tuple[list[str], list[np.ndarray]]:
    """(ids, log-mel [T, n_mels] per utterance) of the manifest minus excluded speakers; bad audio is a failure."""
    ids, mels = [], []
    for utt in progress(read_manifest(cfg.manifest), desc="codec data", unit="utt"):
        if utt.speaker in cfg.exclude_speakers or len(ids) >= cfg.max_utterances:
            continue
        report.items_in += 1
        try:
            wav = load_audio(utt.resolve_audio(cfg.manifest.parent), utt.offset_s,
                             utt.duration_s if utt.offset_s else None)
        except KoeInputError as e:
            report.fail(utt.id, str(e), utt.audio_path)
            continue
        ids.append(utt.id)
        mels.append(log_mel(torch.from_numpy(wav), spec).numpy())
    return ids, mels


def sample_crops(mels: list[np.ndarray], seed: int, step: int, batch_size: int, frames: int) -> torch.Tensor:
    """[batch, frames, n_mels] random crops (short utterances edge-padded); a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step])
    out = []
    for i in rng.integers(0, len(mels), batch_size):
        m = mels[i]
        start = int(rng.integers(0, max(1, len(m) - frames + 1)))
        crop = m[start:start + frames]
        out.append(np.pad(crop, ((0, frames - len(crop)), (0, 0)), mode="edge"))
    return torch.from_numpy(np.stack(out))


def run_train_codec(cfg: CodecTrainConfig) -> StageReport:
    # --- setup -------------------------------------------------------------------------------------------------
    seed_everything(cfg.seed)
    report = StageReport(STAGE, cfg.out_dir)
    resume = resolve_resume(cfg.resume_from, cfg.out_dir)
    prepare_out_dir(cfg.out_dir, resume, cfg.overwrite, main=True)
    save_config(cfg, cfg.out_dir)
    spec = MelSpec()
    ids, mels = load_mels(cfg, spec, report)
    if len(mels) < 2:
        raise KoeInputError(f"{cfg.manifest}: {len(mels)} usable utterance(s); the codec needs at least 2")
    n_held = max(1, min(16, len(mels) // 20))
    held, train = mels[:n_held], mels[n_held:]
    accelerator = make_accelerator(cfg.device, "fp32")
    device = accelerator.device
    shape = CodecShape(cfg.levels, cfg.codebook_size, cfg.latent_dim, cfg.hidden_size, cfg.num_blocks, cfg.stride,
                       cfg.ema_decay, cfg.dead_threshold)
    model = KoeCodec(shape, spec)
    frames = np.concatenate(train)
    model.mel_mean.copy_(torch.from_numpy(frames.mean(0)))
    model.mel_std.copy_(torch.from_numpy(frames.std(0) + 1e-3))
    model.to(device)
    if resume is None:
        _init_codebooks(cfg, model, train, device)
    optimizer, frozen = build_adamw({"codec": model.parameters()}, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.steps, frozen)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    start = 0
    if resume is not None:
        start = int(load_checkpoint(accelerator, resume)["step"])
        check_resume_step(start, cfg.steps, resume)
    log = MetricsLogger(cfg.out_dir, tensorboard=False, resume_step=start,
                        panels={"loss": ["mel_l1", "commitment"], "codebook restarts": ["restarts"]})
    began, step = time.perf_counter(), start

    # --- loop --------------------------------------------------------------------------------------------------
    model.train()
    for step in progress(range(start, cfg.steps), desc="codec train", total=cfg.steps - start, unit="step"):
        mel = sample_crops(train, cfg.seed, step, cfg.batch_size, cfg.segment_frames).to(device)
        rng = np.random.default_rng([cfg.seed, step, 1])
        levels = int(rng.integers(1, cfg.levels + 1)) if rng.random() < cfg.quantizer_dropout else cfg.levels
        recon, _, commit = model(mel, levels)
        mel_l1 = (recon - mel).abs().mean()
        loss = mel_l1 + cfg.commitment_weight * commit
        accelerator.backward(loss)
        grad_norm, lr = optimizer_step(accelerator, model, optimizer, scheduler, cfg.optim.grad_clip)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            log.write(step + 1, {"loss": round(loss.item(), 4), "mel_l1": round(mel_l1.item(), 4),
                                 "commitment": round(commit.item(), 4), "levels": levels, "lr": lr,
                                 "grad_norm": None if grad_norm is None else round(float(grad_norm), 3),
                                 "restarts": int(model.quantizer.restarts.sum())})
        out_of_time = cfg.time_budget_s > 0 and time.perf_counter() - began > cfg.time_budget_s
        if (step + 1) % cfg.save_every == 0 or out_of_time:
            save_checkpoint(accelerator, cfg.out_dir, step + 1, {"step": step + 1, "seed": cfg.seed}, keep=2)
        if out_of_time:
            report.extra["stopped_early_at_step"] = step + 1
            break
    trained = step + 1 if cfg.steps > start else start
    log.close()

    # --- codec folder, held-out evaluation, summary -----------------------------------------------------------
    codec = accelerator.unwrap_model(model).eval().cpu()
    evaluation = evaluate_codec(codec, held)
    codec.save_pretrained(cfg.out_dir, extra={"trained_steps": trained, "manifest": str(cfg.manifest),
                                              "seed": cfg.seed, "heldout": evaluation})
    _write_sample(codec, held[0], ids[0], cfg)
    write_json(cfg.out_dir / "codec_eval.json", evaluation)
    report.items_out = len(mels)
    report.extra.update(train_utterances=len(train), heldout_utterances=len(held), steps_run=trained - start,
                        bitrate_bps=float(codec.config.frame_rate * cfg.levels * np.log2(cfg.codebook_size)),
                        heldout_mel_l1=evaluation["mel_l1_by_levels"][-1],
                        usage_per_level=[round(s["usage"], 3) for s in evaluation["levels"]],
                        restarts_per_level=codec.quantizer.restarts.tolist(), device=str(device),
                        train_time_s=round(time.perf_counter() - began, 1))
    return report.finish()


@torch.no_grad()
def _init_codebooks(cfg: CodecTrainConfig, model: KoeCodec, train: list[np.ndarray], device) -> None:
    """k-means RVQ (koe.units.rvq) of `kmeans_frames` outputs of the untrained encoder, so no code starts dead."""
    feats, step = [], 0
    while sum(len(f) for f in feats) < cfg.kmeans_frames:
        mel = sample_crops(train, cfg.seed + 7919, step, cfg.batch_size, cfg.segment_frames).to(device)
        feats.append(model.latents(mel).reshape(-1, cfg.latent_dim).cpu().numpy())
        step += 1
    model.quantizer.init_kmeans(np.concatenate(feats)[: cfg.kmeans_frames], seed=cfg.seed)


@torch.no_grad()
def evaluate_codec(codec: KoeCodec, mels: list[np.ndarray]) -> dict:
    """Whole-utterance log-mel L1 decoding 1..L levels, and per-level usage / perplexity / bits per second."""
    levels, stride = codec.shape.num_quantizers, codec.shape.stride
    l1 = np.zeros(levels)
    all_codes = []
    for m in mels:
        pad = (-len(m)) % stride
        mel = torch.from_numpy(np.pad(m, ((0, pad), (0, 0)), mode="edge"))[None]
        _, codes, _ = codec.quantizer(codec.latents(mel))
        all_codes.append(codes[:, 0].numpy())
        for n in range(1, levels + 1):
            recon = codec.reconstruct(codec.quantizer.decode(codes[:n]))[0, : len(m)]
            l1[n - 1] += (recon - mel[0, : len(m)]).abs().mean().item() / len(mels)
    stats = codebook_stats(np.concatenate(all_codes, 1), codec.shape.codebook_size, codec.config.frame_rate)
    return {"utterances": len(mels), "mel_l1_by_levels": [round(x, 4) for x in l1], "levels": stats}


def _write_sample(codec: KoeCodec, mel: np.ndarray, utt_id: str, cfg: CodecTrainConfig) -> None:
    """sample_<id>_codec.wav (decoded codes) and sample_<id>_mel.wav (Griffin-Lim of the true mel: the ceiling)."""
    spec = codec.mel
    pad = (-len(mel)) % codec.shape.stride
    m = torch.from_numpy(np.pad(mel, ((0, pad), (0, 0)), mode="edge"))[None]
    with torch.no_grad():
        _, codes, _ = codec.quantizer(codec.latents(m))
        audio = codec.decode_mel(codes.permute(1, 0, 2))[0, 0].numpy()
    sf.write(cfg.out_dir / f"sample_{utt_id}_codec.wav", audio, spec.sample_rate_hz)
    sf.write(cfg.out_dir / f"sample_{utt_id}_mel.wav", griffin_lim(torch.from_numpy(mel), spec).numpy(),
             spec.sample_rate_hz)
