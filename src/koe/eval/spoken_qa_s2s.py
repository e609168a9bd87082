"""`koe eval s2s` (task spoken_qa_s2s): spoken questions answered in speech, scored through ASR.

    koe eval s2s model=runs/dialogue/sft/interleaved/final examples=runs/dialogue/data \
        vocoder=runs/dialogue/vocoder out_dir=runs/dialogue/eval/interleaved

For each evaluation example: (1) the text question answered in text (`qa_text`), (2) the spoken question answered
by the model's strategy, whose text part is scored (`qa_speech_text`), (3) its units vocoded with koe's vocoder (the
cascade speaks with espeak) and transcribed with pocketsphinx (koe.dialogue.asr), the transcript scored
(`qa_speech_speech`). Scores are SQuAD-normalised exact match against the references. Also: speech/text ratio =
qa_speech_speech / qa_speech_text (how much of its own text accuracy an answer keeps in speech, Wu et al.'s gap),
own-text WER (the spoken answer's transcript against the model's own text answer: does it say what it wrote?),
and first audio: generated tokens and milliseconds until the first unit is out and its first `first_chunk_units`
are vocoded. An empty or undecodable answer counts as wrong and is listed in eval_s2s_failures.jsonl.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from koe.config import save_config, to_dict
from koe.dialogue.examples import DialogueExample, read_examples
from koe.eval.s2s_config import S2SEvalConfig
from koe.eval.scoring import exact_match, normalize_answer
from koe.stage import KoeInputError, StageReport, atomic_write_text, map_in_workers, progress, write_json
from koe.strategies.base import example_tokens, generate_text, text_prompt
from koe.strategies.loading import load_bundle
from koe.strategies.options import StrategyOptions

RESULTS_FILE = "results.json"


def word_error_rate(hypothesis: str, reference: str) -> float:
    """Word-level Levenshtein distance / reference words, on SQuAD-normalised text (1.0 for an empty hypothesis)."""
    hyp, ref = normalize_answer(hypothesis).split(), normalize_answer(reference).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / len(ref)


def _examples(cfg: S2SEvalConfig, report: StageReport) -> list[DialogueExample]:
    path = cfg.examples / "examples.jsonl" if cfg.examples.is_dir() else cfg.examples
    out = []
    for where, ex in read_examples(path):
        if isinstance(ex, KoeInputError):
            report.fail(where, str(ex), path=path)
        elif ex.split == cfg.split and ex.modality == "speech":
            out.append(ex)
    if not cfg.max_examples or cfg.max_examples >= len(out):
        return out
    # Evenly spaced rather than the first N: the file is ordered by fact and voice, so a prefix would hold one
    # fact split and one voice.
    step = len(out) / cfg.max_examples
    return [out[int(i * step)] for i in range(cfg.max_examples)]


def _answer_asr(cfg: S2SEvalConfig, examples: list[DialogueExample]):
    from koe.dialogue.asr import Transcriber

    closed = cfg.answer_asr == "closed" or (cfg.answer_asr == "auto" and
                                            all(e.source == "tinyspeech" for e in examples))
    return Transcriber(phrases=[normalize_answer(r) for e in examples for r in e.references]) if closed \
        else Transcriber(), "closed" if closed else "open"


def _vocode(vocoder, units: list[int]) -> np.ndarray | None:
    from koe.vocoder import units_to_audio

    units = [u for u in units if u < vocoder.num_units]
    return units_to_audio(vocoder, units) if units else None


def run_spoken_qa_s2s(cfg: S2SEvalConfig) -> StageReport:
    out = Path(cfg.out_dir)
    report = StageReport("eval s2s", out)
    save_config(cfg, out)
    examples = _examples(cfg, report)
    if not examples:
        raise KoeInputError(f"no-examples: {cfg.examples}: no speech example in split {cfg.split!r}")
    _init_worker(cfg, examples)  # here too: a bad model or a missing vocoder fails before any worker starts
    strategy = _context["strategy"]
    report.items_in = len(examples)
    tasks = list(enumerate(examples))
    answered = map_in_workers(_answer_example, tasks, cfg.num_workers, _init_worker, (cfg, examples))
    rows = []
    for (_, ex), (row, problems) in progress(zip(tasks, answered, strict=True), desc=f"eval s2s {strategy.name}",
                                             total=len(tasks), unit="q"):
        for problem in problems:
            report.fail(ex.id, problem)
        rows.append(row)
        if "error" not in row:
            report.ok()
    summary = summarise(rows)
    summary["speech_out_ceiling"] = speech_out_ceiling(examples, _context["root"], _context["asr"],
                                                       _context["vocoder"])
    results = {"task": "spoken_qa_s2s", "model": cfg.model, "strategy": strategy.name,
               "strategy_options": to_dict(strategy.options), "answer_asr": _context["asr_mode"], **summary,
               "config": to_dict(cfg)}
    write_json(out / RESULTS_FILE, results)
    atomic_write_text(out / "answers.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report.extra.update({k: v for k, v in summary.items() if not isinstance(v, dict)})
    return report.finish()


_context: dict = {}  # the model, strategy, vocoder and ASR of this process (set by _init_worker)


def _init_worker(cfg: S2SEvalConfig, examples: list[DialogueExample]) -> None:
    """Load the model, vocoder and answer ASR of this process, once (the main process loads them before the map)."""
    if _context.get("cfg") is cfg:
        return
    if cfg.num_workers > 1:  # the workers share the cores instead of each taking them all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.num_workers))
    bundle, strategy = load_bundle(cfg.model, cfg.device, StrategyOptions(name=cfg.strategy) if cfg.strategy
                                   else None)
    vocoder = None
    if cfg.vocoder is not None:
        from koe.vocoder import UnitVocoder

        vocoder = UnitVocoder.load(cfg.vocoder)
    elif strategy.name != "cascade":
        raise KoeInputError(f"no-vocoder: strategy {strategy.name} answers in units; give vocoder=")
    asr, asr_mode = _answer_asr(cfg, examples)
    root = cfg.examples if cfg.examples.is_dir() else cfg.examples.parent
    _context.update(cfg=cfg, bundle=bundle, strategy=strategy, vocoder=vocoder, asr=asr, asr_mode=asr_mode,
                    root=root, text_answers={})


def _answer_example(task: tuple[int, DialogueExample]) -> tuple[dict, list[str]]:
    """(answers.jsonl row, failure reasons) of example number k: answered in text and by the strategy, vocoded,
    transcribed; its WAV saved among the first `save_wavs`. Seeded by k, so any number of workers gives the same
    rows."""
    from koe.audio import TARGET_SAMPLE_RATE_HZ

    k, ex = task
    cfg, bundle, vocoder = _context["cfg"], _context["bundle"], _context["vocoder"]
    text_answers = _context["text_answers"]  # the text question's answer, once per question
    torch.manual_seed(k)
    row = {"id": ex.id, "fact_split": ex.fact_split, "voice_split": ex.voice_split, "references": ex.references}
    try:
        t = example_tokens(ex, bundle.tokenizer, bundle.vocab)
        if ex.question_text not in text_answers:
            text_answers[ex.question_text] = generate_text(bundle, text_prompt(t, bundle.vocab),
                                                           cfg.max_new_tokens)[0]
        row["text_answer"] = text_answers[ex.question_text]
        ans = _context["strategy"].answer(bundle, t, ex, _context["root"], cfg.max_new_tokens)
    except KoeInputError as e:
        return {**row, "error": str(e)}, [str(e)]
    row.update({"speech_in_text": ans.text, "transcript_in": ans.transcript, "units": ans.units,
                "first_audio_tokens": ans.first_audio_tokens})
    audio, first_ms = ans.audio, None
    if audio is None and ans.units and vocoder is not None:
        start = time.perf_counter()
        _vocode(vocoder, ans.units[: cfg.first_chunk_units])
        chunk_s = time.perf_counter() - start
        audio = _vocode(vocoder, ans.units)
        first_ms = 1000 * (ans.first_audio_s + chunk_s) if ans.first_audio_s is not None else None
    elif audio is not None and ans.first_audio_s is not None:
        first_ms = 1000 * ans.first_audio_s
    row["first_audio_ms"] = first_ms
    if audio is None or audio.size == 0:
        return {**row, "heard": ""}, ["empty-speech: the answer has no units/audio (counted wrong)"]
    row["heard"] = _context["asr"].transcribe(audio)
    problems = [] if row["heard"] else ["undecodable: pocketsphinx heard nothing in the spoken answer (counted wrong)"]
    if cfg.save_wavs < 0 or k < cfg.save_wavs:
        wav_dir = Path(cfg.out_dir) / "wav"
        wav_dir.mkdir(parents=True, exist_ok=True)
        sr = vocoder.sample_rate_hz if ans.audio is None else TARGET_SAMPLE_RATE_HZ
        sf.write(wav_dir / f"{ex.id}.wav", audio, sr)
    return row, problems


def speech_out_ceiling(examples: list[DialogueExample], root: Path, asr, vocoder) -> dict[str, float | None]:
    """What a model that says exactly the right units could score through the same ASR (and vocoder): the share of
    reference answers recognised from their espeak audio (`espeak_answer`) and from their true units vocoded
    (`vocoded_true_units`), over all examples and over heard facts. Separates the model from its scorer."""
    from koe.audio import load_audio

    heard: dict[str, tuple[str, str]] = {}
    for ex in examples:
        if ex.answer_audio and ex.answer_audio not in heard:
            try:
                espeak = asr.transcribe(load_audio(root / ex.answer_audio))
            except KoeInputError:  # a missing or empty answer file: left out of the ceiling, as the example was
                continue
            vocoded = _vocode(vocoder, ex.answer_units or []) if vocoder is not None else None
            heard[ex.answer_audio] = (espeak, asr.transcribe(vocoded) if vocoded is not None else "")

    def rate(which: int, subset: list[DialogueExample]) -> float | None:
        scored = [exact_match(heard[e.answer_audio][which], e.references) for e in subset if e.answer_audio in heard]
        return float(np.mean(scored)) if scored else None

    facts_heard = [e for e in examples if e.fact_split == "heard"]
    return {"espeak_answer": rate(0, examples), "vocoded_true_units": rate(1, examples) if vocoder else None,
            "espeak_answer_heard": rate(0, facts_heard),
            "vocoded_true_units_heard": rate(1, facts_heard) if vocoder else None}


def _score(rows: list[dict]) -> dict:
    def rate(key: str) -> float | None:
        return float(np.mean([exact_match(r.get(key) or "", r["references"]) for r in rows])) if rows else None

    return {"qa_text": rate("text_answer"), "qa_speech_text": rate("speech_in_text"),
            "qa_speech_speech": rate("heard"), "num": len(rows)}


def summarise(rows: list[dict]) -> dict:
    """Accuracies overall and per fact split, ratio, own-text WER and first-audio means; failed rows count wrong."""
    overall = _score(rows)
    by_split = defaultdict(list)
    for r in rows:
        by_split[r["fact_split"]].append(r)
    answered = [r for r in rows if "error" not in r]
    st, ss = overall["qa_speech_text"], overall["qa_speech_speech"]
    wers = [word_error_rate(r["heard"], r["speech_in_text"]) for r in answered]
    tokens = [r["first_audio_tokens"] for r in answered if r.get("first_audio_tokens") is not None]
    ms = [r["first_audio_ms"] for r in answered if r.get("first_audio_ms") is not None]
    return {**overall, "speech_text_ratio": ss / st if st else None,
            "own_text_wer": float(np.mean(wers)) if wers else None,
            "first_audio_tokens": float(np.mean(tokens)) if tokens else None,
            "first_audio_ms": float(np.mean(ms)) if ms else None,
            "num_without_audio": sum(1 for r in rows if not r.get("heard")),
            "by_split": {s: _score(v) for s, v in sorted(by_split.items())},
            "by_voice": {s: _score(v) for s, v in sorted(_group(rows, "voice_split").items())}}


def _group(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out
