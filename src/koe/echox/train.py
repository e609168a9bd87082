"""`koe echox t2c` (stage II) and `koe echox echo` (stage III).

    koe echox t2c qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final out_dir=runs/echox/t2c unit_vocab=300
    koe echox echo qa=runs/echox/qa.jsonl s2t=runs/echox/s2t_sft/final t2c=runs/echox/t2c/final \
        out_dir=runs/echox/echo
    koe echox echo ... save_every=50 resume_from=auto            # continue an interrupted run

Stage II trains the T2C on TTS pairs (answer text -> answer units, in the unit language) from the text embeddings.
Stage III (echo training): the S2T model answers every training question itself (x'), the stage-II T2C turns x' into
pseudo units Y' (both once, before training: docs/echox.md), then S2T, the echo decoder (a copy of the T2C) and the
denoising adapter train together on L = schedule(L_S2T, L_unit + w * L_den) (koe.echox.losses). Both loops are
koe.s2t.loop.fit on koe.training (AdamW, schedule, clipping, metrics, checkpoints; `device=auto` = the GPU with bf16
autocast when there is one). Outputs: out_dir/final/{s2t,decoder,denoise.safetensors}, metrics.jsonl,
loss_curve.png, config.yaml, summary; echo also pseudo_labels.json (what a resumed run reuses).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from koe.config import at_least, save_config
from koe.s2t.loop import LoopConfig, default_optim, fit, step_rng
from koe.stage import StageReport, atomic_write_text, progress
from koe.training.config import OptimConfig


@dataclasses.dataclass
class T2CConfig(LoopConfig):
    """Stage II: train the T2C on (answer text, answer units) pairs."""

    optim: OptimConfig = dataclasses.field(default_factory=lambda: default_optim(lr=2e-3))
    steps: int = dataclasses.field(default=300, metadata={"help": "optimiser steps"})
    log_every: int = dataclasses.field(default=1, metadata={"help": "steps between metric lines"})
    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records"})
    s2t: Path = dataclasses.field(default=Path("runs/echox/s2t_sft/final"), metadata={"help": "S2T dir (text side)"})
    out_dir: Path = dataclasses.field(default=Path("runs/echox/t2c"), metadata={"help": "output folder"})
    num_units: int = dataclasses.field(default=0, metadata={"help": "unit inventory size (0 = max unit + 1)"})
    unit_vocab: int = dataclasses.field(default=300, metadata={"help": "unit-language size (<= num_units: off)"})
    hidden_size: int = dataclasses.field(default=128, metadata={"help": "T2C width"})
    num_layers: int = dataclasses.field(default=2, metadata={"help": "T2C layers"})
    batch_size: int = dataclasses.field(default=16, metadata={"help": "pairs per step"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed"})

    def validate(self) -> list[str]:
        return self.loop_problems() + at_least(self, ("hidden_size", "num_layers", "batch_size"), 1)


@dataclasses.dataclass
class EchoConfig(LoopConfig):
    """Stage III: echo training of S2T + echo decoder (+ denoising adapter)."""

    log_every: int = dataclasses.field(default=1, metadata={"help": "steps between metric lines"})
    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records"})
    s2t: Path = dataclasses.field(default=Path("runs/echox/s2t_sft/final"), metadata={"help": "stage-I S2T dir"})
    t2c: Path = dataclasses.field(default=Path("runs/echox/t2c/final"), metadata={"help": "stage-II T2C dir"})
    out_dir: Path = dataclasses.field(default=Path("runs/echox/echo"), metadata={"help": "output folder"})
    denoise: bool = dataclasses.field(default=True, metadata={"help": "use the denoising adapter and L_den"})
    lora_rank: int = dataclasses.field(default=8, metadata={"help": "LoRA rank on the S2T LLM (0 = frozen LLM)"})
    batch_size: int = dataclasses.field(default=8, metadata={"help": "questions per step"})
    max_units: int = dataclasses.field(default=200, metadata={"help": "longest pseudo-label sequence decoded"})
    max_questions: int = dataclasses.field(default=0, metadata={
        "help": "echo-train on this many training questions, drawn with the seed (0 = all): pseudo labels are "
                "decoded one question at a time"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed"})

    def validate(self) -> list[str]:
        return (self.loop_problems() + at_least(self, ("batch_size", "max_units"), 1)
                + at_least(self, ("lora_rank", "max_questions"), 0))


def run_t2c_train(cfg: T2CConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    from koe.echox.t2c import T2C
    from koe.echox.unit_language import UnitLanguage
    from koe.s2t.model import SpeechAwareLM
    from koe.s2t.records import read_qa
    from koe.training.device import make_accelerator

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out_dir)
    accelerator = make_accelerator(cfg.device, cfg.precision)
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
    del s2t

    # ---------------------------------------------------------------- loop (koe.s2t.loop.fit)
    def step(i: int, module):
        batch = step_rng(cfg.seed, i).sample(data, min(cfg.batch_size, len(data)))
        prefixes = [t2c.text_prefix(x) for x, _ in batch]  # frozen embeddings, on the module's device
        return module(prefixes, [y for _, y in batch]), {}

    result = fit(accelerator, cfg, t2c, step, out, "t2c")

    # ---------------------------------------------------------------- cleanup
    result.model.eval().save(out / "final")
    report.ok(len(data))
    report.extra.update(unit_language=ul.length_stats(seqs), first=result.first, last=result.last,
                        steps=result.steps, train_time_s=result.train_time_s, device=str(accelerator.device),
                        mixed_precision=accelerator.mixed_precision, model_dir=str(out / "final"))
    return report.finish()


def pseudo_labels(s2t, t2c, examples, max_units: int) -> list[tuple[list[int], list[int]]]:
    """(x', Y') per spoken question: the S2T model's own answer and the T2C's units for it (no gradients)."""
    out = []
    for ex in progress(examples, desc="echo pseudo labels"):
        x = s2t.generate(ex, max_new_tokens=40)
        y = t2c.generate(t2c.text_prefix(x), max_new_tokens=max_units) if x else []
        out.append((x, y))
    return out


def cached_pseudo_labels(path: Path, resuming: bool, make) -> list[tuple[list[int], list[int]]]:
    """A resumed run reuses the labels its first run wrote (greedy decoding on a GPU is not bit-exact, and the
    checkpointed steps were trained on those); otherwise `make()`, written to `path` for a later resume."""
    if resuming and path.exists():
        return [(list(x), list(y)) for x, y in json.loads(path.read_text())]
    labels = make()
    atomic_write_text(path, json.dumps(labels) + "\n")
    return labels


def run_echo_train(cfg: EchoConfig) -> StageReport:
    # ---------------------------------------------------------------- setup
    from koe.echox.echo import EchoModel
    from koe.s2t.model import Example, SpeechAwareLM
    from koe.s2t.records import read_qa
    from koe.s2t.train import QA_PROMPT, load_audio_cache
    from koe.training.device import make_accelerator

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out_dir)
    accelerator = make_accelerator(cfg.device, cfg.precision)
    save_config(cfg, out)
    torch.manual_seed(cfg.seed)
    records = [r for r in read_qa(cfg.qa) if r.role == "train"]
    if cfg.max_questions and len(records) > cfg.max_questions:
        records = sorted(step_rng(cfg.seed, -1).sample(records, cfg.max_questions), key=lambda r: r.id)
    report = StageReport("echox echo", out, items_in=len(records))
    s2t = SpeechAwareLM.load(cfg.s2t).eval()
    audio = load_audio_cache([r.question_audio for r in records], s2t.encoder.max_audio_s, report)
    examples = [Example(QA_PROMPT, audio[r.question_audio], target=r.answer_text, transcript=r.question_text)
                for r in records if r.question_audio in audio]
    echo = EchoModel.create(s2t, cfg.t2c, cfg.denoise).to(accelerator.device)  # on the GPU for the pseudo labels
    labels = cached_pseudo_labels(out / "pseudo_labels.json", cfg.resume_from is not None,
                                  lambda: pseudo_labels(s2t, echo.decoder, examples, cfg.max_units))
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

    # ---------------------------------------------------------------- loop (koe.s2t.loop.fit)
    def step(i: int, module):
        idx = step_rng(cfg.seed, i).sample(keep, min(cfg.batch_size, len(keep)))
        return module([examples[j] for j in idx], [labels[j] for j in idx])

    result = fit(accelerator, cfg, echo, step, out, "echo",
                 panels={"loss": ["loss", "l_s2t", "l_unit", "l_den"], "weight": ["w"]})

    # ---------------------------------------------------------------- cleanup
    echo = result.model.eval()
    final = out / "final"
    echo.s2t.save(final / "s2t")
    echo.decoder.save(final / "decoder")
    if echo.denoiser is not None:
        weights = {k: v.cpu().contiguous() for k, v in echo.denoiser.state_dict().items()}
        save_file(weights, str(final / "denoise.safetensors"))
    (final / "echo.json").write_text(json.dumps({"schema_version": 1, "denoise": cfg.denoise}) + "\n")
    report.ok(len(keep))
    report.extra.update(first=result.first, last=result.last, steps=result.steps, train_time_s=result.train_time_s,
                        device=str(accelerator.device), mixed_precision=accelerator.mixed_precision,
                        model_dir=str(final))
    return report.finish()
