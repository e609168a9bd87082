"""`koe echox eval`: one table over systems, speech in; text out and speech out scored on the same questions.

    koe echox eval qa=runs/echox/qa.jsonl vocoder=runs/echox/vocoder out_dir=runs/echox/eval \
        systems='{s2t_only: {s2t: runs/echox/s2t_sft/final}, echox: {echo: runs/echox/echo/final}, ...}'

A system is {s2t} (text out only), {s2t, t2c} (S2T + stage-II T2C reading the text it wrote), {echo} (an echo
training output: the echo decoder reads the LLM's hidden states), or {cascade: true, asr, s2t} (S2T ASR transcript ->
the LLM answering the text -> espeak). Columns: text-out accuracy (the answer name in the text), speech-out accuracy
(pocketsphinx forced choice among the candidates, koe.echox.asr), gap = text - speech, own-text WER (pocketsphinx
word loop against the system's own text), first-audio ms (streamed, koe.echox.pipeline) and unit-language tokens per
second of generated speech. Heldout facts are kept out of the accuracies (chance) but listed in results.json.
Writes results.json, results.md (both rewritten after each system, `systems_pending` naming those not yet run) and
the first `num_wavs` answers of each system as WAVs.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from koe.config import save_config
from koe.stage import StageReport, atomic_write_text, map_in_workers, progress, write_json


@dataclasses.dataclass
class EchoxEvalConfig:
    """Evaluate S2T / T2C / EchoX systems and a cascade on spoken QA."""

    qa: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records"})
    vocoder: Path = dataclasses.field(default=Path("runs/echox/vocoder"), metadata={"help": "koe vocoder dir"})
    out_dir: Path = dataclasses.field(default=Path("runs/echox/eval"), metadata={"help": "output folder"})
    systems: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": "name -> system spec"})
    max_items: int = dataclasses.field(default=0, metadata={"help": "evaluate the first N eval questions (0 = all)"})
    num_wavs: int = dataclasses.field(default=3, metadata={"help": "answers saved as WAV per system"})
    device: str = dataclasses.field(default="auto", metadata={
        "help": "where the S2T/T2C/echo models run: auto (cuda when available), cpu, cuda:N (vocoder and "
                "pocketsphinx stay on the CPU)"})
    torch_threads: int = dataclasses.field(default=1, metadata={
        "help": "torch CPU threads per process (1: these small models ran 300x faster than with 2 on a loaded 2-core "
                "machine)"})
    num_workers: int = dataclasses.field(default=1, metadata={
        "help": "systems evaluated at once, each in its own process (vocoding and pocketsphinx are CPU-bound)"})

    def validate(self) -> list[str]:
        problems = [] if self.systems else ["systems= is empty: name at least one system"]
        if self.num_workers < 1:
            problems.append(f"num_workers={self.num_workers} must be >= 1")
        return problems


def _load_system(spec: dict, device):
    """(S2T model, speaker or None, ASR model of the cascade or None), every model on `device`."""
    from koe.echox.echo import EchoModel
    from koe.echox.pipeline import EchoSpeaker, TextSpeaker
    from koe.echox.t2c import T2C
    from koe.s2t.model import SpeechAwareLM

    if spec.get("cascade"):
        return SpeechAwareLM.load(spec["s2t"]).to(device), None, SpeechAwareLM.load(spec["asr"]).to(device)
    if "echo" in spec:
        echo = EchoModel.load(spec["echo"]).to(device)
        return echo.s2t, EchoSpeaker(echo), None
    s2t = SpeechAwareLM.load(spec["s2t"]).to(device)
    return s2t, (TextSpeaker(T2C.load(spec["t2c"]).to(device)) if spec.get("t2c") else None), None


def _item(r, s2t, speaker, asr_model, vocoder, asr, audio) -> dict:
    from koe.eval.scoring import contains_match
    from koe.s2t.model import Example
    from koe.s2t.train import ASR_PROMPT, QA_PROMPT

    row: dict[str, Any] = {"id": r.id, "split": r.split, "answer": r.answer}
    if asr_model is not None:  # cascade: transcribe, answer the text, speak with espeak
        from koe.synth.espeak import synthesize

        start = time.perf_counter()
        transcript = asr_model.decode(asr_model.generate(Example(ASR_PROMPT, audio), 40))
        text = s2t.decode(s2t.generate(Example(QA_PROMPT, prefix=transcript), 40))
        wav = synthesize(text).audio if text.strip(" .") else np.zeros(0, np.float32)
        row.update(transcript=transcript, first_audio_ms=1000 * (time.perf_counter() - start))
        tokens = None
    elif speaker is None:
        text, wav, tokens = s2t.decode(s2t.generate(Example(QA_PROMPT, audio), 40)), None, None
    else:
        from koe.echox.pipeline import stream_answer

        ans = stream_answer(s2t, speaker, Example(QA_PROMPT, audio), vocoder)
        text, wav, tokens = ans.text, ans.audio, ans.unit_tokens
        row.update(first_audio_ms=1000 * ans.first_audio_s, segments=ans.segments,
                   tokens_per_s=len(tokens) / max(ans.audio_s, 1e-9) if len(wav) else None)
    row.update(text=text, text_correct=contains_match(text, [r.answer]))
    if wav is not None:
        from koe.echox.asr import word_error_rate

        template = r.answer_text.rsplit(" ", 2)[0]  # "the capital of randira is"
        choice = asr.choose(wav, template, r.candidates)
        heard = asr.transcribe(wav)
        row.update(heard=" ".join(heard), speech_choice=choice, speech_correct=choice == r.answer,
                   own_text_wer=word_error_rate(heard, re.findall(r"[a-z]+", text.lower())))
    row["_wav"] = wav
    return row


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [float(x[key]) for x in rows if x.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def summarize(rows: list[dict]) -> dict:
    scored = [x for x in rows if x["split"] != "heldout"]
    text = _mean(scored, "text_correct")
    speech = _mean(scored, "speech_correct")
    by_split = {s: {"n": sum(x["split"] == s for x in rows),
                    "text": _mean([x for x in rows if x["split"] == s], "text_correct"),
                    "speech": _mean([x for x in rows if x["split"] == s], "speech_correct")}
                for s in sorted({x["split"] for x in rows})}
    return {"n": len(scored), "text_out": text, "speech_out": speech,
            "gap": text - speech if text is not None and speech is not None else None,
            "own_text_wer": _mean(rows, "own_text_wer"), "first_audio_ms": _mean(rows, "first_audio_ms"),
            "tokens_per_s": _mean(rows, "tokens_per_s"), "by_split": by_split}


def render(results: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    def num(x, f="{:.0f}"):
        return "-" if x is None else f.format(x)

    lines = ["| model | QA speech-in text-out % | QA speech-in speech-out % | text-speech gap | own-text WER | "
             "first-audio ms | tokens/s of speech |", "|---|---|---|---|---|---|---|"]
    for name, s in results.items():
        lines.append(f"| {name} | {pct(s['text_out'])} | {pct(s['speech_out'])} | {pct(s['gap'])} | "
                     f"{pct(s['own_text_wer'])} | {num(s['first_audio_ms'])} | {num(s['tokens_per_s'], '{:.1f}')} |")
    n = next(iter(results.values()))["n"] if results else 0
    lines.append(f"\n{n} spoken questions (held-out voice; text_and_speech + text_only facts); accuracies in %, "
                 "own-text WER in %, speech-out scored by pocketsphinx forced choice among the 4 candidates.")
    return "\n".join(lines) + "\n"


def run_echox_eval(cfg: EchoxEvalConfig) -> StageReport:
    from koe.model.speech_text_lm import resolve_device
    from koe.s2t.records import read_qa
    from koe.s2t.train import load_audio_cache

    out = Path(cfg.out_dir)
    save_config(cfg, out)
    records = [r for r in read_qa(cfg.qa) if r.role == "eval"][: cfg.max_items or None]
    report = StageReport("echox eval", out, items_in=len(records) * len(cfg.systems))
    audio = load_audio_cache([r.question_audio for r in records], 30.0, report)
    jobs = list(cfg.systems.items())
    # one process per system: the vocoder and pocketsphinx are CPU-bound, the models share the device
    finished = map_in_workers(_evaluate_system, jobs, cfg.num_workers, _init_worker,
                              (cfg, [r for r in records if r.question_audio in audio], audio), ordered=False)
    if cfg.num_workers > 1:
        finished = progress(finished, desc="eval systems", total=len(jobs))
    done: dict[str, list[dict]] = {}
    results: dict[str, dict] = {}
    for name, rows, failures in finished:
        for item, reason, path in failures:
            report.fail(f"{name}:{item}", reason, path=path)
        report.ok(len(rows))
        done[name] = rows
        ordered = [n for n in cfg.systems if n in done]
        results = {n: summarize(done[n]) for n in ordered}
        _write_results(out, results, {n: done[n] for n in ordered}, [n for n in cfg.systems if n not in done])
    report.extra["device"] = str(resolve_device(cfg.device))
    print(render(results))
    return report.finish()


_context: dict[str, Any] = {}  # what every system's evaluation shares, one per process (set by _init_worker)


def _init_worker(cfg: EchoxEvalConfig, records: list, audio: dict[str, np.ndarray]) -> None:
    import torch

    from koe.echox.asr import AnswerASR
    from koe.model.speech_text_lm import resolve_device
    from koe.vocoder import UnitVocoder

    torch.set_num_threads(cfg.torch_threads)
    words = {w for r in records for w in (r.answer_text + " " + " ".join(r.candidates)).split()}
    _context.update(cfg=cfg, records=records, audio=audio, device=resolve_device(cfg.device),
                    vocoder=UnitVocoder.load(cfg.vocoder), asr=AnswerASR(words))


def _evaluate_system(job: tuple[str, dict]) -> tuple[str, list[dict], list[tuple[str, str, str]]]:
    """(name, one row per question, (item, reason, path) per question it could not take); saves the first
    `num_wavs` answers as WAVs."""
    import soundfile as sf

    name, spec = job
    cfg, records, audio = _context["cfg"], _context["records"], _context["audio"]
    wav_dir = Path(cfg.out_dir) / "wavs" / name
    s2t, speaker, asr_model = _load_system(spec, _context["device"])
    rows, failures = [], []
    items = records if cfg.num_workers > 1 else progress(records, desc=f"eval {name}")
    for r in items:
        if len(audio[r.question_audio]) / 16_000 > s2t.encoder.max_audio_s:
            failures.append((r.id, f"too-long: {r.question_audio}: longer than the encoder's "
                                   f"{s2t.encoder.max_audio_s:.1f} s window", r.question_audio))
            continue
        row = _item(r, s2t, speaker, asr_model, _context["vocoder"], _context["asr"], audio[r.question_audio])
        wav = row.pop("_wav")
        if wav is not None and len(rows) < cfg.num_wavs and len(wav):
            wav_dir.mkdir(parents=True, exist_ok=True)
            sf.write(wav_dir / f"{r.id}.wav", wav, 16_000)
        rows.append(row)
    return name, rows, failures


def _write_results(out: Path, results: dict, rows_all: dict, pending: list[str]) -> None:
    """Rewritten after every system, so a run cut short (a lost GPU, a time limit) keeps the systems it finished;
    `systems_pending` names the rest."""
    write_json(out / "results.json", {"summary": results, "items": rows_all, "systems_pending": pending})
    note = f"\nNot evaluated yet: {', '.join(pending)}.\n" if pending else ""
    atomic_write_text(out / "results.md", render(results) + note)
