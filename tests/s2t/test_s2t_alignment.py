"""Stage-I alignment terms (koe.s2t.alignment): each on hand-computed tensors, their wiring in SpeechAwareLM, and a
tiny align + sft run that logs both."""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
import torch
from s2t_fixtures import tone

from koe.config import load_config
from koe.s2t.alignment import explicit_cosine, implicit_kl, mean_pool, target_logits
from koe.s2t.model import Example, SpeechAwareLM
from koe.s2t.records import QARecord
from koe.s2t.train import S2TTrainConfig, run_s2t_train

QUESTION = "what is the capital of randira ?"


def test_implicit_kl_is_zero_for_equal_distributions_and_the_hand_value_otherwise():
    teacher = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    assert float(implicit_kl(teacher + 3.0, teacher)) == pytest.approx(0.0, abs=1e-7)  # softmax ignores a shift
    student = torch.log(torch.tensor([[0.25, 0.75], [0.9, 0.1]]))
    # row 1: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3); row 2: 0; mean over the 2 rows
    assert float(implicit_kl(student, teacher)) == pytest.approx(0.25 * math.log(4 / 3), rel=1e-5)
    with pytest.raises(ValueError, match="share their targets"):
        implicit_kl(student[:1], teacher)


def test_implicit_kl_sends_no_gradient_to_the_teacher():
    student, teacher = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5, requires_grad=True)
    loss = implicit_kl(student, teacher)
    assert float(loss.detach()) > 0
    loss.backward()
    assert student.grad is not None and teacher.grad is None


def test_target_logits_takes_the_positions_that_predict_labelled_tokens():
    logits = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 4, 1)  # value = 4 * item + position
    labels = torch.tensor([[-100, -100, 7, 8], [-100, 5, -100, -100]])
    assert target_logits(logits, labels)[:, 0].tolist() == [1.0, 2.0, 4.0]  # (item 0: pos 1, 2), (item 1: pos 0)


def test_explicit_cosine_is_zero_when_pooled_vectors_are_parallel_one_when_orthogonal():
    speech = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 100.0]]])  # third frame is padding (length 2)
    lengths = torch.tensor([2])
    assert mean_pool(speech, lengths).tolist() == [[2.0, 0.0]]
    parallel = [torch.tensor([[1.0, 1.0], [1.0, -1.0]])]  # mean (1, 0): same direction, other norm
    assert float(explicit_cosine(speech, lengths, parallel)) == pytest.approx(0.0, abs=1e-6)
    orthogonal = [torch.tensor([[0.0, 2.0]])]
    assert float(explicit_cosine(speech, lengths, orthogonal)) == pytest.approx(1.0, abs=1e-6)
    both = explicit_cosine(speech.repeat(2, 1, 1), torch.tensor([2, 2]), parallel + orthogonal)
    assert float(both) == pytest.approx(0.5, abs=1e-6)  # mean over items


def _examples() -> list[Example]:
    return [Example("answer :", tone(1.0), target="the capital of randira is felane .", transcript=QUESTION),
            Example("answer :", prefix="what is the capital of moro ?", target="tasi ."),
            Example("answer :", tone(0.8, 300.0), target="moro .", transcript="who is the king of tasi ?")]


@pytest.fixture()
def model(tiny_dirs):
    torch.manual_seed(0)
    m = SpeechAwareLM.create(tiny_dirs["whisper"], tiny_dirs["llm"])
    m.set_llm_trainable(True)
    return m.eval()  # no dropout: two forward passes of the same inputs agree


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_zero_weights_leave_loss_and_gradients_as_before(model):
    examples = _examples()
    before, parts_before = model.loss(model.batch(examples))  # the pre-alignment path (echo training's L_S2T)
    before.backward()
    grads_before = _grads(model)
    model.zero_grad(set_to_none=True)
    after, parts_after = model(examples, implicit_weight=0.0, explicit_weight=0.0)
    after.backward()
    assert parts_after == parts_before and set(parts_after) == {"ce", "ctc"}
    assert float(after.detach()) == float(before.detach())
    grads_after = _grads(model)
    assert grads_after.keys() == grads_before.keys()
    assert all(torch.equal(grads_after[k], grads_before[k]) for k in grads_before)


def test_weighted_terms_add_to_the_loss_and_are_logged(model):
    examples = [_examples()[0], _examples()[2]]
    loss, parts = model(examples, implicit_weight=0.5, explicit_weight=2.0)
    assert set(parts) == {"ce", "ctc", "implicit", "explicit"}
    assert parts["implicit"] > 0 and 0 < parts["explicit"] <= 2
    expected = parts["ce"] + 0.3 * parts["ctc"] + 0.5 * parts["implicit"] + 2.0 * parts["explicit"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    _, parts = model([_examples()[1]], implicit_weight=0.5, explicit_weight=2.0)
    assert set(parts) == {"ce"}  # nothing to align without speech


def test_explicit_term_moves_the_adapter_not_the_embedding_table(model):
    model.explicit_loss(model.batch(_examples())).backward()
    assert model.adapter.proj.weight.grad is not None
    assert model.llm.get_input_embeddings().weight.grad is None


def test_both_terms_vanish_when_the_speech_embeds_are_the_transcript(model, monkeypatch):
    """Pairing check: speech that the adapter turns into exactly the transcript's embeddings gives the LLM the
    text twin's inputs, so p_speech = p_text (KL 0) and the pooled vectors coincide (cos 1), item by item, with a
    text-only item between the two speech items."""
    embed = model.llm.get_input_embeddings()
    transcripts = [QUESTION, "who is the king of tasi ?"]

    def as_transcript(wavs):
        emb = [embed(torch.tensor(model.text_ids(t))) for t in transcripts[: len(wavs)]]
        lengths = torch.tensor([e.shape[0] for e in emb])
        padded = torch.nn.utils.rnn.pad_sequence(emb, batch_first=True)
        return padded, lengths, torch.zeros(len(wavs), padded.shape[1], model.vocab_size + 1), lengths

    monkeypatch.setattr(model, "encode_speech", as_transcript)
    _, parts = model(_examples(), implicit_weight=1.0, explicit_weight=1.0)
    assert parts["implicit"] == pytest.approx(0.0, abs=1e-5)
    assert parts["explicit"] == pytest.approx(0.0, abs=1e-5)


def test_teacher_runs_in_eval_mode_and_restores_training(model):
    model.train()
    rows, p_text = model.text_teacher(_examples())
    assert rows == [0, 2] and not p_text.requires_grad
    n_targets = len(model.text_ids("the capital of randira is felane .")) + len(model.text_ids("moro ."))
    assert p_text.shape[0] == n_targets + 2  # each target's tokens and its eos
    assert model.llm.training


def test_config_rejects_negative_weights():
    cfg = S2TTrainConfig(init="x", implicit_weight=-1.0, explicit_weight=-0.5)
    assert {"implicit_weight=-1.0 must be >= 0", "explicit_weight=-0.5 must be >= 0"} <= set(cfg.validate())


def _qa(tmp_path) -> str:
    recs = []
    for k, (subj, ans) in enumerate([("randira", "felane"), ("moro", "tasi")]):
        q, a = tmp_path / f"{k}q.wav", tmp_path / f"{k}a.wav"
        sf.write(q, tone(1.0, 200 + 40 * k), 16_000)
        sf.write(a, tone(0.8, 300 + 40 * k), 16_000)
        recs.append(QARecord(f"{k}", f"f{k}", "text_and_speech", "train", "a", f"what is the capital of {subj} ?",
                             str(q), f"the capital of {subj} is {ans} .", ans, ["felane", "tasi"], str(a)))
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs))
    return str(path)


def test_tiny_align_and_sft_runs_log_both_terms(tiny_dirs, tmp_path):
    common = [f"qa={_qa(tmp_path)}", "steps=2", "batch_size=2", "log_every=1", "device=cpu",
              "implicit_weight=0.5", "explicit_weight=0.5"]
    runs = {"align": [f"encoder={tiny_dirs['whisper']}", f"llm={tiny_dirs['llm']}"],
            "sft": [f"init={tmp_path / 'align' / 'final'}", "text_fraction=0", "lora_rank=2", "lora_alpha=4"]}
    for stage, extra in runs.items():
        out = tmp_path / stage
        report = run_s2t_train(load_config(S2TTrainConfig, None, [*common, *extra, f"stage={stage}",
                                                                  f"out_dir={out}"]))
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [1, 2]
        assert all(x["implicit"] > 0 and x["explicit"] > 0 for x in lines), lines
        summary = json.loads((out / "s2t_train_summary.json").read_text())
        blob = json.dumps(summary)
        assert '"implicit_weight": 0.5' in blob and '"explicit_weight": 0.5' in blob
        assert report.extra["alignment"]["implicit"]["steps"] == 2
        assert set(report.extra["last"]) >= {"ce", "ctc", "implicit", "explicit"}
