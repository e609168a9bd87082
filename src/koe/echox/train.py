"""`koe echox t2c` (stage II) and `koe echox echo` (stage III).

    koe echox t2c qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final out_dir=runs/echox/t2c unit_vocab=300
    koe echox echo qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final t2c=runs/echox/t2c/final \
        out_dir=runs/echox/echo

Stage II trains the T2C on TTS pairs (answer text -> answer units, in the unit language) from the text embeddings.
Stage III (echo training): the S2T model answers every training question itself (x'), the stage-II T2C turns x' into
pseudo units Y' (both once, before training: docs/echox.md), then S2T, the echo decoder (a copy of the T2C) and the
denoising adapter train together on L = schedule(L_S2T, L_unit + w * L_den) (koe.echox.losses). Outputs:
out_dir/final/{s2t,decoder,denoise.safetensors}, metrics.jsonl, config.yaml, summary.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import torch
from safetensors.torch import save_file

from koe.config import save_config
from koe.stage import StageReport, progress


@dataclasses.dataclass
class T2CConfig:
    """Stage II: train the T2C on (answer text, answer units) pairs."""

    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records"})
    s2t: Path = dataclasses.field(default=Path("runs/echox/s2t_sft/final"), metadata={"help": "S2T dir (text side)"})
    out_dir: Path = dataclasses.field(default=Path("runs/echox/t2c"), metadata={"help": "output folder"})
    num_units: int = dataclasses.field(default=0, metadata={"help": "unit inventory size (0 = max unit + 1)"})
    unit_vocab: int = dataclasses.field(default=300, metadata={"help": "unit-language size (<= num_units: off)"})
    hidden_size: int = dataclasses.field(default=128, metadata={"help": "T2C width"})
    num_layers: int = dataclasses.field(default=2, metadata={"help": "T2C layers"})
    steps: int = dataclasses.field(default=300, metadata={"help": "optimiser steps"})
    batch_size: int = dataclasses.field(default=16, metadata={"help": "pairs per step"})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "AdamW learning rate"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed"})
    torch_threads: int = dataclasses.field(default=1, metadata={
        "help": "torch CPU threads (1: these small models ran 300x faster than with 2 on a loaded 2-core machine)"})


@dataclasses.dataclass
class EchoConfig:
    """Stage III: echo training of S2T + echo decoder (+ denoising adapter)."""

    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records"})
    s2t: Path = dataclasses.field(default=Path("runs/echox/s2t_sft/final"), metadata={"help": "stage-I S2T dir"})
    t2c: Path = dataclasses.field(default=Path("runs/echox/t2c/final"), metadata={"help": "stage-II T2C dir"})
    out_dir: Path = dataclasses.field(default=Path("runs/echox/echo"), metadata={"help": "output folder"})
    denoise: bool = dataclasses.field(default=True, metadata={"help": "use the denoising adapter and L_den"})
    lora_rank: int = dataclasses.field(default=8, metadata={"help": "LoRA rank on the S2T LLM (0 = frozen LLM)"})
    steps: int = dataclasses.field(default=200, metadata={"help": "optimiser steps"})
    batch_size: int = dataclasses.field(default=8, metadata={"help": "questions per step"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "AdamW learning rate"})
    max_units: int = dataclasses.field(default=200, metadata={"help": "longest pseudo-label sequence decoded"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed"})
    torch_threads: int = dataclasses.field(default=1, metadata={
        "help": "torch CPU threads (1: these small models ran 300x faster than with 2 on a loaded 2-core machine)"})


def _loop(params, steps: int, lr: float, step_fn, desc: str, log_path: Path) -> tuple[dict, dict]:
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
    first = last = None
    with log_path.open("w") as log:
        for step in progress(range(steps), desc=desc):
            loss, parts = step_fn(step)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            last = {"step": step + 1, "loss": round(float(loss.detach()), 4),
                    **{k: round(v, 4) for k, v in parts.items()}}
            first = first or last
            log.write(json.dumps(last) + "\n")
    return first, last


def run_t2c_train(cfg: T2CConfig) -> StageReport:
    from koe.echox.data import read_qa
    from koe.echox.t2c import T2C
    from koe.echox.unit_language import UnitLanguage
    from koe.s2t.model import SpeechAwareLM

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out_dir)
    save_config(cfg, out)
    records = read_qa(cfg.qa)
    pairs = {r.fact_id + r.voice: r for r in records if r.role == "train" and r.answer_units}
    report = StageReport("echox t2c", out, items_in=len(pairs))
    if not pairs:
        report.fail(str(cfg.qa), "empty: no training answer with units")
        return report.finish()
    s2t = SpeechAwareLM.load(cfg.s2t)
    seqs = [r.answer_units for r in pairs.values()]
    num_units = cfg.num_units or max(max(s) for s in seqs) + 1
    ul = UnitLanguage.fit(seqs, num_units, cfg.unit_vocab)
    t2c = T2C.create(s2t.llm.get_input_embeddings(), ul, cfg.hidden_size, cfg.num_layers, seed=cfg.seed).train()
    data = [(s2t.text_ids(r.answer_text), ul.encode(r.answer_units)) for r in pairs.values()]
    rng = random.Random(cfg.seed)

    def step(_):
        batch = rng.sample(data, min(cfg.batch_size, len(data)))
        loss = t2c.loss([t2c.text_prefix(x) for x, _ in batch], [y for _, y in batch])
        return loss, {}

    params = [p for p in t2c.parameters() if p.requires_grad]
    first, last = _loop(params, cfg.steps, cfg.lr, step, "t2c", out / "metrics.jsonl")
    t2c.eval().save(out / "final")
    report.ok(len(data))
    report.extra.update(unit_language=ul.length_stats(seqs), first=first, last=last, model_dir=str(out / "final"))
    return report.finish()


def pseudo_labels(s2t, t2c, examples, max_units: int) -> list[tuple[list[int], list[int]]]:
    """(x', Y') per spoken question: the S2T model's own answer and the T2C's units for it (no gradients)."""
    out = []
    for ex in progress(examples, desc="echo pseudo labels"):
        x = s2t.generate(ex, max_new_tokens=40)
        y = t2c.generate(t2c.text_prefix(x), max_new_tokens=max_units) if x else []
        out.append((x, y))
    return out


def run_echo_train(cfg: EchoConfig) -> StageReport:
    from koe.echox.data import read_qa
    from koe.echox.echo import EchoModel
    from koe.s2t.model import Example, SpeechAwareLM
    from koe.s2t.train import QA_PROMPT, load_audio_cache

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out_dir)
    save_config(cfg, out)
    torch.manual_seed(cfg.seed)
    records = [r for r in read_qa(cfg.qa) if r.role == "train"]
    report = StageReport("echox echo", out, items_in=len(records))
    s2t = SpeechAwareLM.load(cfg.s2t).eval()
    audio = load_audio_cache([r.question_audio for r in records], s2t.encoder.max_audio_s, report)
    examples = [Example(QA_PROMPT, audio[r.question_audio], target=r.answer_text, transcript=r.question_text)
                for r in records if r.question_audio in audio]
    echo = EchoModel.create(s2t, cfg.t2c, cfg.denoise)
    labels = pseudo_labels(s2t, echo.decoder, examples, cfg.max_units)
    keep = [i for i, (x, y) in enumerate(labels) if x and y]
    report.extra["pseudo_label_failures"] = len(labels) - len(keep)
    for i in set(range(len(labels))) - set(keep):
        report.fail(f"echo-{i}", "empty-pseudo-label: S2T output or T2C units empty")
    if not keep:
        return report.finish()
    if cfg.lora_rank > 0:
        s2t.add_lora(cfg.lora_rank, 2.0 * cfg.lora_rank)
    s2t.set_llm_trainable(cfg.lora_rank > 0)
    echo.train()
    rng = random.Random(cfg.seed)

    def step(_):
        idx = rng.sample(keep, min(cfg.batch_size, len(keep)))
        return echo.loss([examples[i] for i in idx], [labels[i] for i in idx])

    params = [p for p in echo.parameters() if p.requires_grad]
    first, last = _loop(params, cfg.steps, cfg.lr, step, "echo", out / "metrics.jsonl")
    echo.eval()
    final = out / "final"
    s2t.save(final / "s2t")
    echo.decoder.save(final / "decoder")
    if echo.denoiser is not None:
        weights = {k: v.contiguous() for k, v in echo.denoiser.state_dict().items()}
        save_file(weights, str(final / "denoise.safetensors"))
    (final / "echo.json").write_text(json.dumps({"schema_version": 1, "denoise": cfg.denoise}) + "\n")
    report.ok(len(keep))
    report.extra.update(first=first, last=last, model_dir=str(final))
    return report.finish()
