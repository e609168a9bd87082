"""TinySpeech facts and minimal pairs: sizes, invented names, splits, what each pair category changes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from koe.tinyspeech import fact_questions, facts, generate_corpus, lexical_pairs, semantic_pairs, syntactic_pairs
from koe.tinyspeech.lexicon import by_pos, surface_forms
from koe.tinyspeech.phonotactics import english_words, invented_names, segments

THIRD_TO_BASE = {w.third: w.text for w in by_pos("verb")}
PLURAL_TO_SINGULAR = {w.plural: w.text for w in by_pos("noun") if w.plural}


@pytest.fixture(scope="module")
def training_sentences() -> set[str]:
    items = generate_corpus(3000, seed=0)
    return {s.strip() for i in items for s in re.findall(r"[^.?]+[.?]", i.text)} | {i.text for i in items}


def test_facts_sizes_names_and_splits():
    fs = facts()
    assert len(fs) >= 200 and len({f.id for f in fs}) == len(fs)
    names = {f.subject for f in fs} | {f.answer for f in fs}
    answers = [f.answer for f in fs]
    assert len(set(answers)) == len(answers)
    assert not names & surface_forms() and not names & english_words()
    assert all(n.isalpha() and n.islower() for n in names)
    assert {f.relation for f in fs} == {"capital", "river", "king"}
    counts = Counter(f.split for f in fs)
    assert abs(counts["text_and_speech"] / len(fs) - 0.5) < 0.02 and abs(counts["text_only"] / len(fs) - 0.4) < 0.02
    assert abs(counts["heldout"] / len(fs) - 0.1) < 0.02
    for f in fs:
        assert f.statement == f"the {f.relation} of {f.subject} is {f.answer} ."
        assert f.question.endswith(f"is the {f.relation} of {f.subject} ?")
    assert facts() == fs and facts(seed=1) != fs
    assert Counter(f.split for f in facts(proportions=(0.2, 0.2, 0.6)))["heldout"] == 126


def test_invented_names_are_distinct_and_deterministic():
    names = invented_names(500, seed=3)
    assert len(set(names)) == 500 and names == invented_names(500, seed=3)


def test_fact_questions_candidates():
    qs, by_id = fact_questions(), {f.id: f for f in facts()}
    assert len(qs) == len(by_id)
    for q in qs:
        f = by_id[q.fact_id]
        assert q.answer == f.answer and q.split == f.split and q.question == f.question
        assert len(q.candidates) == 4 and len(set(q.candidates)) == 4 and q.answer in q.candidates
        assert set(q.candidates) <= {g.answer for g in by_id.values() if g.relation == f.relation}
        if q.split == "heldout":  # only never-seen names: a clean chance baseline
            assert all(by_id_answer_split(by_id, c) == "heldout" for c in q.candidates)
    assert Counter(q.candidates.index(q.answer) for q in qs).most_common(1)[0][1] < 0.4 * len(qs)


def by_id_answer_split(by_id, answer):
    return next(f.split for f in by_id.values() if f.answer == answer)


def test_lexical_pairs():
    pairs = lexical_pairs(300, seed=0)
    assert len(pairs) == 300 and len({(p.good, p.bad) for p in pairs}) == 300
    pos = {w.text: w.pos for w in by_pos("adverb") + by_pos("adjective") + by_pos("verb") + by_pos("noun")}
    for p in pairs:
        assert p.kind == "lexical" and p.prompt is None and p.category == pos[p.good]
        assert p.bad.isalpha() and p.bad.isascii() and p.bad not in surface_forms() and p.bad not in english_words()
        good, bad = segments(p.good), segments(p.bad)
        assert len(good) == len(bad) and sum(a != b for a, b in zip(good, bad, strict=True)) == 1, (p.good, p.bad)
    assert set(Counter(p.category for p in pairs)) == {"noun", "verb", "adjective", "adverb"}
    assert lexical_pairs(300, seed=0) == pairs and lexical_pairs(300, seed=1) != pairs


def _differences(p):
    g, b = p.good.split(), p.bad.split()
    return [(x, y) for x, y in zip(g, b, strict=True) if x != y] if len(g) == len(b) else None


def test_syntactic_pairs_differ_as_their_category_says(training_sentences):
    pairs = syntactic_pairs(400, seed=0)
    assert len({p.good for p in pairs}) == 400
    assert Counter(p.category for p in pairs) == {c: 100 for c in (
        "subject_verb_agreement", "determiner_noun_agreement", "word_order", "argument_structure")}
    strict = {w.args: set() for w in by_pos("verb")}
    for w in by_pos("verb"):
        strict[w.args] |= {w.text, w.third}
    for p in pairs:
        diff = _differences(p)
        assert p.good.endswith(" .") and p.bad.endswith(" .") and p.kind == "syntactic"
        assert p.good not in training_sentences and p.bad not in training_sentences
        if p.category == "word_order":
            assert sorted(p.good.split()) == sorted(p.bad.split()) and p.good != p.bad
            continue
        assert diff is not None and len(diff) == 1, p
        (good, bad), = diff
        if p.category == "subject_verb_agreement":
            pairs_ok = {("is", "are"), ("are", "is"), ("am", "is"), ("does", "do"), ("do", "does")}
            assert (good, bad) in pairs_ok or THIRD_TO_BASE.get(good) == bad or THIRD_TO_BASE.get(bad) == good
        elif p.category == "determiner_noun_agreement":
            assert PLURAL_TO_SINGULAR.get(good) == bad or PLURAL_TO_SINGULAR.get(bad) == good
        else:  # argument structure: a strictly (in)transitive verb swapped for the other kind
            assert {good, bad} & strict["t"] and {good, bad} & strict["i"]
            transitive_good = good in strict["t"]
            after = p.good.split()[p.good.split().index(good) + 1]
            takes_prep = after in {w.text for w in by_pos("preposition")}
            assert transitive_good != takes_prep, p
    assert syntactic_pairs(400, seed=0) == pairs and syntactic_pairs(40, seed=5) != pairs[:40]


def test_semantic_pairs(training_sentences):
    pairs = semantic_pairs(150, seed=0)
    assert Counter(p.category for p in pairs) == {"causal": 50, "contradiction": 50, "topic": 50}
    for p in pairs:
        n = p.prompt.count(" .")
        assert 3 <= n <= 4 and p.good.endswith(" .") and p.bad.endswith(" .") and p.good != p.bad
        assert p.prompt + " " + p.good not in training_sentences
        assert not any(s.startswith(p.prompt) for s in training_sentences)
        opening = p.prompt.split()
        protagonist = opening[4] if opening[:2] == ["there", "is"] else opening[2]  # "[there is] a little fox"
        assert protagonist in p.good.split()  # every ending names the protagonist
        assert (protagonist in p.bad.split()) == (p.category != "topic")
        if p.category == "contradiction":
            assert len(_differences(p)) == 1
    assert semantic_pairs(150, seed=0) == pairs
