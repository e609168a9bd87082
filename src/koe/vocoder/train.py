"""`koe vocoder train`: fit a unit vocoder on a manifest and its unit shards; `kind` picks the trainer.

    koe vocoder train manifest=runs/tiny/synth/manifest.jsonl units_dir=runs/tiny/units out_dir=runs/tiny/vocoder
    koe vocoder train kind=hifigan ...            # the neural vocoder, koe.vocoder.hifigan_train

The rest of this module is the baseline trainer (kind=baseline).

Writes the vocoder folder (vocoder.json, vocoder.safetensors), a loss curve, a resynthesised sample and the summary.
The held-out mel L1 in the summary is the honest quality number: Griffin-Lim adds phase artefacts on top.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import soundfile as sf
import torch

from koe.audio import load_audio
from koe.audio.mel import MelSpec, griffin_lim, log_mel
from koe.config import save_config
from koe.corpus.manifest import read_manifest
from koe.seed import seed_everything
from koe.stage import KoeInputError, StageReport, progress
from koe.training.device import make_accelerator
from koe.training.logger import plot_step_losses
from koe.training.optim import optimizer_step
from koe.vocoder.config import VocoderConfig
from koe.vocoder.model import UnitVocoder


@dataclasses.dataclass
class Pair:
    id: str
    units: torch.Tensor  # [mel_frames] unit ids at the mel frame rate
    mel: torch.Tensor  # [mel_frames, n_mels]


def _load_pairs(cfg: VocoderConfig, vocoder: UnitVocoder, report: StageReport) -> list[Pair]:
    from koe.units.shards import read_unit_shards

    manifest_dir = cfg.manifest.parent
    utterances = {u.id: u for u in read_manifest(cfg.manifest)}
    pairs = []
    for rec in progress(read_unit_shards(cfg.units_dir), desc="vocoder data"):
        if len(pairs) >= cfg.max_utterances:
            break
        utt = utterances.get(rec.id)
        if utt is not None and utt.speaker in cfg.exclude_speakers:
            continue
        report.items_in += 1
        if utt is None:
            report.fail(rec.id, f"missing: {cfg.manifest}: no utterance with this id")
            continue
        try:
            wav = load_audio(utt.resolve_audio(manifest_dir), utt.offset_s, utt.duration_s if utt.offset_s else None)
        except KoeInputError as e:
            report.fail(rec.id, str(e), utt.audio_path)
            continue
        frames = torch.from_numpy(np.repeat(rec.units, rec.durations).astype(np.int64))[None]
        units = vocoder.frames_to_mel_rate(frames)[0]
        mel = log_mel(torch.from_numpy(wav), vocoder.mel)
        n = min(len(units), len(mel))
        pairs.append(Pair(rec.id, units[:n], mel[:n]))
    return pairs


def _batch(pairs: list[Pair], rng: np.random.Generator, size: int, max_frames: int):
    chosen = [pairs[i] for i in rng.integers(0, len(pairs), size)]
    units, mels, mask = [], [], []
    for p in chosen:
        start = int(rng.integers(0, max(1, len(p.units) - max_frames + 1)))
        u, m = p.units[start:start + max_frames], p.mel[start:start + max_frames]
        pad = max_frames - len(u)
        units.append(torch.nn.functional.pad(u, (0, pad)))
        mels.append(torch.nn.functional.pad(m, (0, 0, 0, pad)))
        mask.append(torch.arange(max_frames) < len(u))
    return torch.stack(units), torch.stack(mels), torch.stack(mask)


def _mean_durations(cfg: VocoderConfig, num_units: int) -> list[float]:
    """Mean run length (unit frames) of each unit, so `koe generate` can give dedup units back a duration."""
    from koe.units.shards import read_unit_shards

    total, count = np.zeros(num_units), np.zeros(num_units)
    for rec in read_unit_shards(cfg.units_dir):
        np.add.at(total, rec.units, rec.durations)
        np.add.at(count, rec.units, 1)
    return np.where(count > 0, total / np.maximum(count, 1), 1.0).round(3).tolist()


def run_vocoder_train(cfg: VocoderConfig) -> StageReport:
    """Train the vocoder kind the config names (koe.vocoder.registry.TRAINERS)."""
    from koe.vocoder.registry import trainer_for

    return trainer_for(cfg.kind)(cfg)


def train_baseline(cfg: VocoderConfig) -> StageReport:
    from koe.units.shards import load_units_meta

    seed_everything(cfg.seed)
    accelerator = make_accelerator(cfg.device, "fp32")
    device = accelerator.device
    report = StageReport("vocoder train", cfg.out_dir)
    save_config(cfg, cfg.out_dir)
    meta = load_units_meta(cfg.units_dir)
    vocoder = UnitVocoder(meta.num_units, meta.frame_rate_hz, cfg.hidden_size, cfg.num_layers, cfg.kernel_size,
                          MelSpec())
    pairs = _load_pairs(cfg, vocoder, report)
    if len(pairs) < 2:
        report.fail("data", f"too few usable utterances ({len(pairs)}) in {cfg.units_dir}")
        return report.finish()
    held_out, train = pairs[: max(1, len(pairs) // 20)], pairs[max(1, len(pairs) // 20):]
    vocoder.train()
    optim = torch.optim.AdamW(vocoder.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    model, optim, sched = accelerator.prepare(vocoder, optim, sched)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    for _ in progress(range(cfg.steps), desc="vocoder train", unit="step"):
        units, mels, mask = (t.to(device) for t in _batch(train, rng, cfg.batch_size, cfg.max_frames))
        loss = ((model(units) - mels).abs().mean(-1) * mask).sum() / mask.sum()
        accelerator.backward(loss)
        optimizer_step(accelerator, model, optim, sched, grad_clip=0.0)
        losses.append(loss.item())
    vocoder.eval()
    with torch.no_grad():
        held_l1 = float(np.mean([(vocoder(p.units[None].to(device))[0].cpu() - p.mel).abs().mean() for p in held_out]))
        sample = griffin_lim(vocoder(held_out[0].units[None].to(device))[0].cpu(), vocoder.mel)
    vocoder.cpu().save(cfg.out_dir)
    _attach_durations(cfg, meta.num_units)
    sf.write(cfg.out_dir / f"sample_{held_out[0].id}.wav", sample.numpy(), vocoder.mel.sample_rate_hz)
    plot_step_losses(losses, cfg.out_dir / "loss.png", "log-mel L1", "vocoder training loss")
    report.items_out = len(pairs)
    report.extra.update(train_utterances=len(train), final_train_l1=round(float(np.mean(losses[-20:])), 4),
                        heldout_mel_l1=round(held_l1, 4), device=str(device))
    return report.finish()


def _attach_durations(cfg: VocoderConfig, num_units: int) -> None:
    import json

    path = cfg.out_dir / "vocoder.json"
    meta = json.loads(path.read_text())
    meta["mean_duration_frames"] = _mean_durations(cfg, num_units)
    path.write_text(json.dumps(meta, indent=2))

