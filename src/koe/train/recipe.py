"""`koe train`: continued pretraining of a Hugging Face causal LM on packed koe token shards.

    koe train src/koe/configs/train/tiny_speech.yaml data_dir=runs/data out_dir=runs/train
    accelerate launch --config_file src/koe/configs/accelerate/ddp.yaml -m koe train CONFIG.yaml
    koe train CONFIG.yaml resume_from=auto          # continue from the newest checkpoint in out_dir

Reads top to bottom: setup (data, model, optimiser, accelerate), the loop (one optimiser step per iteration over
`grad_accum_steps` micro-batches, logging, eval, checkpoints, budgets), then cleanup (last checkpoint, eval, the
final HF model in out_dir/final, loss curve). The maths shared with tests and benchmarks lives in library modules:
packing, loss, schedule, optim, metrics, checkpoint, logger. Writes out_dir/config.yaml, metrics.jsonl, tb/,
checkpoints/step-N/, final/, loss_curve.png and train_summary.json.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import AutoTokenizer

from koe.config import save_config
from koe.data.shards import load_data_meta, shard_paths
from koe.data.speech_tokens import copy_speech_vocab
from koe.data.vocab import SpeechVocab
from koe.model.init import apply_lora, embedding_weights, init_model, save_model
from koe.seed import seed_everything
from koe.stage import KoeInputError, StageReport, progress
from koe.train.config import TrainConfig
from koe.train.distributed import ddp_kwargs
from koe.train.loss import LossModel, evaluate, forward_backward, summarise
from koe.train.optim import TextRowFreeze, build_optimizer
from koe.train.packing import PackedRows, micro_batch_indices
from koe.training.checkpoint import (
    check_resume_step,
    load_checkpoint,
    prepare_out_dir,
    read_state,
    resolve_resume,
    save_checkpoint,
)
from koe.training.device import allow_precision, cpu_only, mixed_precision
from koe.training.logger import MetricsLogger
from koe.training.optim import optimizer_step
from koe.training.schedule import build_scheduler
from koe.training.throughput import FlopCounter, Throughput, segment_sq_sum


def run_train(cfg: TrainConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    out_dir = Path(cfg.out_dir)
    meta = load_data_meta(cfg.data_dir)
    tok_dir = Path(cfg.data_dir) / meta.tokenizer_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    vocab = _check_vocab(meta.vocab, tokenizer, tok_dir)
    allow_precision(mixed_precision(cfg.precision))  # `koe run`: an fp32 loop may have run in this process
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum_steps, cpu=cpu_only(),
                              mixed_precision=mixed_precision(cfg.precision), step_scheduler_with_optimizer=False,
                              kwargs_handlers=[ddp_kwargs(cfg.grad_reduce_dtype, torch.cuda.is_available())])
    main, world, rank = accelerator.is_main_process, accelerator.num_processes, accelerator.process_index
    if accelerator.device.type == "cuda" and cfg.tf32:
        torch.set_float32_matmul_precision("high")
    resume = resolve_resume(cfg.resume_from, out_dir)  # before anything is written into out_dir
    prepare_out_dir(out_dir, resume, cfg.overwrite, main)
    accelerator.wait_for_everyone()
    seed_everything(cfg.seed)
    report = StageReport("train", out_dir if main else None)
    if main:
        save_config(cfg, out_dir)

    rows = PackedRows(cfg.data_dir, cfg.train_split, cfg.max_seq_len, cfg.seed, vocab.pad_id)
    eval_rows = _eval_rows(cfg, vocab.pad_id)
    rows_per_step = cfg.micro_batch_size * cfg.grad_accum_steps * world
    tokens_per_step = rows_per_step * cfg.max_seq_len
    total_steps = _plan_steps(cfg, rows.rows_per_epoch, rows_per_step)
    if resume is not None:
        check_resume_step(read_state(resume)["step"], total_steps, resume)

    model, first_new = init_model(cfg.model, tokenizer, vocab, cfg.max_seq_len, seed=cfg.seed)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora.enabled:
        model = apply_lora(model, cfg.lora, first_new)
    freeze = TextRowFreeze(embedding_weights(model), first_new, cfg.optim.frozen_text_steps)
    optimizer, frozen_steps = build_optimizer(model, cfg.optim, fused=accelerator.device.type == "cuda")
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps, frozen_steps)
    flops = FlopCounter.from_model(model)
    num_params = sum(p.numel() for p in model.parameters())
    model = LossModel(model, fused=cfg.fused_loss)
    if _compile(cfg, accelerator):
        model = torch.compile(model)
    _configure_backend(accelerator, cfg)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()

    start_step, tokens_seen, time_before = 0, 0, 0.0
    if resume is not None:
        state = load_checkpoint(accelerator, resume)
        start_step, tokens_seen, time_before = state["step"], state["tokens_seen"], state["train_time_s"]
    log = MetricsLogger(out_dir, cfg.tensorboard, enabled=main, resume_step=start_step)
    if main:
        print(f"[train] {num_params / 1e6:.2f}M params, {world} process(es), {total_steps} steps x "
              f"{tokens_per_step} tokens, {rows.tokens_per_epoch} tokens/epoch"
              + (f", resumed from {resume}" if resume else ""))

    # ---------------------------------------------------------------- loop
    t0 = time.perf_counter()
    throughput = Throughput(cfg.peak_tflops, world)
    interval = torch.zeros(2, 3, dtype=torch.float64, device=accelerator.device)  # read on the host only to log
    stop_reason = "steps"
    last_train: dict[str, float] = {}
    steps = range(start_step, total_steps)
    for step in progress(steps, desc="train", unit="step") if main else steps:
        freeze.update(step)
        micro = [rows.batch(micro_batch_indices(step, k, rank, world, cfg.micro_batch_size, cfg.grad_accum_steps))
                 for k in range(cfg.grad_accum_steps)]
        sums = forward_backward(model, micro, accelerator)
        grad_norm, lr = optimizer_step(accelerator, model, optimizer, scheduler, cfg.optim.grad_clip)

        tokens_seen += tokens_per_step
        interval += sums
        throughput.add(sum(b["input_ids"].numel() for b in micro),
                       sum(flops.step_flops(b["input_ids"].numel(), segment_sq_sum(b["position_ids"])) for b in micro))
        done = step + 1
        if done % cfg.log_every == 0 or done == total_steps:
            last_train = summarise(interval)
            metrics = {**last_train, "lr": lr, "tokens_seen": tokens_seen,
                       **throughput.read(lambda t: accelerator.reduce(t.to(accelerator.device), reduction="sum")),
                       "frozen_text": int(freeze.active)}
            if grad_norm is not None:
                metrics["grad_norm"] = float(grad_norm)
            log.write(done, metrics)
            interval.zero_()
        if eval_rows is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < total_steps:
            log.write(done, _eval(model, eval_rows, cfg, accelerator))
        if cfg.save_every and done % cfg.save_every == 0 and done < total_steps:
            save_checkpoint(accelerator, out_dir, done, _state(done, tokens_seen, time_before + time.perf_counter()
                                                                - t0), cfg.keep_checkpoints)
        if cfg.max_time_s is not None and _out_of_time(accelerator, time_before + time.perf_counter() - t0, cfg):
            stop_reason = "time"
            break
    else:
        done = total_steps

    # ---------------------------------------------------------------- cleanup
    train_time = time_before + time.perf_counter() - t0
    if done > start_step:
        save_checkpoint(accelerator, out_dir, done, _state(done, tokens_seen, train_time), cfg.keep_checkpoints)
    final_eval = _eval(model, eval_rows, cfg, accelerator) if eval_rows is not None else {}
    if final_eval:
        log.write(done, final_eval)
    if cfg.save_final:
        _save_final(accelerator, model, tokenizer, out_dir / "final")
    if main:  # every model dir carries the unit tokenizer its ids were made with (koe.data.speech_tokens)
        copy_speech_vocab(cfg.data_dir, [out_dir / "final", *sorted((out_dir / "checkpoints").glob("step-*"))])
    curve = log.close()
    report.items_in, report.items_out = total_steps, done
    report.extra.update({"steps": done, "stop_reason": stop_reason, "tokens_seen": tokens_seen,
                         "train_time_s": round(train_time, 2), "num_params": num_params, "processes": world,
                         "backend": str(accelerator.distributed_type).rsplit(".", 1)[-1],
                         **{f"final_{k}": v for k, v in last_train.items()}, **final_eval})
    if curve is not None:
        report.extra["loss_curve"] = str(curve)
    accelerator.end_training()
    return report.finish(quiet=not main)


def _check_vocab(vocab: SpeechVocab, tokenizer, tok_dir: Path) -> SpeechVocab:
    """The shards' meta.json and the tokenizer directory must describe the same id layout."""
    try:
        found = SpeechVocab.from_tokenizer(tokenizer)
    except ValueError as e:
        raise KoeInputError(f"vocab-mismatch: {tok_dir}: {e}") from None
    if found != vocab:
        raise KoeInputError(f"vocab-mismatch: {tok_dir} gives {found}, but meta.json says {vocab}")
    return vocab


def _configure_backend(accelerator, cfg: TrainConfig) -> None:
    """Fill DeepSpeed's "auto" batch and clipping values from koe's config; refuse what FSDP cannot do."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = cfg.micro_batch_size
        ds["gradient_clipping"] = cfg.optim.grad_clip
    if accelerator.distributed_type == DistributedType.FSDP and cfg.optim.frozen_text_steps:
        raise KoeInputError("unsupported: optim.frozen_text_steps under FSDP (the row-gradient hook needs whole "
                            "embedding matrices); use DDP or DeepSpeed ZeRO-2 for the warm-up")


def _compile(cfg: TrainConfig, accelerator) -> bool:
    """compile=null compiles on CUDA (where it pays: docs/performance.md) and not on CPU (slow to compile)."""
    return cfg.compile if cfg.compile is not None else accelerator.device.type == "cuda"


def _plan_steps(cfg: TrainConfig, rows_per_epoch: int, rows_per_step: int) -> int:
    """max_steps, else the token budget, else `epochs` passes over the packed rows (at least one step)."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    if cfg.max_tokens is not None:
        return max(1, math.ceil(cfg.max_tokens / (rows_per_step * cfg.max_seq_len)))
    return max(1, math.ceil(cfg.epochs * rows_per_epoch / rows_per_step))


def _eval_rows(cfg: TrainConfig, pad_id: int) -> PackedRows | None:
    if cfg.valid_split is None:
        return None
    try:
        shard_paths(cfg.data_dir, cfg.valid_split)
    except KoeInputError:
        return None
    return PackedRows(cfg.data_dir, cfg.valid_split, cfg.max_seq_len, cfg.seed, pad_id)


def _eval(model, eval_rows: PackedRows, cfg: TrainConfig, accelerator) -> dict[str, float]:
    """Loss on the first eval_batches x micro_batch_size rows per process of the valid split (the same every time)."""
    world = accelerator.num_processes
    n = max(1, min(cfg.eval_batches, eval_rows.rows_per_epoch // (cfg.micro_batch_size * world)))
    batches = [eval_rows.batch(micro_batch_indices(0, k, accelerator.process_index, world, cfg.micro_batch_size, n))
               for k in range(n)]
    return summarise(evaluate(model, batches, accelerator), prefix="eval_")


def _state(step: int, tokens_seen: int, train_time_s: float) -> dict:
    return {"step": step, "tokens_seen": tokens_seen, "train_time_s": train_time_s}


def _out_of_time(accelerator, elapsed_s: float, cfg: TrainConfig) -> bool:
    """Every process must stop at the same step: the main process's clock decides."""
    flag = torch.tensor([1.0 if accelerator.is_main_process and elapsed_s >= cfg.max_time_s else 0.0],
                        device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _save_final(accelerator, model, tokenizer, path: Path) -> None:
    """A plain HF directory of the LossModel's inner model; the state dict is gathered first so FSDP and ZeRO-3
    shards are complete, and keys lose torch.compile's `_orig_mod.` and the LossModel's `model.` prefixes (with them,
    from_pretrained would silently load random weights)."""
    unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False).model
    state_dict = None
    if not hasattr(unwrapped, "merge_and_unload"):  # a LoRA model is merged from its own weights instead
        state_dict = {k.removeprefix("_orig_mod.").removeprefix("model."): v
                      for k, v in accelerator.get_state_dict(model).items()}
    if accelerator.is_main_process:
        save_model(unwrapped, tokenizer, path, state_dict=state_dict)
    accelerator.wait_for_everyone()
