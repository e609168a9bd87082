"""`koe units train-phonetic`: fit the frame phone classifier behind `features=phonetic:<dir>` (koe.units.phonetic).

    koe units train-phonetic runs/tiny/synth/manifest.jsonl out_dir=runs/tiny/phonetic epochs=2

Every utterance of the split with phone times is featurised once (log-mel, utterance-normalised); a seeded
`heldout_fraction` of utterances is kept out to report frame accuracy. Training draws random windows of
`window_frames` frames; frames between phones are the silence class. Utterances without phones, or whose audio
fails to load, are listed as failures (the stage goes on with the rest). Writes the classifier directory,
heldout_ids.txt, metrics.jsonl (loss per logged step, held-out accuracy per epoch), loss.png, config.yaml and the
summary.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from koe.audio import load_audio
from koe.config import save_config
from koe.corpus.manifest import Utterance, read_manifest
from koe.seed import rng_for, seed_everything
from koe.stage import KoeInputError, StageReport, atomic_write_text, progress
from koe.training.device import make_accelerator
from koe.training.logger import MetricsLogger, plot_step_losses
from koe.training.optim import optimizer_step
from koe.units.config import PhoneticConfig
from koe.units.features import MEL_PARAMS, SpectralExtractor
from koe.units.phonetic import SILENCE, PhoneClassifier, normalize_utterance, phone_class, save_classifier

STAGE = "units train-phonetic"
HELDOUT_FILE = "heldout_ids.txt"  # the utterances kept out of training, one id a line (for later evaluations)


def run_train_phonetic(cfg: PhoneticConfig) -> StageReport:
    report = StageReport(STAGE, cfg.out_dir)
    seed_everything(cfg.seed)
    save_config(cfg, cfg.out_dir)
    accelerator = make_accelerator(cfg.device, "fp32")
    utts = [u for u in read_manifest(cfg.manifest) if cfg.split is None or u.split == cfg.split]
    if not utts:
        raise KoeInputError(f"{cfg.manifest}: no utterances in split {cfg.split!r} (split=null uses all)")
    feats, utts = _featurise(cfg, utts, report)
    if len(utts) < 2:
        raise KoeInputError(f"{cfg.manifest}: {len(utts)} utterance(s) with phones and audio; need at least 2")
    phones = [SILENCE, *sorted({phone_class(p) for u in utts for p, _, _ in u.phones} - {SILENCE})]
    labels = [_frame_labels(u, len(f), phones) for u, f in zip(utts, feats, strict=True)]
    order = rng_for(cfg.seed, "phonetic-heldout").permutation(len(utts))
    n_held = max(1, round(cfg.heldout_fraction * len(utts)))
    held, train = order[:n_held], order[n_held:]
    atomic_write_text(cfg.out_dir / HELDOUT_FILE, "".join(f"{utts[i].id}\n" for i in held))
    model = PhoneClassifier(feats[0].shape[1], cfg.hidden_size, len(phones))
    losses, accuracies = _train(cfg, model, feats, labels, train, held, accelerator)
    save_classifier(cfg.out_dir, model.cpu(), phones, cfg.hidden_size,
                    {"heldout_frame_accuracy": accuracies[-1], "train_utterances": len(train),
                     "manifest": str(cfg.manifest), "seed": cfg.seed})
    plot_step_losses(losses, cfg.out_dir / "loss.png", "cross-entropy", "phone classifier training loss")
    report.items_out = len(utts)
    report.extra.update(num_classes=len(phones), train_utterances=len(train), heldout_utterances=len(held),
                        heldout_frame_accuracy=accuracies, final_train_loss=round(float(np.mean(losses[-20:])), 4),
                        device=str(accelerator.device))
    return report.finish()


def _featurise(cfg: PhoneticConfig, utts: list[Utterance], report: StageReport):
    """Log-mel of every utterance with phones; the rest are listed as failures."""
    extractor = SpectralExtractor("mel", torch.device("cpu"), batch_s=160.0)
    log_floor = math.log(MEL_PARAMS["log_floor"])
    feats, kept = [], []
    base = cfg.manifest.parent
    for utt in progress(utts, desc="phonetic features"):
        report.items_in += 1
        if not utt.phones:
            report.fail(utt.id, f"no phones: {cfg.manifest}: align it first (`koe align`)", utt.audio_path)
            continue
        try:
            wav = load_audio(utt.resolve_audio(base), utt.offset_s, utt.duration_s if utt.offset_s else None,
                             max_duration_s=cfg.max_duration_s)
        except KoeInputError as e:
            report.fail(utt.id, str(e), utt.audio_path)
            continue
        feats.append(normalize_utterance(extractor.extract([wav])[0], log_floor))
        kept.append(utt)
    return feats, kept


def _frame_labels(utt: Utterance, num_frames: int, phones: list[str]) -> torch.Tensor:
    """Class index per 10 ms frame (frame i is centred on i * 10 ms); frames outside every phone are silence."""
    index = {p: i for i, p in enumerate(phones)}
    y = torch.zeros(num_frames, dtype=torch.long)
    for label, start, end in utt.phones:
        y[round(start * 100):round(end * 100)] = index[phone_class(label)]
    return y


def _train(cfg: PhoneticConfig, model: PhoneClassifier, feats: list[torch.Tensor], labels: list[torch.Tensor],
           train: np.ndarray, held: np.ndarray, accelerator) -> tuple[list[float], list[float]]:
    """AdamW with torch's one-cycle schedule (5% warm-up), through accelerate and koe.training's optimiser step."""
    rng = rng_for(cfg.seed, "phonetic-batches")
    frames = sum(len(feats[i]) for i in train)
    steps_per_epoch = max(1, frames // (cfg.batch_size * cfg.window_frames))
    total = int(cfg.epochs * steps_per_epoch)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, cfg.lr, total_steps=total, pct_start=0.05)
    model, optim, sched = accelerator.prepare(model, optim, sched)
    device = accelerator.device
    losses, accuracies = [], []
    log = MetricsLogger(cfg.out_dir, tensorboard=False)
    for step in progress(range(total), desc="train phone classifier", unit="step"):
        x, y = _batch(feats, labels, train, rng, cfg.batch_size, cfg.window_frames)
        logits = model(x.to(device))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), ignore_index=-100)
        accelerator.backward(loss)
        optimizer_step(accelerator, model, optim, sched, grad_clip=0.0)
        losses.append(loss.item())
        if (step + 1) % steps_per_epoch == 0 or step + 1 == total:
            accuracies.append(_accuracy(model, feats, labels, held, device))
            log.write(step + 1, {"loss": losses[-1], "heldout_frame_accuracy": accuracies[-1]})
    return losses, accuracies


def _batch(feats, labels, pool: np.ndarray, rng: np.random.Generator, size: int, window: int):
    """Random windows of `window` frames; shorter utterances are padded with ignored labels."""
    xs, ys = [], []
    for i in rng.choice(pool, size):
        f, y = feats[i], labels[i]
        start = int(rng.integers(0, max(1, len(f) - window + 1)))
        f, y = f[start:start + window], y[start:start + window]
        pad = window - len(f)
        xs.append(torch.nn.functional.pad(f, (0, 0, 0, pad)))
        ys.append(torch.nn.functional.pad(y, (0, pad), value=-100))
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def _accuracy(model: PhoneClassifier, feats, labels, held: np.ndarray, device: torch.device) -> float:
    model.eval()
    correct = total = 0
    for i in held:
        pred = model(feats[i][None].to(device))[0].argmax(-1).cpu()
        correct += int((pred == labels[i]).sum())
        total += len(pred)
    model.train()
    return round(correct / total, 4)

