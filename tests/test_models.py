"""GroupDropout (per-row inverted dropout) and the MLP built on it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from audit import MLP, GroupDropout


def _two_group_rates(rows_per_group: int, p_a: float, p_b: float) -> torch.Tensor:
    return torch.cat([torch.full((rows_per_group,), p_a), torch.full((rows_per_group,), p_b)])


def test_eval_mode_is_identity_and_deterministic() -> None:
    torch.manual_seed(0)
    drop = GroupDropout().eval()
    x = torch.randn(6, 5)
    rates = torch.full((6,), 0.5)
    first = drop(x, rates)
    torch.testing.assert_close(first, x, rtol=0, atol=0)
    torch.testing.assert_close(drop(x, rates), first, rtol=0, atol=0)

    model = MLP(5, hidden=(7, 3)).eval()
    torch.testing.assert_close(model(x, rates), model(x, rates), rtol=0, atol=0)
    # Dropout rates make no difference at evaluation time.
    torch.testing.assert_close(model(x, rates), model(x, None), rtol=0, atol=0)


@pytest.mark.parametrize("rates", [None, "zeros"])
def test_no_or_zero_rates_are_identity_in_train_mode(rates: str | None) -> None:
    torch.manual_seed(0)
    drop = GroupDropout().train()
    x = torch.randn(4, 8)
    r = None if rates is None else torch.zeros(4)
    torch.testing.assert_close(drop(x, r), x, rtol=0, atol=0)
    model = MLP(8, hidden=(5,)).train()
    with torch.no_grad():
        reference = model.output(model.activation(model.hidden[0](x))).squeeze(-1)
    torch.testing.assert_close(model(x, r), reference, rtol=0, atol=0)


def test_train_mode_changes_output_with_positive_rates() -> None:
    # Guards the tests above against a GroupDropout that never drops anything.
    torch.manual_seed(0)
    drop = GroupDropout().train()
    x = torch.ones(4, 100)
    assert not torch.equal(drop(x, torch.full((4,), 0.5)), x)


def test_keep_probability_per_row_matches_group_rate() -> None:
    torch.manual_seed(1234)
    rows, units = 10, 10_000
    p_a, p_b = 0.2, 0.6
    drop = GroupDropout().train()
    out = drop(torch.ones(2 * rows, units), _two_group_rates(rows, p_a, p_b))
    kept = out != 0
    for group, p in ((slice(0, rows), p_a), (slice(rows, 2 * rows), p_b)):
        trials = rows * units
        observed = kept[group].float().mean().item()
        # Keep indicators are i.i.d. Bernoulli(1-p): the observed fraction over
        # `trials` draws has sd sqrt(p(1-p)/trials) (<= 0.0016 here). 5 sd gives a
        # false-alarm chance below 1e-6 while still catching p vs 1-p or a shared rate.
        sd = math.sqrt(p * (1 - p) / trials)
        assert abs(observed - (1 - p)) < 5 * sd, (p, observed)
    # Row by row too: every row has 10_000 draws (sd <= 0.005), 5 sd again.
    per_row = kept.float().mean(dim=1)
    expected = 1 - _two_group_rates(rows, p_a, p_b)
    sd_row = torch.sqrt(expected * (1 - expected) / units)
    assert bool(((per_row - expected).abs() < 5 * sd_row).all())


def test_survivors_are_scaled_by_inverse_keep_probability() -> None:
    torch.manual_seed(7)
    rows, units = 3, 2_000
    rates = torch.tensor([0.2, 0.6, 0.9]).repeat_interleave(rows)
    x = torch.rand(3 * rows, units) + 0.5  # strictly positive: zero means dropped
    out = GroupDropout().train()(x, rates)
    survived = out != 0
    assert bool(survived.any()) and not bool(survived.all())
    expected = x / (1 - rates).unsqueeze(1)
    torch.testing.assert_close(out[survived], expected[survived], rtol=1e-6, atol=0)
    # A unit is either dropped (exactly 0) or scaled: nothing else.
    assert bool(((out == 0) | survived).all())


def test_expected_output_equals_input() -> None:
    torch.manual_seed(99)
    copies, width = 50_000, 8
    x = torch.rand(width) + 0.5  # values in [0.5, 1.5]
    drop = GroupDropout().train()
    for p in (0.2, 0.6):
        out = drop(x.expand(copies, width).contiguous(), torch.full((copies,), p))
        mean = out.mean(dim=0)
        # One output unit is x/k with prob k = 1-p, else 0: variance x^2 (1-k)/k.
        # Averaging `copies` independent masks: sd = x sqrt((1-k)/(k*copies))
        # (<= 0.0082 for p=0.6). 5 sd per element; 8 elements keep the chance of a
        # false alarm below 1e-5, while a missing 1/(1-p) rescaling would be off by 20-60%.
        k = 1 - p
        sd = x * math.sqrt((1 - k) / (k * copies))
        assert bool(((mean - x).abs() < 5 * sd).all()), (p, mean, x)


def test_rates_broadcast_over_extra_dimensions() -> None:
    torch.manual_seed(3)
    x = torch.ones(2, 50, 40)
    out = GroupDropout().train()(x, torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=0)
    assert set(out[1].unique().tolist()) == {0.0, 2.0}


def test_hidden_empty_is_linear_model() -> None:
    torch.manual_seed(0)
    model = MLP(4, hidden=())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0] is model.output
    assert linears[0].in_features == 4 and linears[0].out_features == 1
    assert len(model.hidden) == 0
    model.eval()
    x = torch.randn(5, 4)
    expected = x @ model.output.weight.squeeze(0) + model.output.bias
    torch.testing.assert_close(model(x), expected)
    # A linear model is affine: f(a) + f(b) - f(0) == f(a + b).
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    zero = torch.zeros(3, 4)
    torch.testing.assert_close(model(a) + model(b) - model(zero), model(a + b))


def test_mlp_layer_widths() -> None:
    model = MLP(6, hidden=(5, 3))
    assert [(m.in_features, m.out_features) for m in model.hidden] == [(6, 5), (5, 3)]
    assert (model.output.in_features, model.output.out_features) == (3, 1)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("hidden", [(), (4,)])
def test_empty_batch(train: bool, hidden: tuple[int, ...]) -> None:
    model = MLP(3, hidden=hidden).train(train)
    empty = torch.zeros(0, 3)
    for rates in (torch.zeros(0), torch.full((0,), 0.5), None):
        out = model(empty, rates)
        assert out.shape == (0,) and out.dtype == torch.float32
        dropped = model.dropout(empty, rates)
        assert dropped.shape == (0, 3)
    # An empty batch gives every parameter a gradient, and it is exactly zero (no NaN from
    # dividing by the batch size, no layer left out of the graph).
    model.zero_grad(set_to_none=True)
    model(empty, torch.zeros(0)).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape, name
        assert torch.equal(param.grad, torch.zeros_like(param)), name


def test_single_row_output_shape() -> None:
    model = MLP(3, hidden=(4,))
    assert model(torch.zeros(1, 3), torch.full((1,), 0.3)).shape == (1,)
