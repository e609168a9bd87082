"""Readers for the public benchmark formats koe builds spoken benchmarks from.

    pairs = read_blimp("../shared/data/blimp/data")               # {paradigm: [BlimpPair, ...]}
    stories = read_storycloze("cloze_test_val__spring2016.csv")  # [Story, ...]
    qs = read_webquestions("../shared/data/webquestions/main/test.json") + read_triviaqa("triviaqa_sm_sub.jsonl")
    words = read_wordlist("words.txt")                            # [(word, count or None), ...]

Every reader raises KoeInputError("kind: path[:line]: detail") on malformed input, naming the file and line.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from koe.stage import KoeInputError, iter_jsonl


@dataclasses.dataclass(frozen=True)
class BlimpPair:
    uid: str
    pair_id: str
    good: str
    bad: str
    field: str
    term: str


@dataclasses.dataclass(frozen=True)
class Story:
    id: str
    prompt: list[str]  # the four context sentences
    endings: tuple[str, str]
    right: int  # 0 or 1


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str  # the answer spoken and ranked
    references: tuple[str, ...]  # every accepted answer (aliases included), for exact match
    source: str


def read_blimp(path: str | Path) -> dict[str, list[BlimpPair]]:
    """BLiMP jsonl: a file or a folder of `<paradigm>.jsonl`; grouped by the `UID` field (the paradigm)."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise KoeInputError(f"no-data: {path}: no BLiMP .jsonl files")
    out: dict[str, list[BlimpPair]] = {}
    for f in files:
        for where, d in _jsonl(f):
            for k in ("sentence_good", "sentence_bad"):
                if not isinstance(d.get(k), str) or not d[k].strip():
                    raise KoeInputError(f"bad-blimp: {where}: missing {k}")
            uid = str(d.get("UID", f.stem))
            pair = BlimpPair(uid, str(d.get("pairID", len(out.get(uid, [])))), d["sentence_good"].strip(),
                             d["sentence_bad"].strip(), str(d.get("field", "")), str(d.get("linguistics_term", "")))
            out.setdefault(uid, []).append(pair)
    return out


STORYCLOZE_COLUMNS = ("InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                      "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding")


def read_storycloze(path: str | Path) -> list[Story]:
    """A StoryCloze validation/test CSV (the columns of `STORYCLOZE_COLUMNS`; AnswerRightEnding is 1 or 2)."""
    path = Path(path)
    if not path.exists():
        raise KoeInputError(f"no-data: {path}: StoryCloze CSV not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in STORYCLOZE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise KoeInputError(f"bad-storycloze: {path}: missing column(s) {missing}")
        stories = []
        for lineno, row in enumerate(reader, 2):
            right = row["AnswerRightEnding"].strip()
            if right not in ("1", "2"):
                raise KoeInputError(f"bad-storycloze: {path}:{lineno}: AnswerRightEnding={right!r} is not 1 or 2")
            prompt = [row[f"InputSentence{i}"].strip() for i in range(1, 5)]
            endings = (row["RandomFifthSentenceQuiz1"].strip(), row["RandomFifthSentenceQuiz2"].strip())
            if not all(prompt) or not all(endings):
                raise KoeInputError(f"bad-storycloze: {path}:{lineno}: an empty sentence")
            stories.append(Story(row["InputStoryid"].strip(), prompt, endings, int(right) - 1))
    return stories


def read_webquestions(path: str | Path) -> list[Question]:
    """WebQuestions JSON array of {qId, qText, answers[]}; the first answer is the one ranked."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KoeInputError(f"no-data: {path}: WebQuestions file not found") from None
    except json.JSONDecodeError as e:
        raise KoeInputError(f"bad-webquestions: {path}: not JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise KoeInputError(f"bad-webquestions: {path}: expected a JSON array")
    out = []
    for i, d in enumerate(data):
        answers = [a.strip() for a in d.get("answers") or [] if isinstance(a, str) and a.strip()]
        if not isinstance(d.get("qText"), str) or not answers:
            raise KoeInputError(f"bad-webquestions: {path}: entry {i} lacks qText or answers")
        out.append(Question(str(d.get("qId", i)), d["qText"].strip(), answers[0], tuple(answers), "webquestions"))
    return out


def read_triviaqa(path: str | Path) -> list[Question]:
    """TriviaQA jsonl of {context: "Question: ...\\nAnswer:", answer, aliases[]}; ids are `tqa-<line>`."""
    path = Path(path)
    out = []
    for where, d in _jsonl(path):
        ctx, answer = d.get("context"), d.get("answer")
        if not isinstance(ctx, str) or not isinstance(answer, str) or not answer.strip():
            raise KoeInputError(f"bad-triviaqa: {where}: needs string context and answer")
        question = ctx.strip()
        question = question.removeprefix("Question:").strip()
        question = question.removesuffix("Answer:").strip()
        if not question:
            raise KoeInputError(f"bad-triviaqa: {where}: empty question")
        refs = [answer.strip()] + [a.strip() for a in d.get("aliases") or [] if isinstance(a, str) and a.strip()]
        lineno = where.rsplit(":", 1)[1]
        out.append(Question(f"tqa-{int(lineno):06d}", question, answer.strip(), tuple(dict.fromkeys(refs)), "triviaqa"))
    return out


def read_wordlist(path: str | Path) -> list[tuple[str, int | None]]:
    """A lexicon: one word per line, optionally followed by whitespace and a corpus count; `#` starts a comment."""
    path = Path(path)
    if not path.exists():
        raise KoeInputError(f"no-data: {path}: word list not found")
    words: dict[str, int | None] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
            raise KoeInputError(f"bad-wordlist: {path}:{lineno}: expected `word [count]`, got {line!r}")
        words.setdefault(fields[0].lower(), int(fields[1]) if len(fields) == 2 else None)
    return list(words.items())


def _jsonl(path: Path):
    if not path.exists():
        raise KoeInputError(f"no-data: {path}: file not found")
    return iter_jsonl(path)
