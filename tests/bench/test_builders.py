"""Builders: drafts per kind, pseudo-words, and the written benchmark directory (items, audio, voices)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from koe.bench.build import run_bench_build
from koe.bench.config import BenchBuildConfig
from koe.bench.items import read_info, read_items
from koe.bench.lexical import _CLASS_OF, PHONE_CLASSES, make_pseudoword, phone_key
from koe.bench.registry import tiny_pair_drafts
from koe.bench.semantic import storycloze_drafts

STORY_HEADER = ("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
                "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n")


def write_stories(path: Path, n: int = 4) -> Path:
    endings = [("The dog was happy.", f"The sky fell {i}.") for i in range(n)]
    endings = [e if i % 2 == 0 else e[::-1] for i, e in enumerate(endings)]  # right ending 1, 2, 1, 2 ...
    rows = [f"s{i},Tom had a dog {i}.,It was brown.,He fed it.,It slept.,{a},{b},{1 + i % 2}"
            for i, (a, b) in enumerate(endings)]
    path.write_text(STORY_HEADER + "\n".join(rows) + "\n")
    return path


def test_pseudowords_substitute_within_class_and_avoid_real_words():
    phones = ["k", "'a", "t"]
    lexicon = {phone_key(p) for p in (["k", "'a", "p"], ["b", "'a", "t"])}
    for seed in range(20):
        out = make_pseudoword(phones, np.random.default_rng(seed), lexicon)
        diff = [(a, b) for a, b in zip(phones, out, strict=True) if a != b]
        assert len(out) == 3 and len(diff) == 1
        a, b = (x.lstrip("',") for x in diff[0])
        assert _CLASS_OF[a] == _CLASS_OF[b] and phone_key(out) not in lexicon
        assert out[1].startswith("'")  # stress kept
    long = make_pseudoword(["s", "t", "r", "'E", "N", "T"], np.random.default_rng(0), set())
    assert sum(a != b for a, b in zip(long, ["s", "t", "r", "'E", "N", "T"], strict=True)) == 2
    assert set(PHONE_CLASSES["vowel"]).isdisjoint(PHONE_CLASSES["nasal"])


def test_storycloze_s_and_t_variants(tmp_path):
    cfg = BenchBuildConfig(storycloze=write_stories(tmp_path / "sc.csv"), seed=3)
    ssc = storycloze_drafts(cfg, topical=True)
    tsc = storycloze_drafts(cfg, topical=False)
    assert [d.label for d in ssc] == [0, 1, 0, 1]
    assert ssc[1].candidates[1].text == "The dog was happy."
    right_endings = {"The dog was happy."}
    for d, s in zip(tsc, ssc, strict=True):
        assert d.prompt == s.prompt and d.candidates[d.label] == s.candidates[s.label]
        wrong = d.candidates[1 - d.label].text
        assert wrong in right_endings  # another story's right ending, never this story's real wrong one
    assert [d.candidates for d in tsc] == [d.candidates for d in storycloze_drafts(cfg, topical=False)]


def test_tinyspeech_pairs_become_pair_or_cloze_drafts(monkeypatch):
    import koe.tinyspeech

    @dataclasses.dataclass
    class MinimalPair:
        id: str
        kind: str
        category: str
        good: str
        bad: str
        prompt: str | None

    pairs = [MinimalPair("a1", "semantic", "story", "it runs", "it sings", "the dog sees a ball"),
             MinimalPair("a2", "semantic", "word", "dog", "dag", None)]
    monkeypatch.setattr(koe.tinyspeech, "semantic_pairs", lambda num, seed: pairs[:num], raising=False)
    drafts = tiny_pair_drafts("semantic_pairs", BenchBuildConfig(tiny_num=2))
    assert [d.task for d in drafts] == ["cloze", "pair"]
    assert drafts[0].prompt.text == "the dog sees a ball" and drafts[0].candidates[0].text == "it runs"


def test_build_writes_items_audio_and_voices(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("cat 30\ndog 20\nbanana 5\n")
    qa = tmp_path / "tqa.jsonl"
    qa.write_text("".join(json.dumps({"context": f"Question: What is item {i}?\nAnswer:", "answer": a,
                                      "aliases": [a.lower()]}) + "\n"
                          for i, a in enumerate(["Red", "Blue", "Green", "Pink", "Gold"])))
    voices = ["en-us", "en+m3"]
    cfg = BenchBuildConfig(out_dir=tmp_path / "bench", tinyspeech=False, voices=voices, wordlist=words,
                           storycloze=write_stories(tmp_path / "sc.csv", 3), triviaqa=qa, qa_num=3,
                           qa_num_candidates=3)
    report = run_bench_build(cfg)
    assert report.exit_code == 0, report.render()
    names = sorted(p.name for p in cfg.out_dir.iterdir() if p.is_dir())
    assert names == ["lexical-wordlist", "qa-triviaqa", "semantic-sstorycloze", "semantic-tstorycloze"]
    qa_items = read_items(cfg.out_dir / "qa-triviaqa")
    assert len(qa_items) == 3 * len(voices) and {it.voice for it in qa_items} == set(voices)
    it = qa_items[0]
    assert it.task == "qa" and it.prompt.text.startswith("What is item") and len(it.candidates) == 3
    assert it.references[0] == it.candidates[it.label].text
    for bench in names:
        info = read_info(cfg.out_dir / bench)
        assert info.voices == voices and info.num_items == len(read_items(cfg.out_dir / bench))
        for item in read_items(cfg.out_dir / bench):
            for side in item.sides():
                audio, sr = sf.read(cfg.out_dir / bench / side.audio)
                assert sr == 16_000 and len(audio) > 1600
    lex = read_items(cfg.out_dir / "lexical-wordlist")
    assert all(it.candidates[1].text is None and it.candidates[1].phonemes for it in lex)
    assert {it.category for it in lex} == {"freq-high", "freq-mid", "freq-low"}
    # the same side spoken by two voices gives two files; a rerun with the same config skips the work
    assert lex[0].candidates[0].audio != lex[1].candidates[0].audio
    again = run_bench_build(cfg)
    assert again.items_out == report.items_out and (cfg.out_dir / "semantic-sstorycloze" / ".done").exists()
