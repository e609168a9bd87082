from __future__ import annotations

import numpy as np
import pytest
import torch
from s2t_fixtures import tone

from koe.s2t.adapters import ADAPTERS, build_adapter
from koe.s2t.ctc import ctc_loss, ctc_shrink
from koe.s2t.encoder import SpeechEncoder, check_audio
from koe.s2t.model import Example, SpeechAwareLM
from koe.stage import KoeInputError


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_halves_frames_and_maps_to_llm_dim(name):
    adapter = build_adapter(name, encoder_dim=12, llm_dim=16).eval()
    x = torch.randn(2, 7, 12)
    out, lengths = adapter(x, torch.tensor([7, 4]))
    assert out.shape == (2, 4, 16)
    assert lengths.tolist() == [4, 2]


def test_adapter_ignores_padding_frames():
    adapter = build_adapter("concat_transformer", 12, 16).eval()
    x = torch.randn(1, 4, 12)
    padded = torch.cat([x, 100 * torch.randn(1, 6, 12)], dim=1)
    a, _ = adapter(x, torch.tensor([4]))
    b, _ = adapter(padded, torch.tensor([4]))
    torch.testing.assert_close(a, b[:, :2], atol=1e-5, rtol=1e-5)


def test_ctc_shrink_pools_runs_and_drops_blanks():
    x = torch.arange(7, dtype=torch.float32)[None, :, None].repeat(1, 1, 2)
    blank = 9
    labels = torch.tensor([[blank, 3, 3, blank, 3, 5, 5]])
    out, lengths = ctc_shrink(x, torch.tensor([7]), labels, blank)
    assert lengths.tolist() == [3]  # run (1,2) -> 3 ; frame 4 -> 3 again after a blank ; run (5,6) -> 5
    assert out[0, :, 0].tolist() == [1.5, 4.0, 5.5]


def test_ctc_shrink_keeps_all_frames_when_all_blank():
    x = torch.randn(2, 5, 3)
    labels = torch.full((2, 5), 4)
    labels[1] = torch.tensor([1, 1, 1, 4, 4])
    out, lengths = ctc_shrink(x, torch.tensor([5, 5]), labels, blank=4)
    assert lengths.tolist() == [5, 1]
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[1, 0], x[1, :3].mean(0))


def test_ctc_loss_prefers_the_right_alignment():
    blank = 3
    good = torch.full((1, 4, 4), -10.0)
    for t, c in enumerate([1, blank, 2, blank]):
        good[0, t, c] = 10.0
    bad = good.flip(-1)
    lengths = torch.tensor([4])
    assert float(ctc_loss(good, lengths, [[1, 2]], blank)) < 0.01
    assert float(ctc_loss(bad, lengths, [[1, 2]], blank)) > 5


def test_check_audio_reports_each_problem():
    ok = tone(1.0)
    assert check_audio(ok, 16_000, 4.0, "a.wav").shape == ok.shape
    with pytest.raises(KoeInputError, match=r"wrong-sample-rate: a\.wav: 8000 Hz"):
        check_audio(ok, 8_000, 4.0, "a.wav")
    with pytest.raises(KoeInputError, match=r"silent: b\.wav"):
        check_audio(np.zeros(16_000, np.float32), 16_000, 4.0, "b.wav")
    with pytest.raises(KoeInputError, match=r"too-long: c\.wav: 5\.0 s"):
        check_audio(tone(5.0), 16_000, 4.0, "c.wav")


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_encoder_loads_by_path_frozen_with_lengths(tiny_dirs, kind):
    enc = SpeechEncoder.load(tiny_dirs[kind])
    assert enc.frozen and not any(p.requires_grad for p in enc.parameters())
    frames, lengths = enc([tone(1.0), tone(0.5)])
    assert frames.shape[0] == 2 and frames.shape[2] == 32
    assert lengths[0] > lengths[1] and int(lengths[0]) == frames.shape[1]
    assert abs(int(lengths[0]) - 50) <= 1  # both encoders give 50 frames per second
    if kind == "whisper":
        assert enc.max_audio_s == pytest.approx(4.0)


def test_speech_lm_loss_backprops_into_adapter_only_when_llm_frozen(tiny_dirs):
    model = SpeechAwareLM.create(tiny_dirs["whisper"], tiny_dirs["llm"])
    model.set_llm_trainable(False)
    ex = Example(prompt="answer :", speech=tone(1.0), target="the capital of randira is felane .",
                 transcript="what is the capital of randira ?")
    batch = model.batch([ex, Example(prompt="answer :", prefix="what is the capital of moro ?", target="tasi .")])
    assert batch.ctc_lengths.shape == (1,)  # CTC over the speech items only; the text item has none
    batch = model.batch([ex])
    loss, parts = model.loss(batch)
    assert set(parts) == {"ce", "ctc"}
    assert float(loss) == pytest.approx(parts["ce"] + 0.3 * parts["ctc"], rel=1e-4)
    loss.backward()
    assert model.adapter.proj.weight.grad is not None and model.ctc_head.weight.grad is not None
    assert all(p.grad is None for p in model.llm.parameters())


def test_labels_cover_target_and_eos_only(tiny_dirs):
    model = SpeechAwareLM.create(tiny_dirs["hubert"], tiny_dirs["llm"], adapter="mlp")
    ex = Example(prompt="answer :", prefix="what is the capital of moro ?", target="tasi .")
    b = model.batch([ex])
    tgt = model.text_ids("tasi .")
    assert b.labels[0][b.labels[0] != -100].tolist() == [*tgt, model.tokenizer.eos_token_id]
    assert b.target_positions[0].tolist() == list(range(len(model.text_ids("what is the capital of moro ? answer :")),
                                                        b.inputs_embeds.shape[1] - 1))


def test_save_and_load_round_trip_with_lora(tiny_dirs, tmp_path):
    model = SpeechAwareLM.create(tiny_dirs["whisper"], tiny_dirs["llm"], freeze_encoder=False)
    model.add_lora(rank=4, alpha=8)
    model.set_llm_trainable(True)
    trainable = {n for n, p in model.llm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    model.eval()
    ex = Example(prompt="answer :", speech=tone(1.0))
    with torch.no_grad():
        before = model.hidden_states(model.batch([ex]))
    model.save(tmp_path / "m")
    again = SpeechAwareLM.load(tmp_path / "m")
    assert (tmp_path / "m" / "encoder" / "config.json").exists()
    with torch.no_grad():
        after = again.hidden_states(again.batch([ex]))
    torch.testing.assert_close(before, after, atol=1e-4, rtol=1e-4)
    assert isinstance(again.generate(ex, max_new_tokens=3), list)
