"""Spoken QA from TinySpeech facts for the echox recipe: text items to speak, then one JSONL record per question.

    koe echox items out=runs/echox/items.jsonl          # questions + answers of every fact, as TextItems
    koe synth source=runs/echox/items.jsonl ...          # espeak speech, exact times (koe.synth)
    koe units encode ...                                 # units of every utterance (koe.units)
    koe echox qa manifest=.../manifest.jsonl units_dir=... out=runs/echox/qa.jsonl

A QA record (docs/echox.md#qa-records) holds the question audio and transcript, the answer text, the answer audio and
its dedup units (the T2C target), the fact's split and the multiple-choice candidates. `role` is `train` for
text_and_speech facts in the training voices and `eval` for every fact in the held-out voice, so evaluation hears
an unseen voice, and text_only facts are asked in speech only at evaluation (knowledge transfer from text).
This builder stands in for the dialogue issue's `koe dialogue build` until it lands (docs/echox.md).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from koe.s2t.records import SCHEMA_VERSION, QARecord, read_qa  # noqa: F401 (the record is read by koe.s2t too)
from koe.stage import StageReport, atomic_write_text, iter_jsonl


@dataclasses.dataclass
class ItemsConfig:
    """Write the TinySpeech fact questions and answers as TextItems for `koe synth`."""

    out: Path = dataclasses.field(default=Path("runs/echox/items.jsonl"), metadata={"help": "TextItems JSONL"})
    seed: int = dataclasses.field(default=0, metadata={"help": "TinySpeech fact seed"})
    max_facts: int = dataclasses.field(default=0, metadata={"help": "use the first N facts (0 = all 210)"})


@dataclasses.dataclass
class QAConfig:
    """Join a synth manifest and unit shards into QA records."""

    manifest: Path = dataclasses.field(default=Path("runs/echox/synth/manifest.jsonl"), metadata={"help": "synth"})
    units_dir: Path = dataclasses.field(default=Path("runs/echox/units"), metadata={"help": "koe units encode out"})
    out: Path = dataclasses.field(default=Path("runs/echox/qa.jsonl"), metadata={"help": "QA records JSONL"})
    eval_voice: str = dataclasses.field(default="", metadata={"help": "held-out voice (default: last voice seen)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "TinySpeech fact seed (candidates)"})


def run_items(cfg: ItemsConfig) -> StageReport:
    from koe.tinyspeech import facts

    all_facts = facts(cfg.seed)[: cfg.max_facts or None]
    report = StageReport("echox items", cfg.out.parent, items_in=len(all_facts))
    lines = []
    for f in all_facts:
        meta = {"fact_id": f.id, "fact_split": f.split}
        lines.append({"id": f"{f.id}-q", "text": f.question, "kind": "question", "meta": {**meta, "role": "question"}})
        lines.append({"id": f"{f.id}-a", "text": f.statement, "kind": "fact", "meta": {**meta, "role": "answer"}})
        report.ok()
    atomic_write_text(cfg.out, "".join(json.dumps(x) + "\n" for x in lines))
    report.extra["text_items"] = len(lines)
    return report.finish()


def run_qa(cfg: QAConfig) -> StageReport:
    from koe.tinyspeech import fact_questions
    from koe.units.shards import read_unit_shards

    utts = [obj for _, obj in iter_jsonl(cfg.manifest, "bad-manifest")]
    units = {r.id: r.units.tolist() for r in read_unit_shards(cfg.units_dir)}
    questions = {q.fact_id: q for q in fact_questions(cfg.seed)}
    voices = sorted({u["speaker"] for u in utts})
    eval_voice = cfg.eval_voice or voices[-1]
    report = StageReport("echox qa", cfg.out.parent, items_in=len(utts))
    answers = {(u["meta"]["fact_id"], u["speaker"]): u for u in utts if u["meta"].get("role") == "answer"}
    base = cfg.manifest.parent
    records = []
    for u in utts:
        if u["meta"].get("role") != "question":
            continue
        fid, voice = u["meta"]["fact_id"], u["speaker"]
        a = answers.get((fid, voice))
        if a is None or a["id"] not in units:
            report.fail(u["id"], "no-answer-units: the answer of this question has no audio/units in this voice")
            continue
        role = "eval" if voice == eval_voice else "train" if u["meta"]["fact_split"] == "text_and_speech" else None
        if role is None:
            continue  # text_only / heldout facts are spoken only in the held-out voice
        q = questions[fid]
        records.append(QARecord(u["id"], fid, q.split, role, voice, q.question, str(base / u["audio_path"]),
                                a["text"], q.answer, q.candidates, str(base / a["audio_path"]), units[a["id"]]))
        report.ok()
    if not records:
        report.fail(str(cfg.manifest), "empty: no question with answer units")
    atomic_write_text(cfg.out, "".join(json.dumps(r.to_dict()) + "\n" for r in records))
    report.extra.update(eval_voice=eval_voice, train=sum(r.role == "train" for r in records),
                        eval=sum(r.role == "eval" for r in records))
    return report.finish()
