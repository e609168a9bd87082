"""Readers of the public benchmark formats, on the shared data and on hand-made files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from koe.bench.draft import ranking_candidates
from koe.bench.sources import read_blimp, read_storycloze, read_triviaqa, read_webquestions, read_wordlist
from koe.stage import KoeInputError


@pytest.mark.shared_data
def test_blimp_reader_on_shared_data(shared_data):
    pairs = read_blimp(shared_data / "blimp" / "data")
    assert len(pairs) == 41
    assert all(len(v) == 1000 for v in pairs.values())
    p = pairs["adjunct_island"][0]
    assert p.good.startswith("Who should Derek") and p.good != p.bad and p.pair_id == "0"


@pytest.mark.shared_data
def test_webquestions_and_triviaqa_readers_on_shared_data(shared_data):
    wq = read_webquestions(shared_data / "webquestions" / "main" / "test.json")
    assert len(wq) == 2032
    assert wq[0].question == "what does jamaican people speak?" and "Jamaican English" in wq[0].references
    tqa = read_triviaqa(shared_data / "triviaqa_subset" / "triviaqa_sm_sub.jsonl")
    assert len(tqa) == 3000
    q = tqa[0]
    assert not q.question.startswith("Question:") and not q.question.endswith("Answer:")
    assert q.answer == "Onion" and "Allium cepa" in q.references and q.references[0] == "Onion"


def test_storycloze_reader_and_errors(tmp_path):
    path = tmp_path / "sc.csv"
    path.write_text("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
                    "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n"
                    "s1,A.,B.,C.,D.,Good end.,Bad end.,1\ns2,E.,F.,G.,H.,Wrong.,Right.,2\n")
    stories = read_storycloze(path)
    assert [s.right for s in stories] == [0, 1] and stories[1].endings[1] == "Right."
    path.write_text(path.read_text().replace(",2\n", ",3\n"))
    with pytest.raises(KoeInputError, match=r"sc.csv:3"):
        read_storycloze(path)


def test_wordlist_reader(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("# lexicon\nHello 10\nworld\n\nhello 3\n")
    assert read_wordlist(path) == [("hello", 10), ("world", None)]
    path.write_text("a b c\n")
    with pytest.raises(KoeInputError, match=r"w\.txt:1"):
        read_wordlist(path)


def test_triviaqa_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"context": "Question: x?\nAnswer:", "answer": "y", "aliases": []}) + "\n{oops\n")
    with pytest.raises(KoeInputError, match=r"t\.jsonl:2"):
        read_triviaqa(path)


def test_ranking_candidates_exclude_aliases_and_are_seeded():
    pool = ["Paris", "paris", "Lyon", "Rome", "Berlin", "Madrid"]
    a = ranking_candidates("Paris", pool, 4, np.random.default_rng(0), exclude={"Lyon"})
    b = ranking_candidates("Paris", pool, 4, np.random.default_rng(0), exclude={"Lyon"})
    assert a == b
    cands, label = a
    assert cands[label] == "Paris" and len(cands) == 4
    assert not {"paris", "Lyon"} & set(cands[:label] + cands[label + 1:])
    with pytest.raises(ValueError):
        ranking_candidates("Paris", pool, 6, np.random.default_rng(0))
