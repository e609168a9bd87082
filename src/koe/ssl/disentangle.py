"""`koe ssl disentangle`: speaker-disentangled fine-tuning of a HuBERT (Komatsu et al., SLT 2024).

    koe ssl disentangle data/manifest.jsonl init=runs/hubert/final out_dir=runs/sd-hubert steps=5000
    koe ssl disentangle data/manifest.jsonl init=facebook/hubert-base-ls960 out_dir=runs/sd-hubert-base \
        steps=20000 batch_size=72 max_crop_s=5.01
    koe units fit data/manifest.jsonl out_dir=tok/sd-l8 features=hf:runs/sd-hubert-base/final@8 k=500

BYOL-style frame distillation: the student hears a speaker-perturbed copy (koe.ssl.perturb), the teacher, an EMA
(ema_decay) of the student and its projector, hears the original; loss = MSE between the student's predictor
output and the teacher's projection, both L2-normalised, over all frames. The last `reinit_layers` layers are
re-initialised; during the warm-up only they and the heads learn, afterwards all transformer layers; the conv
feature encoder, feature projection, positional convolution and input layer norm stay frozen. Perturbed and original
copies are sample-aligned, so frame t of the student matches frame t of the teacher.

Writes out_dir/final (the student, plain HF HuBERT), config.yaml, metrics.jsonl, tb/, loss_curve.png and
ssl_disentangle_summary.json with a perturbation-invariance probe (per layer, init vs final): the mean cosine
between a held-out frame's features on the original and the perturbed audio ("same"), and between different frames
("other"); disentangling raises "same" while "other" must stay lower (else the features collapsed).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.corpus.manifest import Utterance
from koe.seed import rng_for
from koe.ssl.config import DisentangleConfig, PerturbConfig
from koe.ssl.data import StepBatches, step_loader
from koe.ssl.encoder import MLP, normalize_wave, reinit_module, save_encoder
from koe.ssl.loop import start_run
from koe.ssl.perturb import perturb_speaker
from koe.stage import KoeInputError, StageReport, progress
from koe.training.config import warmup_steps
from koe.training.logger import MetricsLogger
from koe.training.optim import build_adamw, optimizer_step
from koe.training.schedule import build_scheduler
from koe.units.encode import load_utterance

STAGE = "ssl disentangle"


class DisentangleBatch:
    """Crops -> normalised original (teacher) and speaker-perturbed (student) waves [B, S] (picklable)."""

    def __init__(self, perturb: PerturbConfig) -> None:
        self.perturb = perturb

    def __call__(self, crops: list[np.ndarray], utts: list[Utterance], offsets: list[int],
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        student = [perturb_speaker(c, self.perturb, rng) for c in crops]
        return {"teacher": torch.stack([normalize_wave(torch.from_numpy(c)) for c in crops]),
                "student": torch.stack([normalize_wave(torch.from_numpy(s)) for s in student])}


class Disentangler(nn.Module):
    """Student encoder + projector + predictor; teacher encoder + projector as EMA copies that get no gradient."""

    def __init__(self, student, proj_hidden: int, proj_dim: int) -> None:
        super().__init__()
        hidden = student.config.hidden_size
        self.student = student
        self.projector = MLP(hidden, proj_hidden, proj_dim)
        self.predictor = MLP(proj_dim, proj_hidden, proj_dim, normalize=True)
        self.teacher = copy.deepcopy(student).requires_grad_(False)
        self.teacher_projector = MLP(hidden, proj_hidden, proj_dim, normalize=True)
        self.teacher_projector.load_state_dict(self.projector.state_dict())
        self.teacher_projector.requires_grad_(False)

    def forward(self, student_wave: torch.Tensor, teacher_wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(MSE loss, mean cosine) between the student's prediction and the teacher's projection, per frame."""
        hidden = self.student(student_wave).last_hidden_state
        prediction = self.predictor(self.projector(hidden.flatten(0, 1)))
        with torch.no_grad():
            self.teacher.eval()  # no dropout in the teacher; its projector's BatchNorm uses batch statistics
            target = self.teacher_projector(self.teacher(teacher_wave).last_hidden_state.flatten(0, 1))
        return F.mse_loss(prediction, target), (prediction * target).sum(-1).mean().detach()

    @torch.no_grad()
    def update_teacher(self, decay: float) -> None:
        pairs = [*zip(self.student.parameters(), self.teacher.parameters(), strict=True),
                 *zip(self.projector.parameters(), self.teacher_projector.parameters(), strict=True)]
        for s, t in pairs:
            t.lerp_(s.detach(), 1 - decay)


def load_student(init: str, reinit_layers: int):
    """The HuBERT to fine-tune, its last `reinit_layers` layers fresh and its front end frozen."""
    from transformers import AutoConfig, HubertModel

    try:
        config = AutoConfig.from_pretrained(init)
    except OSError as e:
        raise KoeInputError(f"init={init}: cannot load the encoder ({e})") from None
    if config.model_type != "hubert":
        raise KoeInputError(f"init={init}: model_type {config.model_type!r}, koe ssl disentangle needs a HuBERT")
    if reinit_layers > config.num_hidden_layers:
        raise KoeInputError(f"reinit_layers={reinit_layers}: {init} has only {config.num_hidden_layers} layers")
    config.apply_spec_augment, config.layerdrop = False, 0.0  # no masking; every layer runs (DDP needs all grads)
    student = HubertModel.from_pretrained(init, config=config)
    for layer in student.encoder.layers[len(student.encoder.layers) - reinit_layers :]:
        reinit_module(layer, config.initializer_range)
    student.feature_extractor._freeze_parameters()
    for module in (student.feature_projection, student.encoder.pos_conv_embed, student.encoder.layer_norm):
        module.requires_grad_(False)
    if getattr(student, "masked_spec_embed", None) is not None:
        student.masked_spec_embed.requires_grad_(False)
    return student


def run_disentangle(cfg: DisentangleConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    accelerator, report, train, held_out = start_run(cfg, STAGE)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    out_dir, manifest_dir = Path(cfg.out_dir), Path(cfg.manifest).parent
    from transformers import HubertModel

    init_invariance = _invariance(HubertModel.from_pretrained(cfg.init), held_out, cfg, accelerator)
    student = load_student(cfg.init, cfg.reinit_layers)
    model = Disentangler(student, cfg.proj_hidden, cfg.proj_dim)
    num_layers = len(student.encoder.layers)
    new_layers = student.encoder.layers[num_layers - cfg.reinit_layers :]
    old_layers = student.encoder.layers[: num_layers - cfg.reinit_layers]
    warm = warmup_steps(cfg.optim, cfg.steps)
    optimizer, frozen = build_adamw(
        {"new": [*new_layers.parameters(), *model.projector.parameters(), *model.predictor.parameters()],
         "pretrained": list(old_layers.parameters())}, cfg.optim, frozen_steps={"pretrained": warm})
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.steps, frozen)
    trainable = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    model, optimizer = accelerator.prepare(model, optimizer)
    batches = StepBatches(train, manifest_dir, cfg.batch_size, cfg.max_crop_s, cfg.max_duration_s, cfg.seed, rank,
                          world, DisentangleBatch(cfg.perturb))
    log = MetricsLogger(out_dir, cfg.tensorboard, enabled=main,
                        panels={"loss (MSE of unit vectors)": ["loss"], "cosine(student, teacher)": ["cosine"],
                                "invariance (held-out)": ["eval_same", "eval_other"]})
    log.write(0, {"eval_same": init_invariance["same"][-1], "eval_other": init_invariance["other"][-1]})
    if main:
        print(f"[{STAGE}] {trainable / 1e6:.2f}M trainable params, {num_layers} layers ({cfg.reinit_layers} "
              f"re-initialised, the rest frozen for {warm} warm-up steps), {len(train)} train / {len(held_out)} "
              f"held-out utterances, {world} process(es)")

    # ---------------------------------------------------------------- loop
    t0 = time.perf_counter()
    interval, count, audio_s, last = torch.zeros(2, dtype=torch.float64), 0, 0.0, {}
    model.train()
    steps = zip(range(cfg.steps), step_loader(batches, 0, cfg.steps, cfg.num_workers), strict=True)
    for step, batch in progress(steps, desc=STAGE, total=cfg.steps, unit="step") if main else steps:
        loss, cosine = model(batch["student"].to(accelerator.device), batch["teacher"].to(accelerator.device))
        accelerator.backward(loss)
        grad_norm, lr = optimizer_step(accelerator, model, optimizer, scheduler, cfg.optim.grad_clip)
        accelerator.unwrap_model(model).update_teacher(cfg.ema_decay)
        interval += torch.stack([loss.detach().double().cpu(), cosine.double().cpu()])
        count += 1
        audio_s += batch["teacher"].numel() / TARGET_SAMPLE_RATE_HZ * world
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            mean = accelerator.reduce(interval.to(accelerator.device), reduction="mean").cpu() / count
            last = {"loss": round(float(mean[0]), 6), "cosine": round(float(mean[1]), 4)}
            log.write(done, {**last, "lr": lr, "audio_s": round(audio_s, 1),
                             **({"grad_norm": float(grad_norm)} if grad_norm is not None else {})})
            interval.zero_()
            count = 0
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            inv = _invariance(accelerator.unwrap_model(model).student, held_out, cfg, accelerator)
            log.write(done, {"eval_same": inv["same"][-1], "eval_other": inv["other"][-1]})
            model.train()

    # ---------------------------------------------------------------- cleanup
    train_time = time.perf_counter() - t0
    student = accelerator.unwrap_model(model).student
    final_invariance = _invariance(student, held_out, cfg, accelerator)
    log.write(cfg.steps, {"eval_same": final_invariance["same"][-1], "eval_other": final_invariance["other"][-1]})
    if main:
        init_config = HubertModel.config_class.from_pretrained(cfg.init)  # restore masking and layerdrop settings
        student.config.apply_spec_augment, student.config.layerdrop = init_config.apply_spec_augment, \
            init_config.layerdrop
        save_encoder(student, out_dir / "final")
    accelerator.wait_for_everyone()
    curve = log.close()
    report.items_out = len(train)
    report.extra.update({
        "steps": cfg.steps, "train_utterances": len(train), "held_out_utterances": len(held_out),
        "init": cfg.init, "num_layers": num_layers, "reinit_layers": cfg.reinit_layers, "warmup_steps": warm,
        "trainable_params": trainable, "train_time_s": round(train_time, 1), "audio_s_seen": round(audio_s, 1),
        "processes": world, "device": str(accelerator.device), **{f"final_{k}": v for k, v in last.items()},
        "invariance_same_init": init_invariance["same"], "invariance_same_final": final_invariance["same"],
        "invariance_other_init": init_invariance["other"], "invariance_other_final": final_invariance["other"],
        "encoder_dir": str(out_dir / "final"),
    })
    if curve is not None:
        report.extra["loss_curve"] = str(curve)
    accelerator.end_training()
    return report.finish(quiet=not main)


@torch.no_grad()
def _invariance(encoder, held_out: list[Utterance], cfg: DisentangleConfig, accelerator) -> dict[str, list[float]]:
    """Per hidden-states index: mean cosine of a frame's features on original vs perturbed audio ("same") and of
    different frames (a seeded shuffle, "other"), over the held-out utterances (one at a time, no padding)."""
    if not held_out:
        return {"same": [None], "other": [None]}
    encoder = encoder.to(accelerator.device).eval()
    same, other, frames = 0.0, 0.0, 0
    for u in held_out:
        wav = load_utterance(u, Path(cfg.manifest).parent, cfg.max_duration_s)
        rng = rng_for(cfg.seed, "probe", u.id)
        pair = torch.stack([normalize_wave(torch.from_numpy(w)) for w in (wav, perturb_speaker(wav, cfg.perturb, rng))])
        with accelerator.autocast():
            states = encoder(pair.to(accelerator.device), output_hidden_states=True).hidden_states
        h = F.normalize(torch.stack(states).float(), dim=-1)  # [layers + 1, 2, T, D]
        shuffled = torch.from_numpy(rng.permutation(h.shape[2])).to(h.device)
        same = same + (h[:, 0] * h[:, 1]).sum(-1).sum(-1)
        other = other + (h[:, 0] * h[:, 1, shuffled]).sum(-1).sum(-1)
        frames += h.shape[2]
    return {"same": [round(float(x), 4) for x in same / frames], "other": [round(float(x), 4) for x in other / frames]}
