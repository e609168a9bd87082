"""Spoken question answering: questions spoken, candidate answers spoken and kept as text, references for exact match.

    koe bench build kinds=[qa] webquestions=../shared/data/webquestions/main/test.json \
        triviaqa=../shared/data/triviaqa_subset/triviaqa_sm_sub.jsonl qa_num=200 qa_num_candidates=4

For likelihood ranking each question gets its answer plus `qa_num_candidates - 1` distractors drawn (seeded) from the
answers of the other questions of the same source, never one of its own accepted answers. For generation the
references are every accepted answer (WebQuestions' answers, TriviaQA's answer and aliases). TinySpeech facts bring
their own candidates; their category is the fact split (`text_and_speech`, `text_only`, `heldout`).
"""

from __future__ import annotations

from koe.bench.config import BenchBuildConfig
from koe.bench.draft import Draft, Spoken, ranking_candidates, safe_id
from koe.bench.registry import BenchSource
from koe.bench.sources import Question, read_triviaqa, read_webquestions
from koe.seed import rng_for


def question_drafts(questions: list[Question], cfg: BenchBuildConfig, source: str) -> list[Draft]:
    pool = sorted({q.answer for q in questions})
    if cfg.qa_num and cfg.qa_num < len(questions):
        picks = rng_for(cfg.seed, source, "sample").choice(len(questions), size=cfg.qa_num, replace=False)
        questions = [questions[int(i)] for i in sorted(picks)]
    drafts = []
    for q in questions:
        cands, label = ranking_candidates(q.answer, pool, cfg.qa_num_candidates, rng_for(cfg.seed, source, q.id),
                                          exclude=set(q.references))
        drafts.append(Draft(group=safe_id(f"{source}-{q.id}"), task="qa", category=source, prompt=Spoken(q.question),
                            candidates=[Spoken(c) for c in cands], label=label, references=list(q.references),
                            meta={"question_id": q.id}))
    return drafts


def tiny_fact_drafts(cfg: BenchBuildConfig) -> list[Draft]:
    from koe.tinyspeech import fact_questions

    drafts = []
    for q in fact_questions(cfg.seed):
        cands = list(q.candidates)
        if q.answer not in cands:
            cands = [q.answer, *cands]
        drafts.append(Draft(group=safe_id(f"tiny-{q.id}"), task="qa", category=q.split, prompt=Spoken(q.question),
                            candidates=[Spoken(c) for c in cands], label=cands.index(q.answer),
                            references=[q.answer], meta={"fact_id": q.fact_id, "split": q.split}))
    return drafts


def sources(cfg: BenchBuildConfig) -> list[BenchSource]:
    out = []
    if cfg.tinyspeech:
        out.append(BenchSource("qa-tiny", "tinyspeech", "TinySpeech fact questions (per fact split)",
                               lambda: tiny_fact_drafts(cfg)))
    if cfg.webquestions is not None:
        out.append(BenchSource("qa-webquestions", "webquestions", "WebQuestions, spoken",
                               lambda: question_drafts(read_webquestions(cfg.webquestions), cfg, "webquestions")))
    if cfg.triviaqa is not None:
        out.append(BenchSource("qa-triviaqa", "triviaqa", "TriviaQA, spoken",
                               lambda: question_drafts(read_triviaqa(cfg.triviaqa), cfg, "triviaqa")))
    return out
