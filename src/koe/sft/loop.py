"""`koe sft`: supervised fine-tuning on dialogue examples, loss on response positions only, one strategy.

    koe sft model=runs/tiny/interleaved/final examples=runs/dialogue/data strategy.name=interleaved \
        out_dir=runs/dialogue/sft/interleaved text_ratio=0.25 max_steps=200
    koe sft ... lora.enabled=true lora.r=8            # LoRA (peft) instead of full fine-tuning
    koe sft ... resume_from=auto                      # continue from the newest checkpoint

Reads top to bottom: setup (rows, model, the strategy's extra modules, optimiser, accelerate), the loop (one
optimiser step per micro-batch of cross-modal + text-only rows at `text_ratio`), cleanup (checkpoint, final/ =
plain HF dir + koe_strategy.json + strategy_modules.safetensors). koe.training's shared pieces do the rest: AdamW,
the lr schedule, checkpoints (accelerate state + manifest), the metrics logger and loss curve; koe.model does
LoRA and model saving, and final/ carries the base model's unit tokenizer (speech_vocab.json + unit_tokenizer/).
Writes out_dir/config.yaml, metrics.jsonl, checkpoints/, final/, sft_summary.json and sft_failures.jsonl
(every example that could not be used, with its reason; exit status 1 when there is one).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from koe.config import save_config
from koe.data.speech_tokens import copy_speech_vocab
from koe.data.vocab import SpeechVocab
from koe.model.init import apply_lora
from koe.seed import seed_everything
from koe.sft.config import SftConfig
from koe.sft.rows import build_rows
from koe.stage import KoeInputError, StageReport, progress
from koe.strategies import get_strategy
from koe.strategies.base import Bundle, Sequence, lm_loss
from koe.strategies.loading import save_bundle
from koe.training.checkpoint import load_checkpoint, resolve_resume, save_checkpoint
from koe.training.logger import MetricsLogger
from koe.training.optim import build_adamw, optimizer_step
from koe.training.schedule import build_scheduler


class SftModule(torch.nn.Module):
    """The LM and the strategy's extra modules as one module (what accelerate prepares); forward = the step loss."""

    def __init__(self, lm: torch.nn.Module, extras: torch.nn.ModuleDict, strategy, tokenizer, vocab: SpeechVocab):
        super().__init__()
        self.lm, self.extras = lm, extras
        self.strategy, self.tokenizer, self.vocab = strategy, tokenizer, vocab

    def get_input_embeddings(self):
        return self.lm.get_input_embeddings()

    def get_output_embeddings(self):
        return self.lm.get_output_embeddings()

    def forward(self, cross_modal: list[Sequence], text: list[Sequence]) -> tuple[torch.Tensor, int]:
        device = next(self.lm.parameters()).device
        bundle = Bundle(self.lm, self.tokenizer, self.vocab, self.extras, device)
        total, count = torch.zeros((), device=device), 0
        if cross_modal:
            loss, n = self.strategy.loss(bundle, cross_modal)
            total, count = total + loss, count + n
        if text:
            loss, n = lm_loss(self.lm, text, device)
            total, count = total + loss, count + n
        return total, count


def run_sft(cfg: SftConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(cfg.out_dir)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    seed_everything(cfg.seed)
    report = StageReport("sft", out_dir if main else None)
    if main:
        save_config(cfg, out_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        lm = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
        vocab = SpeechVocab.from_tokenizer(tokenizer)
    except (OSError, ValueError) as e:
        raise KoeInputError(f"bad-model: {cfg.model}: {e}") from None
    strategy = get_strategy(cfg.strategy)
    rows = build_rows(cfg.examples_file, tokenizer, vocab, strategy, cfg.max_seq_len, report)
    per_step = cfg.micro_batch_size - (round(cfg.text_ratio * cfg.micro_batch_size) if rows.text else 0)
    pool = len(rows.cross_modal) if rows.cross_modal else len(rows.text)
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * pool / max(1, per_step if rows.cross_modal
                                                                            else cfg.micro_batch_size)))
    extras = strategy.extra_modules(lm, vocab)
    if cfg.lora.enabled:
        lm = apply_lora(lm, cfg.lora, vocab.unit_offset)
    module = SftModule(lm, extras, strategy, tokenizer, vocab)
    optimizer, frozen = build_adamw({"all": module.parameters()}, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps, frozen)
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    module.train()
    start_step, time_before = 0, 0.0
    resume = resolve_resume(cfg.resume_from, out_dir)
    if resume is not None:
        state = load_checkpoint(accelerator, resume)
        start_step, time_before = state["step"], state["train_time_s"]
    log = MetricsLogger(out_dir, cfg.tensorboard, enabled=main, resume_step=start_step)
    if main:
        print(f"[sft] {strategy.name}: {len(rows.cross_modal)} cross-modal + {len(rows.text)} text rows, "
              f"{total_steps} steps" + (f", resumed from {resume}" if resume else ""))

    # ---------------------------------------------------------------- loop
    t0, interval, done = time.perf_counter(), [0.0, 0], start_step
    for step in progress(range(start_step, total_steps), desc=f"sft {strategy.name}", unit="step"):
        cross, text = rows.step(step, cfg.micro_batch_size, cfg.text_ratio, cfg.seed)
        loss_sum, count = module(cross, text)
        accelerator.backward(loss_sum / max(count, 1))
        _, lr = optimizer_step(accelerator, module, optimizer, scheduler, cfg.optim.grad_clip)
        interval[0] += float(loss_sum.detach())
        interval[1] += count
        done = step + 1
        if done % cfg.log_every == 0 or done == total_steps:
            log.write(done, {"loss": interval[0] / max(interval[1], 1), "targets": interval[1], "lr": lr})
            interval = [0.0, 0]
        if cfg.save_every and done % cfg.save_every == 0 and done < total_steps:
            save_checkpoint(accelerator, out_dir, done, _state(done, time_before + time.perf_counter() - t0),
                            cfg.keep_checkpoints)

    # ---------------------------------------------------------------- cleanup
    train_time = time_before + time.perf_counter() - t0
    if done > start_step:
        save_checkpoint(accelerator, out_dir, done, _state(done, train_time), cfg.keep_checkpoints)
    unwrapped = accelerator.unwrap_model(module)
    if main:
        final = save_bundle(unwrapped.lm, tokenizer, unwrapped.extras, cfg.strategy, out_dir / "final")
        copy_speech_vocab(cfg.model, [final])
    curve = log.close()
    report.extra.update({"strategy": strategy.name, "steps": done, "train_time_s": round(train_time, 2),
                         "cross_modal_rows": len(rows.cross_modal), "text_rows": len(rows.text),
                         "final_model": str(out_dir / "final")})
    if curve is not None:
        report.extra["loss_curve"] = str(curve)
    accelerator.end_training()
    return report.finish(quiet=not main)


def _state(step: int, train_time_s: float) -> dict:
    return {"step": step, "train_time_s": train_time_s}
