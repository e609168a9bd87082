"""Interleaving on hand-made alignments: unit assignment, speech word choice, markers, and no word lost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from koe.data.documents import render, split_segments
from koe.data.interleave import align_units, choose_speech_words, interleaved_segments, sentence_ranges
from koe.data.shards import MARKER, SPEECH, TEXT
from koe.data.vocab import SpeechVocab

VOCAB = SpeechVocab(text_vocab_size=1000, unit_offset=1000, num_units=50, speech_marker_id=1050,
                    text_marker_id=1051, eos_id=0, pad_id=1)
FRAME_RATE = 50.0  # 20 ms frames


def fake_encode(texts: list[str]) -> list[list[int]]:
    """A word-level 'tokenizer' that keeps the words recoverable: word w -> 100 + its index in WORDS, space -> 2."""
    out = []
    for t in texts:
        assert t.startswith(" ")
        out.append([WORDS.index(w) + 100 for w in t[1:].split(" ")])
    return out


WORDS = [f"w{i}" for i in range(400)]


def make_utterance(rng: np.random.Generator, n_words: int):
    """Words with pauses between some of them, and dedup units whose durations tile the whole utterance."""
    spans, t = [], 0.1  # 100 ms of leading silence
    for i in range(n_words):
        dur = rng.uniform(0.1, 0.5)
        spans.append((WORDS[i], round(t, 2), round(t + dur, 2)))
        t += dur + (0.2 if rng.random() < 0.2 else 0.0)
    frames = round((t + 0.15) * FRAME_RATE)  # trailing silence
    durations = []
    while sum(durations) < frames:
        durations.append(int(rng.integers(1, 6)))
    units = rng.integers(0, 50, size=len(durations))
    return spans, units, np.array(durations)


def test_units_belong_to_the_word_containing_their_centre():
    # frames: unit0 [0,5) centre 0.05 s, unit1 [5,10) 0.15 s, unit2 [10,12) 0.22 s, unit3 [12,30) 0.42 s
    durations = np.array([5, 5, 2, 18])
    spans = [("a", 0.1, 0.2), ("b", 0.2, 0.3), ("c", 0.35, 0.5)]
    attach = align_units(durations, spans, FRAME_RATE, "attach")
    assert (attach.units_leading, attach.units_inner, attach.units_trailing) == (1, 0, 0)
    assert list(attach.unit_start) == [0, 2, 3] and list(attach.unit_end) == [2, 3, 4]
    drop = align_units(durations, spans, FRAME_RATE, "drop")
    assert drop.units_dropped == 1 and list(drop.kept) == [1, 2, 3]
    assert list(drop.unit_start) == [0, 1, 2] and list(drop.unit_end) == [1, 2, 3]


def test_gap_units_attach_to_the_word_before_and_short_words_are_unspeakable():
    durations = np.array([10, 10, 10, 10])  # centres 0.1, 0.3, 0.5, 0.7 s
    spans = [("a", 0.0, 0.2), ("tiny", 0.21, 0.22), ("b", 0.4, 0.6)]
    aligned = align_units(durations, spans, FRAME_RATE, "attach")
    assert (aligned.units_inner, aligned.units_trailing) == (1, 1)
    assert list(aligned.speakable) == [True, False, True]
    assert list(aligned.unit_end - aligned.unit_start) == [2, 0, 2]  # the 0.3 s pause unit goes to "a", not "tiny"
    speech = choose_speech_words(3, "coin", 0.99, 10, np.random.default_rng(0), speakable=aligned.speakable)
    assert not speech[1]


@pytest.mark.parametrize("method", ["poisson", "coin", "sentence"])
def test_interleaved_documents_keep_every_word_once(method):
    rng = np.random.default_rng(1)
    for k in range(40):
        spans, units, durations = make_utterance(rng, int(rng.integers(1, 40)))
        if method == "sentence":
            spans = [(w + ("." if i % 4 == 3 else ""), s, e) for i, (w, s, e) in enumerate(spans)]
            words_seen = [w.rstrip(".") for w, _, _ in spans]
        aligned = align_units(durations, spans, FRAME_RATE, "attach")
        speech = choose_speech_words(aligned.num_words, method, 0.3, 10.0, np.random.default_rng(k),
                                     speakable=aligned.speakable, words=aligned.words)
        encode = fake_encode if method != "sentence" else (lambda ts: fake_encode([t.replace(".", "") for t in ts]))
        segments = interleaved_segments(aligned, units + VOCAB.unit_offset, speech, encode)
        # spans alternate and tile the word sequence
        assert segments[0].word_start == 0 and segments[-1].word_end == len(spans)
        for a, b in itertools.pairwise(segments):
            assert a.word_end == b.word_start and a.modality != b.modality
        words = []
        for seg in segments:
            if seg.modality == TEXT:
                words += [WORDS[t - 100] for t in seg.tokens]
            else:
                assert speech[seg.word_start:seg.word_end].all()
                # the units of a speech span are exactly its words' units
                expected = units[aligned.unit_start[seg.word_start]:aligned.unit_end[seg.word_end - 1]]
                np.testing.assert_array_equal(seg.tokens, expected + VOCAB.unit_offset)
                words += [w for w, _, _ in spans[seg.word_start:seg.word_end]]
        expected_words = words_seen if method == "sentence" else [w for w, _, _ in spans]
        assert [w.rstrip(".") for w in words] == expected_words
        # every unit is in exactly one word (attach mode), so all speech is accounted for
        assert aligned.unit_end[-1] == len(units) and aligned.unit_start[0] == 0


def test_markers_at_start_and_every_switch_only():
    rng = np.random.default_rng(2)
    spans, units, durations = make_utterance(rng, 30)
    aligned = align_units(durations, spans, FRAME_RATE, "attach")
    speech = choose_speech_words(30, "coin", 0.5, 10, np.random.default_rng(3), speakable=aligned.speakable)
    segments = interleaved_segments(aligned, units + VOCAB.unit_offset, speech, fake_encode)
    doc = render(segments, VOCAB)
    assert doc.tokens[-1] == VOCAB.eos_id and doc.modality[-1] == MARKER
    body_tokens, body_mod = doc.tokens[:-1], doc.modality[:-1]
    marker_pos = np.flatnonzero(body_mod == MARKER)
    content = body_mod[body_mod != MARKER]
    switches = 1 + int(np.sum(content[1:] != content[:-1]))
    assert len(marker_pos) == switches == len(segments) > 2
    assert marker_pos[0] == 0
    for p in marker_pos:
        following = body_mod[p + 1]
        assert body_tokens[p] == (VOCAB.speech_marker_id if following == SPEECH else VOCAB.text_marker_id)
        assert p == 0 or body_mod[p - 1] != following
    unit_mask = (body_tokens >= VOCAB.unit_offset) & (body_tokens < VOCAB.unit_offset + 50)
    assert np.array_equal(unit_mask, body_mod == SPEECH)


def test_poisson_speech_fraction_and_span_lengths():
    rng = np.random.default_rng(4)
    total = speech_total = 0
    span_lengths = []
    for k in range(400):
        n = int(rng.integers(20, 120))
        speech = choose_speech_words(n, "poisson", 0.3, 10.0, np.random.default_rng(k))
        total += n
        speech_total += speech.sum()
        edges = np.diff(np.concatenate([[0], speech.astype(int), [0]]))
        span_lengths += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert abs(speech_total / total - 0.3) < 0.01
    # capped at the words still to choose, so a bit below lambda, but clearly Poisson(10)-sized
    assert 6 < np.mean(span_lengths) < 10.5
    assert min(span_lengths) >= 1


@pytest.mark.parametrize("method", ["poisson", "coin"])
def test_speech_fraction_holds_for_short_utterances(method):
    fractions = [choose_speech_words(5, method, 0.3, 10.0, np.random.default_rng(k)).mean() for k in range(3000)]
    assert abs(np.mean(fractions) - 0.3) < 0.02


def test_sentence_ranges():
    assert sentence_ranges(["a", "b.", "c", "d?", "e"]) == [(0, 2), (2, 4), (4, 5)]
    speech = choose_speech_words(5, "sentence", 0.5, 10, np.random.default_rng(0), words=["a", "b.", "c", "d?", "e"])
    assert speech[0] == speech[1] and speech[2] == speech[3]


def test_long_documents_split_at_span_boundaries():
    rng = np.random.default_rng(5)
    spans, units, durations = make_utterance(rng, 60)
    aligned = align_units(durations, spans, FRAME_RATE, "attach")
    speech = choose_speech_words(60, "poisson", 0.3, 10, np.random.default_rng(6), speakable=aligned.speakable)
    segments = interleaved_segments(aligned, units + VOCAB.unit_offset, speech, fake_encode)
    longest = max(len(s.tokens) for s in segments)
    pieces, cut = split_segments(segments, max_len=longest + 2)
    assert cut == 0 and len(pieces) > 1
    assert [s for p in pieces for s in p] == segments  # whole spans, in order
    for p in pieces:
        doc = render(p, VOCAB)
        assert len(doc) <= longest + 2 and doc.modality[0] == MARKER and doc.tokens[-1] == VOCAB.eos_id
    pieces, cut = split_segments(segments, max_len=10)
    assert cut > 0
    for p in pieces:
        assert len(render(p, VOCAB)) <= 10
    content = np.concatenate([s.tokens for p in pieces for s in p])
    np.testing.assert_array_equal(content, np.concatenate([s.tokens for s in segments]))
