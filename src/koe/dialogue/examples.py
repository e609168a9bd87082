"""The dialogue example record (docs/dialogue.md): one spoken (or text-only) question with its text and spoken answer.

    ex = DialogueExample.from_dict(json.loads(line), where="dialogue/examples.jsonl:3")
    problems = example_problems(ex, root=Path("dialogue"))      # [] or ["missing-audio: ...", ...]

Written by `koe dialogue build`, read by `koe sft` and `koe eval s2s`. Audio paths are relative to the folder that
holds examples.jsonl. Units are the unit tokenizer's ids (not model ids): `koe sft` maps them with the model's
SpeechVocab. A text-only example (`modality: "text"`) has no audio and no units: TinySpeech's text-only facts reach
the model this way only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from koe.stage import KoeInputError, atomic_write_text, iter_jsonl

SCHEMA_VERSION = 1
EXAMPLES_FILE = "examples.jsonl"
FACT_SPLITS = {"text_and_speech": "heard", "text_only": "text_only", "heldout": "heldout"}


@dataclasses.dataclass
class DialogueExample:
    """One question and its answer, e.g.

    {"id": "tiny-fact-capital-000-en-us", "source": "tinyspeech", "split": "train", "modality": "speech",
     "fact_split": "heard", "voice_split": "seen", "question_text": "what is the capital of randira ?",
     "answer_text": "felane", "references": ["felane"], "question_audio": "wav/...-q.wav", "question_voice": "en-us",
     "question_units": [3, 17, ...], "answer_audio": "wav/...-a.wav", "answer_voice": "en+f5",
     "answer_units": [5, 9, ...], "schema_version": 1}
    """

    id: str
    source: str
    split: str  # train | eval
    modality: str  # speech | text
    fact_split: str  # heard | text_only | heldout (real-English questions: heldout)
    voice_split: str  # seen | heldout | none (text-only)
    question_text: str
    answer_text: str
    references: list[str]
    question_audio: str | None = None
    question_voice: str | None = None
    question_units: list[int] | None = None
    answer_audio: str | None = None
    answer_voice: str | None = None
    answer_units: list[int] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = EXAMPLES_FILE) -> DialogueExample:
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        problems = [f"missing {k}" for k in required if k not in d]
        unknown = sorted(set(d) - names)
        if unknown:
            problems.append(f"unknown field(s) {unknown}")
        if d.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            problems.append(f"schema_version {d.get('schema_version')} (this koe reads {SCHEMA_VERSION})")
        if problems:
            raise KoeInputError(f"bad-example: {where}: {'; '.join(problems)}")
        return cls(**d)


def example_problems(ex: DialogueExample, root: Path) -> list[str]:
    """Why an example cannot be trained or evaluated on (empty list: fine). Length is checked by the strategy."""
    problems = []
    if not ex.answer_text.strip():
        problems.append("empty-answer: the answer text is empty")
    if not ex.question_text.strip():
        problems.append("empty-question: the question text is empty")
    if ex.modality == "speech":
        for side in ("question", "answer"):
            audio, units = getattr(ex, f"{side}_audio"), getattr(ex, f"{side}_units")
            if audio is None or not (root / audio).exists():
                problems.append(f"missing-audio: {side} audio {audio} not found under {root}")
            if not units:
                problems.append(f"no-units: the {side} has no units (build with unit_tokenizer=)")
    return problems


def read_examples(path: str | Path) -> list[tuple[str, DialogueExample | KoeInputError]]:
    """(where, example or the error of that line) for every line, so a reader can list bad lines and go on."""
    out: list[tuple[str, DialogueExample | KoeInputError]] = []
    for where, obj in iter_jsonl(path, kind="bad-examples"):
        try:
            out.append((where, DialogueExample.from_dict(obj, where)))
        except (KoeInputError, TypeError) as e:
            out.append((where, e if isinstance(e, KoeInputError) else KoeInputError(f"bad-example: {where}: {e}")))
    return out


def write_examples(path: str | Path, examples: list[DialogueExample]) -> None:
    import json

    atomic_write_text(path, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples))
