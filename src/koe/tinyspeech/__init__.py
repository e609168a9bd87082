"""TinySpeech: koe's built-in synthetic English-like language, for training and evaluating tiny speech LMs.

    from koe.tinyspeech import generate_corpus, facts, fact_questions, syntactic_pairs
    items = generate_corpus(2000, seed=0)          # TextItems: statements, questions, stories, facts
    pairs = syntactic_pairs(400, seed=1)           # sBLIMP-style minimal pairs, never copies of corpus items

~450 real English words, present tense with agreement, a few dozen templates and four story schemas, plus 210
invented facts split into text_and_speech / text_only / heldout. All functions are pure and deterministic given
their seed. The language, pair kinds and fact splits: docs/tinyspeech.md.
"""

from koe.tinyspeech.corpus import generate_corpus, generate_text_corpus
from koe.tinyspeech.facts import Fact, FactQuestion, fact_questions, facts
from koe.tinyspeech.lexicon import LEXICON, Word, lexicon
from koe.tinyspeech.pairs import MinimalPair, lexical_pairs, semantic_pairs, syntactic_pairs

__all__ = [
    "LEXICON", "Fact", "FactQuestion", "MinimalPair", "Word", "fact_questions", "facts", "generate_corpus",
    "generate_text_corpus", "lexical_pairs", "lexicon", "semantic_pairs", "syntactic_pairs",
]
