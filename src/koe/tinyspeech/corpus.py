"""The TinySpeech training corpus: a seeded mixture of statements, questions, stories, single words and facts.

    from koe.tinyspeech import generate_corpus
    from koe.corpus.text import write_text_items
    write_text_items("tinyspeech.jsonl", generate_corpus(2000, seed=0))   # 2000

Fact items say every fact that is not `heldout`, in turn, alternating the statement form
(`the capital of randira is felane .`) and the question form (`what is the capital of randira ? felane .`), so
each appears equally often (within one) and all of them appear once the fact share (`fact_fraction * num_items`)
reaches the number of such facts (189 by default: about 760 items at the default 0.25). Fact items carry
`meta["fact_split"]`: whoever turns the corpus into speech must skip `text_only` ones.

Sentences and story openings reserved for evaluation (`grammar.reserved`) never appear here.
"""

from __future__ import annotations

import random

from koe.corpus.text import TextItem
from koe.seed import derive_seed
from koe.tinyspeech.facts import Fact, facts
from koe.tinyspeech.grammar import reserved, statement
from koe.tinyspeech.lexicon import surface_forms
from koe.tinyspeech.pairs import lexical_pair_words
from koe.tinyspeech.questions import question
from koe.tinyspeech.stories import training_story

MIXTURE = {"statement": 0.38, "question": 0.21, "story": 0.26, "word": 0.15}  # of the items that are not facts


def _statement(rng: random.Random) -> tuple[str, dict]:
    while True:
        tokens, template = statement(rng)
        text = " ".join(tokens)
        if not reserved(text):
            return text, {"template": template}


def _question(rng: random.Random) -> tuple[str, dict]:
    while True:
        tokens, template = question(rng)
        context = " ".join(tokens[: tokens.index(".") + 1])
        if not reserved(context):
            return " ".join(tokens), {"template": template}


def _story(rng: random.Random) -> tuple[str, dict]:
    text, s = training_story(rng)
    return text, {"schema": s.schema, "topic": s.protagonist.text, "setting": s.setting.text}


def isolated_words(fact_seed: int = 0) -> list[str]:
    """What `word` items say: lexicon forms that no lexical pair tests (inflected forms, function words, short
    words) and the names of facts that are not heldout. A word said alone is pronounced in citation form (longer,
    fully stressed), as the spoken benchmarks say their words and answers; sentences alone never show a tokenizer
    or a model that form. Pair words are left out so the lexical benchmark's words are never heard alone, and
    heldout names so they stay never heard."""
    names = {n for f in facts(fact_seed) if f.split != "heldout" for n in (f.subject, f.answer)}
    return sorted((surface_forms() - lexical_pair_words()) | names)


def _word(rng: random.Random, vocabulary: list[str]) -> tuple[str, dict]:
    return f"{rng.choice(vocabulary)} .", {}


def _fact(f: Fact, form: str) -> tuple[str, dict]:
    text = f.statement if form == "statement" else f"{f.question} {f.answer} ."
    return text, {"fact_id": f.id, "fact_split": f.split, "relation": f.relation, "form": form}


def _mixture(num_items: int, seed: int, stream: str, prefix: str, fact_fraction: float,
             fact_seed: int) -> list[TextItem]:
    if num_items < 0 or not 0 <= fact_fraction <= 1:
        raise ValueError(f"need num_items >= 0 and 0 <= fact_fraction <= 1, got {num_items}, {fact_fraction}")
    rng = random.Random(derive_seed(seed, stream))
    num_facts = round(fact_fraction * num_items)
    kinds = ["fact"] * num_facts + rng.choices(list(MIXTURE), weights=list(MIXTURE.values()), k=num_items - num_facts)
    rng.shuffle(kinds)
    seen = [f for f in facts(fact_seed) if f.split != "heldout"]
    rng.shuffle(seen)
    vocabulary = isolated_words(fact_seed)
    makers = {"statement": _statement, "question": _question, "story": _story,
              "word": lambda r: _word(r, vocabulary)}
    items, k = [], 0
    for i, kind in enumerate(kinds):
        if kind == "fact":
            rounds, j = divmod(k, len(seen))
            text, meta = _fact(seen[j], ("statement", "question")[(j + rounds) % 2])
            k += 1
        else:
            text, meta = makers[kind](random.Random(derive_seed(seed, stream, i)))
        items.append(TextItem(f"{prefix}-{kind}-{i:06d}", text, kind, "train", meta))
    return items


def generate_corpus(num_items: int, seed: int, fact_fraction: float = 0.25, fact_seed: int = 0) -> list[TextItem]:
    """`num_items` training items (the speech corpus); facts come from `facts(fact_seed)`, the evaluation's facts."""
    return _mixture(num_items, seed, "tinyspeech-corpus", "tiny", fact_fraction, fact_seed)


def generate_text_corpus(num_items: int, seed: int, fact_fraction: float = 0.25,
                         fact_seed: int = 0) -> list[TextItem]:
    """A text-only training corpus: the same mixture drawn from another stream, so it need not repeat the speech
    corpus sentence for sentence (ask for more items than the speech corpus to give text its usual larger share)."""
    return _mixture(num_items, seed, "tinyspeech-text", "tinytext", fact_fraction, fact_seed)
