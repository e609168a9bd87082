from __future__ import annotations

import math

import pytest
import torch

from koe.echox.losses import DenoisingAdapter, denoising_loss, dynamic_weight, t2c_loss, total_loss


def test_denoising_loss_by_hand():
    mapped = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]],
                           [[1.0, 1.0], [3.0, 0.0], [0.0, 0.0]]])
    target = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]],
                           [[-1.0, -1.0], [0.0, 2.0], [1.0, 0.0]]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    # item 0: (1 - 1) + (1 - 0) = 1 ; item 1: (1 - (-1)) + (1 - 0) = 3 ; mean = 2 ; masked positions ignored
    assert float(denoising_loss(mapped, target, mask)) == pytest.approx(2.0, abs=1e-6)


def test_dynamic_weight_is_capped_and_detached():
    l_unit = torch.tensor(4.0, requires_grad=True)
    l_den = torch.tensor(2.0, requires_grad=True)
    w = dynamic_weight(l_unit, l_den)
    assert float(w) == pytest.approx(0.4)  # 0.2 * 4 / 2
    assert not w.requires_grad
    assert float(dynamic_weight(torch.tensor(100.0), torch.tensor(1.0))) == 1.0


def test_t2c_loss_adds_weighted_denoising_term_and_grad_of_den_is_w():
    l_unit = torch.tensor(3.0, requires_grad=True)
    l_den = torch.tensor(6.0, requires_grad=True)
    loss, w = t2c_loss(l_unit, l_den)
    assert w == pytest.approx(0.1)
    assert float(loss) == pytest.approx(3.0 + 0.1 * 6.0)
    loss.backward()
    assert float(l_unit.grad) == pytest.approx(1.0) and float(l_den.grad) == pytest.approx(0.1)
    alone, w0 = t2c_loss(torch.tensor(2.5), None)
    assert float(alone) == 2.5 and w0 == 0.0


def test_total_loss_schedule_switches_at_one():
    t2c = torch.tensor(1.5)
    assert float(total_loss(torch.tensor(0.5), t2c)) == pytest.approx(0.2 * 0.5 + 2 * 1.5)
    assert float(total_loss(torch.tensor(1.0), t2c)) == pytest.approx(1.0 + 1.5)
    assert float(total_loss(torch.tensor(2.0), t2c)) == pytest.approx(3.5)


def test_denoising_adapter_shape_and_dropout():
    adapter = DenoisingAdapter(8, 6)
    kinds = [type(m).__name__ for m in adapter.net]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear"] and math.isclose(adapter.net[2].p, 0.1)
    assert adapter(torch.randn(2, 3, 8)).shape == (2, 3, 6)


def test_t2c_learns_to_emit_its_target_after_sos():
    from koe.echox.t2c import T2C
    from koe.echox.unit_language import UnitLanguage

    torch.manual_seed(0)
    t2c = T2C.create(torch.nn.Embedding(10, 8), UnitLanguage(6), hidden_size=16, num_layers=1, num_heads=2)
    opt = torch.optim.AdamW([p for p in t2c.parameters() if p.requires_grad], lr=1e-2)
    data = [([1, 2], [3, 4, 5]), ([6, 7, 8], [0, 0, 2])]
    for _ in range(150):
        loss = t2c.loss([t2c.text_prefix(x) for x, _ in data], [y for _, y in data])
        opt.zero_grad()
        loss.backward()
        opt.step()
    t2c.eval()
    assert [t2c.generate(t2c.text_prefix(x), 10) for x, _ in data] == [y for _, y in data]
    assert not t2c.text_embed.weight.requires_grad
