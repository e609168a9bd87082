"""TinySpeech lexicon, grammar, stories and corpus: sizes, agreement, topic consistency, determinism, disjointness."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from koe.corpus.text import TextItem, read_text_items, write_text_items
from koe.tinyspeech import LEXICON, generate_corpus, generate_text_corpus, lexicon
from koe.tinyspeech.grammar import PRONOUNS, STATEMENTS, reserved, statement
from koe.tinyspeech.lexicon import by_pos, surface_forms
from koe.tinyspeech.questions import QUESTIONS, question
from koe.tinyspeech.stories import SCHEMAS, story

SENTENCES = re.compile(r"([a-z]+ )+[.?]( ([a-z]+ )+[.?])*")  # words, single spaces, " ." / " ?" at sentence ends
THIRD = {w.third for w in by_pos("verb")}
BASE = {w.text for w in by_pos("verb")}
PLURAL = {w.plural for w in by_pos("noun") if w.plural}
SINGULAR = {w.text for w in by_pos("noun") if w.plural}


@pytest.fixture(scope="module")
def corpus() -> list[TextItem]:
    return generate_corpus(1200, seed=0)


def test_lexicon_size_and_parts_of_speech():
    words = {w.text for w in lexicon()}
    assert len(words) >= 300 and lexicon() == list(LEXICON)
    counts = Counter(w.pos for w in LEXICON)
    for pos in ("noun", "verb", "adjective", "determiner", "preposition", "conjunction", "pronoun", "question"):
        assert counts[pos] >= 5, pos
    assert all(f.isalpha() and f.islower() for f in surface_forms())
    forms = {w.text: w for w in by_pos("noun")} | {w.text: w for w in by_pos("verb")}
    assert (forms["fox"].plural, forms["baby"].plural, forms["mouse"].plural) == ("foxes", "babies", "mice")
    assert (forms["watch"].third, forms["carry"].third, forms["go"].third, forms["play"].third) == \
        ("watches", "carries", "goes", "plays")


def test_every_template_makes_well_formed_text():
    rng = random.Random(0)
    for name in STATEMENTS:
        tokens, got = statement(rng, name)
        assert got == name and tokens[-1] == "." and all(t == "." or t.isalpha() for t in tokens)
    for name in QUESTIONS:
        tokens, _ = question(rng, name)
        assert "?" in tokens and tokens[-1] == "."


def _subject_and_verb(tokens: list[str]) -> tuple[str, str] | None:
    """For `[det] [adj] noun verb ...` and `pronoun verb ...` statements: the subject head and the verb."""
    if tokens[0] in PRONOUNS and tokens[1] in THIRD | BASE:
        return tokens[0], tokens[1]
    for i in (1, 2):
        if len(tokens) > i + 1 and tokens[i] in SINGULAR | PLURAL and tokens[i + 1] in THIRD | BASE | {"is", "are"}:
            return tokens[i], tokens[i + 1]
    return None


def test_statements_agree_in_number():
    rng, checked = random.Random(1), 0
    for _ in range(600):
        tokens, _name = statement(rng, rng.choice(["intransitive", "transitive", "adjective", "where"]))
        found = _subject_and_verb(tokens)
        if not found or found[1] in THIRD & BASE:  # "leaves" is both a plural noun and a verb form
            continue
        head, verb = found
        singular = head in SINGULAR or PRONOUNS.get(head) == "3sg"
        assert (verb in THIRD or verb == "is") == singular, " ".join(tokens)
        checked += 1
    assert checked > 300


def test_determiners_agree_with_their_noun():
    rng = random.Random(2)
    for _ in range(500):
        tokens, _name = statement(rng)
        for i, t in enumerate(tokens[:-1]):
            nxt = tokens[i + 1] if tokens[i + 1] not in {w.text for w in by_pos("adjective")} else tokens[i + 2]
            if t in ("this", "that", "a", "an", "every", "one") and nxt in SINGULAR | PLURAL:
                assert nxt in SINGULAR, " ".join(tokens)
            if t in ("these", "those", "many", "two", "three") and nxt in SINGULAR | PLURAL:
                assert nxt in PLURAL, " ".join(tokens)
            if t in ("a", "an"):
                assert t == ("an" if tokens[i + 1][0] in "aeiou" else "a"), " ".join(tokens)


@pytest.mark.parametrize("schema", list(SCHEMAS))
def test_stories_keep_their_topic(schema):
    rng = random.Random(3)
    for _ in range(40):
        s = story(rng, schema)
        noun, setting = s.protagonist.text, s.setting.text
        assert 4 <= len(s.sentences) <= 5 and s.setting.text in s.sentences[0]
        assert noun in s.sentences[0] and noun in s.sentences[s.ending]
        cast = {noun, "he", "she", "it", "they"} | ({s.sentences[1][-2]} if schema == "friend" else set())
        for sentence in s.sentences:  # each sentence is about the protagonist (or, in `friend`, the new friend)
            assert cast & set(sentence), (schema, sentence)
        others = {t for sent in s.sentences for t in sent} & {w.text for w in by_pos("noun") if "person" in w.tags}
        assert others <= {noun, "friends"}, others
        if schema == "journey":
            assert s.sentences[s.ending][-2] == setting


def test_corpus_mixture_and_items(corpus):
    kinds = Counter(i.kind for i in corpus)
    assert set(kinds) == {"statement", "question", "story", "word", "fact"} and len(corpus) == 1200
    assert kinds["fact"] == 300 and all(i.split == "train" for i in corpus)
    assert len({i.id for i in corpus}) == len(corpus)
    for item in corpus:
        assert item.text == item.text.lower() and "  " not in item.text
        assert SENTENCES.fullmatch(item.text), item.text
        if item.kind == "story":
            assert 3 <= item.text.count(" .") <= 5 and item.meta["topic"] in item.text


def test_word_items_never_say_a_lexical_pair_word_or_a_heldout_name(corpus):
    from koe.tinyspeech import facts, lexical_pairs
    from koe.tinyspeech.corpus import isolated_words

    said = Counter(i.text.removesuffix(" .") for i in corpus if i.kind == "word")
    assert len(said) > 50 and all(" " not in w for w in said)
    heard = set(isolated_words())
    tested = {p.good for seed in range(3) for p in lexical_pairs(300, seed)}
    heldout = {f.answer for f in facts() if f.split == "heldout"}
    assert set(said) <= heard and not heard & (tested | heldout)
    assert heard & {f.answer for f in facts() if f.split == "text_only"}  # names of text-only facts are heard
    assert heard & surface_forms() and not heard <= surface_forms()


def test_corpus_facts_cover_every_seen_fact(corpus):
    from koe.tinyspeech import facts

    said = Counter(i.meta["fact_id"] for i in corpus if i.kind == "fact")
    seen = {f.id for f in facts() if f.split != "heldout"}
    assert set(said) == seen  # 300 fact items >= 189 seen facts: each once or twice, heldout never
    assert max(said.values()) - min(said.values()) <= 1
    splits = {i.meta["fact_split"] for i in corpus if i.kind == "fact"}
    assert splits == {"text_and_speech", "text_only"}


def test_corpus_is_deterministic_and_seeded(tmp_path, corpus):
    again = generate_corpus(1200, seed=0)
    assert [i.to_dict() for i in again] == [i.to_dict() for i in corpus]
    other = generate_corpus(1200, seed=1)
    assert [i.text for i in other] != [i.text for i in corpus]
    text = generate_text_corpus(300, seed=0)
    assert all(i.id.startswith("tinytext-") for i in text)
    write_text_items(tmp_path / "c.jsonl", corpus[:50])
    assert read_text_items(tmp_path / "c.jsonl") == corpus[:50]


def test_corpus_never_contains_reserved_sentences(corpus):
    for item in corpus:
        if item.kind in ("statement", "question"):
            assert not reserved(item.text.split(" . ")[0] + (" ." if item.kind == "question" else ""))
