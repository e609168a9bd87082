"""Answer strategies: sequences, masks, delay alignment, CTC collapse, loss masking, decoding on a 2-layer model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from dialogue_helpers import tiny_model, vocab_of

from koe.strategies import STRATEGIES, get_strategy
from koe.strategies.base import IGNORE, Bundle, Tokens, lm_loss, speech_prompt, text_sequence
from koe.strategies.interleaved import interleave
from koe.strategies.options import StrategyOptions
from koe.strategies.parallel import head_id, streams
from koe.strategies.text_units import ctc_collapse


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    path = tiny_model(tmp_path_factory.mktemp("m"))
    tok, vocab = vocab_of(path)
    return Bundle(AutoModelForCausalLM.from_pretrained(str(path)), tok, vocab, torch.nn.ModuleDict(),
                  torch.device("cpu"))


def tokens(vocab, n_text=3, n_speech=5) -> Tokens:
    u = lambda n, s: [vocab.unit_offset + (s + i) % vocab.total_units for i in range(n)]  # noqa: E731
    return Tokens(u(7, 0), [10, 11, 12, 13], list(range(20, 20 + n_text)), u(n_speech, 3))


def with_extras(bundle: Bundle, strategy) -> Bundle:
    torch.manual_seed(0)
    return Bundle(bundle.lm, bundle.tokenizer, bundle.vocab, strategy.extra_modules(bundle.lm, bundle.vocab),
                  bundle.device)


def test_registry_names_every_strategy():
    assert set(STRATEGIES) == {"chain_of_modality", "interleaved", "parallel", "text_units", "cascade"}
    for name in STRATEGIES:
        assert get_strategy(StrategyOptions(name=name)).name == name


def test_chain_sequence_order_and_prompt_mask(bundle):
    v, t = bundle.vocab, tokens(bundle.vocab)
    seq = get_strategy(StrategyOptions(name="chain_of_modality")).sequence(t, v)
    prompt = speech_prompt(t, v)
    assert seq.input_ids == prompt + t.question_text + t.answer_text + [v.speech_marker_id] + t.answer_speech + \
        [v.eos_id]
    assert seq.labels[: len(prompt)] == [IGNORE] * len(prompt)
    assert seq.labels[len(prompt):] == seq.input_ids[len(prompt):]


def test_interleave_chunks_and_markers():
    text, speech = [1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 15, 16, 17]
    out = interleave(text, speech, 2, 3, speech_marker=98, text_marker=99, eos=0)
    assert out == [1, 2, 98, 10, 11, 12, 99, 3, 4, 98, 13, 14, 15, 99, 5, 98, 16, 17, 0]
    # text used up early: the rest of the speech follows in one run
    assert interleave([1], [10, 11, 12, 13, 14], 2, 2, 98, 99, 0) == [1, 98, 10, 11, 12, 13, 14, 0]
    # 13:26 default keeps a short answer in one text chunk then all of its speech
    assert interleave([1, 2], [10, 11], 13, 26, 98, 99, 0) == [1, 2, 98, 10, 11, 0]


@pytest.mark.parametrize("delay", [0, 2, 5])
def test_parallel_streams_align_with_delay(bundle, delay):
    v, t = bundle.vocab, tokens(bundle.vocab, n_text=3, n_speech=4)
    text, speech, text_labels, speech_labels = streams(t, v, delay)
    p = len(speech_prompt(t, v))
    assert len(text) == len(speech) == len(text_labels) == len(speech_labels)
    assert speech[: p + delay] == [v.pad_id] * (p + delay)
    assert speech[p + delay: p + delay + 4] == t.answer_speech  # the first unit sits `delay` steps after the text
    assert text[p: p + 3] == t.answer_text and text[p + 3] == v.eos_id
    assert set(text[p + 4:]) <= {v.pad_id}  # text padded with pad up to the speech length
    assert text_labels[:p] == [IGNORE] * p and speech_labels[:p] == [IGNORE] * p
    k = v.total_units
    assert speech_labels[p: p + delay] == [k + 1] * delay  # the speech head learns to wait (pad)
    assert speech_labels[p + delay + 4] == k  # then eos
    assert head_id(t.answer_speech[0], v, k) == t.answer_speech[0] - v.unit_offset


def test_parallel_loss_counts_both_streams_and_heads_shape(bundle):
    s = get_strategy(StrategyOptions(name="parallel", delay=1))
    b = with_extras(bundle, s)
    seqs = [s.sequence(tokens(b.vocab, 3, n), b.vocab) for n in (4, 6)]
    loss, count = s.loss(b, seqs)
    expected = sum(sum(x != IGNORE for x in q.labels[1:]) + sum(x != IGNORE for x in q.extra["speech_labels"][1:])
                   for q in seqs)
    assert count == expected and math.isfinite(float(loss))
    ids = torch.tensor([seqs[0].input_ids])
    text_logits, speech_logits, _ = s.forward(b, ids, torch.tensor([seqs[0].extra["speech_ids"]]))
    assert speech_logits.shape == (1, ids.shape[1], b.vocab.total_units + 2)
    assert text_logits.shape[:2] == (1, ids.shape[1])


def test_ctc_collapse_merges_repeats_and_drops_blanks():
    assert ctc_collapse([1, 1, 9, 1, 2, 2, 9, 9, 3], blank=9) == [1, 1, 2, 3]
    assert ctc_collapse([9, 9], blank=9) == []


def test_text_units_frames_shape_and_ctc_gradient(bundle):
    s = get_strategy(StrategyOptions(name="text_units", upsample=4))
    b = with_extras(bundle, s)
    seqs = [s.sequence(tokens(b.vocab, n, 5), b.vocab) for n in (2, 3)]
    h = b.lm.get_decoder()(input_ids=torch.tensor([seqs[1].input_ids])).last_hidden_state
    frames = s._frames(b, h, [seqs[1].extra["text_start"]], [3])
    assert frames.shape == (1, 12, b.vocab.total_units + 1)
    loss, count = s.loss(b, seqs)
    assert count == sum(len(x.extra["units"]) for x in seqs) + sum(sum(y != IGNORE for y in q.labels) for q in seqs)
    loss.backward()
    assert b.extras["unit_decoder"].out.weight.grad.abs().sum() > 0


def test_prompt_positions_carry_no_loss(bundle):
    """The loss equals the hand-computed cross-entropy over response targets only; prompt targets add nothing."""
    v, t = bundle.vocab, tokens(bundle.vocab)
    seq = get_strategy(StrategyOptions(name="interleaved")).sequence(t, v)
    loss, count = lm_loss(bundle.lm, [seq], bundle.device)
    p = len(speech_prompt(t, v))
    assert count == len(seq.input_ids) - p
    with torch.no_grad():
        logits = bundle.lm(input_ids=torch.tensor([seq.input_ids])).logits[0]
        manual = sum(F.cross_entropy(logits[i - 1: i], torch.tensor([seq.input_ids[i]]), reduction="sum")
                     for i in range(p, len(seq.input_ids)))
    assert float(loss) == pytest.approx(float(manual), rel=1e-5)
    text = text_sequence(t, v)
    assert text.labels[: 1 + len(t.question_text)] == [IGNORE] * (1 + len(t.question_text))


@pytest.mark.parametrize("name", ["chain_of_modality", "interleaved", "parallel", "text_units"])
def test_answer_runs_and_respects_modalities(bundle, name):
    s = get_strategy(StrategyOptions(name=name, text_chunk=2, speech_chunk=3, delay=1))
    b = with_extras(bundle, s)
    ans = s.answer(b, tokens(b.vocab), None, None, max_new_tokens=30)
    assert isinstance(ans.text, str)
    assert all(0 <= u < b.vocab.total_units for u in ans.units)
    if ans.units:
        assert ans.first_audio_tokens is not None and 1 <= ans.first_audio_tokens <= 31
        assert ans.first_audio_s is not None and ans.first_audio_s >= 0
    if name == "parallel" and ans.units:
        assert ans.first_audio_tokens >= 2  # the delay: no unit at the first step
