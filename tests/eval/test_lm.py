"""Model-side scoring on a tiny random Qwen2: masks, conditional vs whole, batching, units-only models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_helpers import tiny_model

from koe.bench.items import BenchItem, Side
from koe.eval.config import EvalConfig
from koe.eval.tasks import evaluate_items
from koe.model.speech_text_lm import FULL, NONE, SPEECH, TEXT, Request, SpeechTextLM
from koe.stage import StageReport

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return SpeechTextLM.load(tiny_model(tmp_path_factory.mktemp("m")), device="cpu")


def _expected(lm: SpeechTextLM, tokens: list[int], positions: list[int], allowed: np.ndarray | None) -> np.ndarray:
    """Log-probs computed independently: one unbatched forward, a manual masked log-softmax in float64."""
    logits = lm.model(input_ids=torch.tensor([tokens])).logits[0].detach().double().numpy()
    out = []
    for p in positions:
        row = logits[p - 1].copy()
        if allowed is not None:
            row[~allowed] = -np.inf
        row = row - row.max()
        out.append(row[tokens[p]] - np.log(np.exp(row).sum()))
    return np.array(out)


def test_masked_log_probs_sum_to_one_over_the_allowed_subset(lm):
    rows = torch.randn(5, lm.num_logits)
    v = lm.vocab
    for code, allowed in ((SPEECH, lm.allowed[SPEECH]), (TEXT, lm.allowed[TEXT])):
        lp = lm._masked_log_softmax(rows, code)
        assert torch.allclose(torch.logsumexp(lp[:, allowed], dim=-1), torch.zeros(5), atol=1e-5)
        assert torch.isinf(lp[:, ~allowed]).all()
    speech = lm.allowed[SPEECH]
    assert speech[v.unit_offset: v.unit_offset + v.num_units].all() and speech[v.eos_id]
    assert not speech[lm.text_ids("dog")].any()
    assert not lm.allowed[TEXT][v.unit_offset: v.unit_offset + v.num_units].any()


def test_conditional_and_whole_scores_match_independent_computation(lm):
    units = np.array([3, 7, 1, 0, 12])
    prompt = lm.text_ids("the red dog")
    ending = lm.speech_ids(units)
    tokens = [lm.marker("text"), *prompt, lm.marker("speech"), *ending]
    masks = [NONE] + [TEXT] * len(prompt) + [NONE] + [SPEECH] * len(ending)
    lp = lm.score([Request(tuple(tokens), tuple(masks))])[0]
    p_pos = list(range(1, 1 + len(prompt)))
    c_pos = list(range(2 + len(prompt), len(tokens)))
    speech_allowed = lm.allowed[SPEECH].numpy()
    text_allowed = lm.allowed[TEXT].numpy()
    np.testing.assert_allclose(lp[c_pos], _expected(lm, tokens, c_pos, speech_allowed), atol=1e-5)
    np.testing.assert_allclose(lp[p_pos], _expected(lm, tokens, p_pos, text_allowed), atol=1e-5)
    assert np.isnan(lp[0]) and np.isnan(lp[1 + len(prompt)])  # markers are not scored
    full = lm.score([Request(tuple(tokens), (NONE,) + (FULL,) * (len(tokens) - 1))])[0]
    np.testing.assert_allclose(full[c_pos], _expected(lm, tokens, c_pos, None), atol=1e-5)
    assert (full[c_pos] < lp[c_pos]).all()  # renormalising over a subset raises every probability


def test_batching_does_not_change_scores(lm):
    rng = np.random.default_rng(0)
    reqs = []
    for n in (3, 11, 6, 20):
        toks = [lm.marker("speech"), *lm.speech_ids(rng.integers(0, 16, n))]
        reqs.append(Request(tuple(toks), (NONE,) + (SPEECH,) * n))
    alone = [lm.score([r])[0] for r in reqs]
    together = lm.score(reqs, batch_tokens=10_000)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a[1:], b[1:], atol=1e-5)


def _items() -> list[BenchItem]:
    out = []
    for g in range(3):
        for v in ("v1", "v2"):
            out.append(BenchItem(id=f"g{g}@{v}", group=f"g{g}", benchmark="b", task="cloze", source="s",
                                 category="c", voice=v, prompt=Side("the red dog", f"p{g}{v}"),
                                 candidates=[Side("runs", f"a{g}{v}"), Side("sleeps", f"b{g}{v}")], label=0))
    return out


def _units(items: list[BenchItem]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {s.audio: rng.integers(0, 16, 6).astype(np.int32) for it in items for s in it.sides()}


def test_cloze_conditions_and_variants(lm):
    items = _items()
    cfg = EvalConfig(model="x", bench=["b"], bootstrap=50, qa_generate=False)
    res = evaluate_items(items, lm, _units(items), cfg, StageReport("eval"), "b")["conditions"]
    for cond in ("speech_speech", "text_text", "text_speech", "speech_text"):
        for key in (cond, cond + "/whole"):
            assert res[key]["num_groups"] == 3 and res[key]["num_items"] == 6
    assert res["text_text"]["accuracy"] in (0.0, 1.0)  # the text sides are equal for every voice


def test_units_only_model_reports_text_as_na(tmp_path):
    lm = SpeechTextLM.load(tiny_model(tmp_path / "m", units_only=True), device="cpu")
    assert not lm.has_text
    items = _items()
    cfg = EvalConfig(model="x", bench=["b"], bootstrap=50, qa_generate=False)
    res = evaluate_items(items, lm, _units(items), cfg, StageReport("eval"), "b")["conditions"]
    assert res["speech_speech"]["num_groups"] == 3
    for cond in ("text_text", "text_speech", "speech_text"):
        assert res[cond]["status"] == "n/a"


def test_too_long_items_fail_alone(lm):
    items = _items()
    units = _units(items)
    units[items[0].candidates[0].audio] = np.zeros(600, dtype=np.int32)  # one side longer than max_length=512
    report = StageReport("eval")
    cfg = EvalConfig(model="x", bench=["b"], bootstrap=20, qa_generate=False, modalities=["speech"])
    res = evaluate_items(items, lm, units, cfg, report, "b")["conditions"]
    assert [f.item for f in report.failures] == ["b/g0@v1/speech_speech"]
    assert res["speech_speech"]["num_items"] == 5 and res["speech_speech"]["num_groups"] == 3
