"""DPSGD-F (``dp_sgd_f``): group-adaptive clipping paid for with noisy per-group counts.

The arm, its accounting (checked against an analytic Gaussian-DP reference and against
the sum of the two Gaussian mechanisms' RDP), the per-group bounds, the clipping by each
row's group bound, the batched trainer's wiring, and the audit end to end.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import norm

from audit import (
    ARM_KINDS,
    AuditConfig,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    DPSGDFArm,
    PrivacyAuditConfig,
    TrainingConfig,
    TrainingError,
    arm_from_dict,
    available_arms,
    load_dataset,
    make_arm,
    run_audit,
)
from audit.dp._accounting import (
    GROUP_ADAPTIVE_ASSUMPTIONS,
    compute_epsilon,
    effective_noise_multiplier,
    split_noise_multiplier,
)
from audit.training._batched import BatchedTrainer
from audit.training._cost import DP_ROW_COST, DPSGDF_ROW_COST, job_costs
from audit.training._models import MLP
from audit.training._privatizer import GroupAdaptivePrivatizer
from audit.training._reference import ReferenceTrainer
from audit.training._stacked_mlp import RowChunk, StackedModels, clipped_sum, row_loss, row_norms2
from audit.training._trainer import FitJob, TrainingRows, group_indices

CPU = torch.device("cpu")
SMALL = TrainingConfig(hidden=(8,), epochs=2, batch_size=60)


def _rows(n: int = 600, seed: int = 0) -> tuple[TrainingRows, np.ndarray]:
    """Toy rows with two groups; the minority's label depends on another feature, so its
    rows keep larger gradients and are clipped more."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    groups = (rng.random(n) < 0.2).astype(np.int64)
    logit = np.where(groups == 1, 3 * X[:, 1], 2 * X[:, 0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X[:, 4] = groups
    return TrainingRows(X, y, name="toy"), groups


def _job(arm: object, data: TrainingRows, groups: np.ndarray | None, seed: int = 0,
         epsilon: float = 3.0) -> FitJob:
    return FitJob(arm=arm, data=data, rates=np.zeros(data.n, dtype=np.float32), seed=seed,  # type: ignore[arg-type]
                  epsilon=epsilon, delta=1e-5, groups=groups, n_groups=None if groups is None else 2)


# --------------------------------------------------------------------------- the arm


def test_arm_is_an_opt_in_dp_arm_with_validated_parameters() -> None:
    arm = make_arm("dp_sgd_f", statistics_share=0.2, max_clip_ratio=2.5, epsilon=2.0)
    assert isinstance(arm, DPSGDFArm) and isinstance(arm, DPSGDArm) and arm.private
    assert arm.kind == "dp_sgd_f" and "dp_sgd_f" in available_arms() and "dp_sgd_f" not in ARM_KINDS
    assert arm_from_dict(arm.to_dict()) == arm
    assert arm.to_dict()["params"]["statistics_share"] == 0.2
    for bad, value in [("statistics_share", 0.0), ("statistics_share", 1.0), ("statistics_share", -0.1),
                       ("max_clip_ratio", 0.99), ("max_clip_ratio", math.inf), ("max_clip_ratio", math.nan)]:
        with pytest.raises(ConfigError, match=f"dp_sgd_f {bad} must be"):
            make_arm("dp_sgd_f", **{bad: value})
    # The inherited DP-SGD checks still run.
    with pytest.raises(ConfigError, match="max_grad_norm"):
        DPSGDFArm(max_grad_norm=0.0)


# --------------------------------------------------------------------------- accounting


def _gdp_epsilon(mu: float, delta: float) -> float:
    """Epsilon of mu-GDP at delta: the root of Phi(-e/mu + mu/2) - e^e Phi(-e/mu - mu/2) = delta."""
    def excess(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)) - delta

    return float(brentq(excess, 0.0, 100.0, xtol=1e-12))


@pytest.mark.parametrize(("effective", "steps", "share"), [(3.0, 10, 0.1), (2.0, 30, 0.3), (6.0, 100, 0.05)])
def test_full_batch_accounting_is_the_joint_gaussian_mechanism(effective: float, steps: int,
                                                               share: float) -> None:
    """At q = 1 (no subsampling) T steps of (counts with std s1, gradient with multiplier s2)
    are exactly mu-GDP with mu = sqrt(T) sqrt(1/s2^2 + 2/s1^2) (adaptive composition of
    Gaussian mechanisms). The PRV accountant at the effective multiplier must give that
    mu's epsilon: Opacus' PRV reports an upper estimate within its eps_error of 0.01, so
    0.02 absolute allows for that and its discretisation (observed: +0.011). RDP is an
    upper bound, so it must not be below the exact value."""
    s2, s1 = split_noise_multiplier(effective, share)
    mu = math.sqrt(steps) * math.sqrt(1 / s2**2 + 2 / s1**2)
    exact = _gdp_epsilon(mu, 1e-5)
    prv = compute_epsilon(sample_rate=1.0, noise_multiplier=effective, steps=steps, delta=1e-5)
    rdp = compute_epsilon(sample_rate=1.0, noise_multiplier=effective, steps=steps, delta=1e-5,
                          accountant="rdp")
    assert 0.5 < exact < 20
    assert abs(prv - exact) <= 0.02, (prv, exact)
    assert rdp >= exact - 1e-9, (rdp, exact)
    # Accounting for the gradient's noise alone would under-report: the counts cost epsilon.
    assert compute_epsilon(sample_rate=1.0, noise_multiplier=s2, steps=steps, delta=1e-5) < exact - 0.05


def test_split_and_effective_are_inverses_and_add_up_in_renyi_dp() -> None:
    from opacus.accountants.analysis.rdp import compute_rdp

    orders = [1.5, 2.0, 4.0, 8.0, 32.0, 128.0]
    for effective in (0.5, 1.0, 1.7, 9.0):
        for share in (0.01, 0.1, 0.5, 0.9):
            s2, s1 = split_noise_multiplier(effective, share)
            assert s2 > effective and s1 > effective
            assert effective_noise_multiplier(s2, s1) == pytest.approx(effective, rel=1e-12)
            # The counts' share of the step's privacy is the share asked for.
            assert (2 / s1**2) * effective**2 == pytest.approx(share, rel=1e-12)
            # RDP of one full-batch step at the effective multiplier = the two Gaussian
            # mechanisms' RDPs added (gradient: sensitivity 1; counts: sensitivity sqrt 2).
            joint = compute_rdp(q=1.0, noise_multiplier=effective, steps=1, orders=orders)
            parts = [a / (2 * s2**2) + a * 2 / (2 * s1**2) for a in orders]
            np.testing.assert_allclose(joint, parts, rtol=1e-10)
    with pytest.raises(ConfigError, match="statistics_share"):
        split_noise_multiplier(1.0, 1.0)


@pytest.mark.parametrize(("effective", "share", "q"), [(1.0, 0.1, 0.05), (1.5, 0.3, 0.2), (0.8, 0.05, 0.01)])
def test_subsampled_step_matches_a_direct_computation_of_the_two_releases(effective: float, share: float,
                                                                         q: float) -> None:
    """One Poisson-sampled step (q < 1), computed from the releases themselves: with the
    row absent the outputs are N(0, diag(s1^2, s1^2, s2^2)) in the directions the row
    moves (its group's two counts by 1 each, the gradient sum by at most the largest
    bound, here 1); present with probability q they are shifted by (1, 1, 1). The Renyi
    divergence of that three-dimensional mixture from the Gaussian, by Gauss-Hermite
    quadrature over each coordinate (no use of the effective multiplier), must equal
    Opacus' RDP of the one-dimensional sampled Gaussian at the effective multiplier: the
    accountant is given exactly the composed step. 80 nodes per axis integrate these
    smooth integrands to about 1e-10 relative; 1e-6 leaves room."""
    from opacus.accountants.analysis.rdp import compute_rdp

    s2, s1 = split_noise_multiplier(effective, share)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()  # expectations under N(0, 1)
    z = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 3)
    w = np.einsum("i,j,k->ijk", weights, weights, weights).reshape(-1)
    std = np.array([s1, s1, s2])
    shift = np.ones(3)
    x = z * std  # draws of the released noise, row absent
    log_ratio = (x @ (shift / std**2)) - 0.5 * float(np.sum(shift**2 / std**2))
    for alpha in (2, 3, 5):
        moment = float(np.sum(w * ((1 - q) + q * np.exp(log_ratio)) ** alpha))
        direct = math.log(moment) / (alpha - 1)
        accountant = float(compute_rdp(q=q, noise_multiplier=effective, steps=1, orders=[alpha])[0])
        assert direct == pytest.approx(accountant, rel=1e-6), (alpha, direct, accountant)
    # The gradient's noise alone would be accounted as less privacy lost.
    assert float(compute_rdp(q=q, noise_multiplier=s2, steps=1, orders=[3])[0]) < accountant


def test_one_row_moves_the_released_quantities_by_at_most_the_stated_sensitivity() -> None:
    """Remove each row of a batch in turn: the released counts (b_g, m_g over all groups)
    move by at most sqrt(2) in L2 (exactly sqrt 2 for a clipped row, 1 otherwise), and the
    clipped gradient sum, at bounds fixed by the counts, by at most the largest bound
    (the noise's scale)."""
    torch.manual_seed(1)
    mlp = MLP(4, hidden=(6,)).double()
    params = {k: v.detach()[None] for k, v in mlp.named_parameters()}
    models = StackedModels(mlp, params, "ghost", row_loss("classification"))
    n = 12
    x = torch.randn(n, 4, dtype=torch.float64) * 3
    y = (torch.rand(n) < 0.5).double()
    groups = torch.tensor([0, 1, 2] * 4)
    bounds = torch.tensor([[0.5, 1.5, 4.0]], dtype=torch.float64)
    base_clip = torch.tensor([1.3], dtype=torch.float64)
    privatizer = GroupAdaptivePrivatizer()
    full = torch.ones(1, n, dtype=torch.float64)
    norm2 = row_norms2(models, RowChunk(x[None], y[None], full))
    counts = torch.cat(privatizer.statistics(norm2, groups[None], full, base_clip, 3), dim=1)
    grad = clipped_sum(models, RowChunk(x[None], y[None], full), bounds[0, groups][None])
    clipped_rows = 0
    for i in range(n):
        without = full.clone()
        without[0, i] = 0.0
        moved = torch.cat(privatizer.statistics(norm2, groups[None], without, base_clip, 3), dim=1)
        step = float(torch.linalg.vector_norm(counts - moved))
        clipped = bool(norm2[0, i] > base_clip[0] ** 2)
        clipped_rows += clipped
        assert step == pytest.approx(math.sqrt(2) if clipped else 1.0)
        rest = clipped_sum(models, RowChunk(x[None], y[None], without), bounds[0, groups][None])
        change = math.sqrt(sum(float(((grad[k] - rest[k]) ** 2).sum()) for k in grad))
        assert change <= float(bounds.max()) + 1e-9
        assert change <= float(bounds[0, groups[i]]) + 1e-9  # its own group's bound, in fact
    assert 0 < clipped_rows < n  # both kinds of row occur


def test_the_released_counts_carry_noise_of_the_ledgers_std() -> None:
    """The trainer's real noise on the counts: mean 0 and standard deviation s1, the
    ledger's statistics_noise_multiplier. 20 steps x 2 groups x 2 counts = 80 draws per
    seed, 3 seeds = 240: the sample std's relative standard error is 1/sqrt(480) = 4.6%,
    so 15% is over 3 standard errors; the mean's is s1/sqrt(240), 4 of them allowed."""
    from audit.training._batched import BatchEngine, DPRowCount, train_mlp_batch

    class _Recorder(GroupAdaptivePrivatizer):
        def __init__(self) -> None:
            self.noise: list[torch.Tensor] = []

        def noisy(self, counts, over, gens, statistics_sigma):  # type: ignore[no-untyped-def]
            b, m = super().noisy(counts, over, gens, statistics_sigma)
            self.noise += [b - counts, m - over]
            return b, m

    data, groups = _rows()
    X, y = torch.as_tensor(data.X), torch.as_tensor(data.y)
    draws = []
    for seed in range(3):
        spec, ledger = _DPMechanismSpec(data, groups, seed)
        recorder = _Recorder()
        train_mlp_batch(X, y, [spec], config=SMALL, engine=BatchEngine(group_adaptive=recorder),
                        dp_rows=DPRowCount(10, data.n))
        draws.append(torch.cat([d.reshape(-1) for d in recorder.noise]).double().numpy())
    noise = np.concatenate(draws)
    s1 = float(ledger.statistics_noise_multiplier)
    assert len(noise) == 240 and s1 > 1
    assert abs(noise.std(ddof=1) / s1 - 1) < 0.15, (noise.std(ddof=1), s1)
    assert abs(noise.mean()) < 4 * s1 / math.sqrt(len(noise))


def _DPMechanismSpec(data: TrainingRows, groups: np.ndarray, seed: int):  # noqa: ANN202, N802
    from audit.training._batched import _DPMechanism

    return _DPMechanism.for_rows(data.n, SMALL).spec_and_ledger(_job(DPSGDFArm(), data, groups, seed=seed),
                                                                SMALL)


def test_dp_sgd_f_is_compared_with_dp_sgd_only_at_the_same_privacy_setting() -> None:
    import pandas as pd

    from audit import dp_group_cost
    from audit.arms._arms import dp_settings
    from audit.fairness._gap_change import comparison_pairs

    rows = [{"arm": arm, "seed": seed, "group": group, "metric": "error_rate", "value": 0.1 + 0.01 * i}
            for i, arm in enumerate(("baseline", "dp_sgd", "dp_sgd_f", "strict"))
            for seed in (0, 1) for group in ("A", "B")]
    by_group = pd.DataFrame(rows)
    overall = by_group.groupby(["arm", "seed", "metric"], as_index=False)["value"].mean()
    arms = [BaselineArm(), DPSGDArm(), DPSGDFArm(), DPSGDFArm(name="strict", epsilon=1.0)]
    cost = dp_group_cost(by_group, overall, arms)
    versus = cost[cost["baseline"] != "baseline"]
    assert set(zip(versus["arm"], versus["baseline"], strict=True)) == {("dp_sgd_f", "dp_sgd")}
    pairs = comparison_pairs({a.label: a.kind for a in arms}, dp_settings(arms))
    assert ("dp_sgd_f", "dp_sgd") in pairs and ("strict", "dp_sgd") not in pairs
    assert ("strict", "baseline") in pairs  # every arm is still compared with the baseline


def test_ledger_at_epsilon_3_includes_the_counts() -> None:
    data, groups = _rows()
    fitted = BatchedTrainer().fit_many([_job(DPSGDFArm(), data, groups), _job(DPSGDArm(), data, groups)],
                                       config=SMALL, device=CPU)
    adaptive, plain = fitted[0].ledger, fitted[1].ledger
    assert adaptive.mechanism == "dp_sgd_f" and adaptive.guarantee == GROUP_ADAPTIVE_ASSUMPTIONS
    assert adaptive.epsilon is not None and 2.9 <= adaptive.epsilon <= 3.0
    # The same calibration as dp_sgd; the effective multiplier is what was accounted.
    assert adaptive.noise_multiplier == plain.noise_multiplier and adaptive.epsilon == plain.epsilon
    s2, s1 = adaptive.gradient_noise_multiplier, adaptive.statistics_noise_multiplier
    assert s2 is not None and s1 is not None
    assert effective_noise_multiplier(s2, s1) == pytest.approx(adaptive.noise_multiplier, rel=1e-12)
    assert plain.gradient_noise_multiplier is None and plain.statistics_noise_multiplier is None


# --------------------------------------------------------------------------- bounds and clipping


def test_bounds_from_hand_made_counts() -> None:
    p = GroupAdaptivePrivatizer()
    clip, cap = torch.tensor([2.0]), torch.tensor([4.0])

    def bounds(b: list[float], m: list[float], c: torch.Tensor = cap) -> list[float]:
        return p.bounds(torch.tensor([b]), torch.tensor([m]), clip, c)[0].tolist()

    # rho = (m_g/m)/(b_g/b): group 0 is 80% of the batch and 20% of the clipped rows.
    # rho_0 = 0.2 / 0.8 = 0.25 (bound 2.5); rho_1 = 0.8 / 0.2 = 4, 1 + 4 capped at 4 (bound 8).
    assert bounds([80, 20], [4, 16]) == pytest.approx([2.5, 8.0])
    assert bounds([80, 20], [4, 16], torch.tensor([10.0])) == pytest.approx([2.5, 10.0])
    # A noisy count pushed negative: rho_0 = (-2/8)/0.5 < 0 counts as 0 (bound C0);
    # rho_1 = (10/8)/0.5 = 2.5 (bound 7).
    assert bounds([50, 50], [-2, 10]) == pytest.approx([2.0, 7.0])
    # Undefined ratios are neutral (rho = 1, bound 2 C0): no clipped rows at all ...
    assert bounds([50, 50], [0, 0]) == pytest.approx([4.0, 4.0])
    assert bounds([50, 50], [3, -5]) == pytest.approx([4.0, 4.0])
    # ... or a group with no (noisy) rows, while the other group's ratio is still defined.
    # (rho_0 = (10/11) / (100/99) = 0.9.)
    assert bounds([100, -1], [10, 1]) == pytest.approx([3.8, 4.0])
    # Several models at once, each with its own C0 and cap.
    out = p.bounds(torch.tensor([[50.0, 50.0], [50.0, 50.0]]), torch.tensor([[5.0, 15.0], [5.0, 15.0]]),
                   torch.tensor([1.0, 2.0]), torch.tensor([4.0, 2.0]))
    np.testing.assert_allclose(out.numpy(), [[1.5, 2.5], [3.0, 4.0]])


def test_statistics_count_sampled_and_clipped_rows_per_group() -> None:
    norm2 = torch.tensor([[0.5, 4.0, 9.0, 0.1, 16.0]])
    groups = torch.tensor([[0, 0, 1, 1, 1]])
    valid = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])  # the last row is padding
    b, m = GroupAdaptivePrivatizer().statistics(norm2, groups, valid, torch.tensor([1.5]), 3)
    assert b.tolist() == [[2.0, 2.0, 0.0]] and m.tolist() == [[1.0, 1.0, 0.0]]


def test_each_row_is_clipped_to_its_group_bound() -> None:
    """The ghost clipped sum with per-row bounds equals clipping every row's autograd
    gradient to its own group's bound, and differs from clipping all to one bound."""
    torch.manual_seed(0)
    mlp = MLP(4, hidden=(6,)).double()
    params = {k: v.detach()[None] for k, v in mlp.named_parameters()}
    models = StackedModels(mlp, params, "ghost", row_loss("classification"))
    x = torch.randn(9, 4, dtype=torch.float64) * 3
    y = (torch.rand(9) < 0.5).double()
    groups = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    bounds = torch.tensor([[0.05, 0.3, 5.0]], dtype=torch.float64)
    chunk = RowChunk(x[None], y[None], torch.ones(1, 9, dtype=torch.float64))
    row_bounds = bounds[0, groups][None]
    summed = clipped_sum(models, chunk, row_bounds)
    expected = {k: torch.zeros_like(v[0]) for k, v in params.items()}
    norms = []
    for i in range(9):
        mlp.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(mlp(x[i:i + 1]).reshape(()), y[i])
        loss.backward()
        grads = {k: v.grad for k, v in mlp.named_parameters()}
        total = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
        norms.append(total)
        factor = min(1.0, float(bounds[0, groups[i]]) / (total + 1e-6))
        for k, g in grads.items():
            expected[k] += factor * g
    np.testing.assert_allclose(row_norms2(models, chunk)[0].numpy(), np.square(norms), rtol=1e-9)
    assert min(norms) > 0.05 and sum(n > 0.3 for n in norms) >= 3  # the bounds bite
    for k in expected:
        torch.testing.assert_close(summed[k][0], expected[k], rtol=1e-9, atol=1e-12)
    one_bound = clipped_sum(models, chunk, torch.tensor([0.3], dtype=torch.float64))
    assert not torch.allclose(one_bound["hidden.0.weight"], summed["hidden.0.weight"])


class _ExactCounts(GroupAdaptivePrivatizer):
    """Test only: releases the exact counts (noise off) and records every step's."""

    def __init__(self) -> None:
        self.released: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.bounds_used: list[torch.Tensor] = []

    def noisy(self, counts, over, gens, statistics_sigma):  # type: ignore[no-untyped-def]
        self.released.append((counts.clone(), over.clone()))
        return counts, over

    def bounds(self, counts, over, clip, max_ratio):  # type: ignore[no-untyped-def]
        out = super().bounds(counts, over, clip, max_ratio)
        self.bounds_used.append(out.clone())
        return out


def test_the_trainer_counts_each_draw_and_uses_its_bounds() -> None:
    from audit.training._batched import BatchEngine, BatchStats, train_mlp_batch

    data, groups = _rows()
    trainer = BatchedTrainer()
    spec, _ = _spec(trainer, data, groups)
    spy = _ExactCounts()
    stats = BatchStats()
    X, y = torch.as_tensor(data.X), torch.as_tensor(data.y)
    from audit.training._batched import DPRowCount

    train_mlp_batch(X, y, [spec], config=SMALL, engine=BatchEngine(group_adaptive=spy), stats=stats,
                    dp_rows=DPRowCount(10, data.n))
    assert len(spy.released) == stats.steps == 20
    # The counts are those of each step's Poisson draw (padding excluded), split by group.
    assert [int(b.sum()) for b, _ in spy.released] == stats.draw_sizes
    assert all(bool((m <= b).all()) for b, m in spy.released)
    used = torch.cat(spy.bounds_used)
    assert bool((used >= 1.0).all()) and bool((used <= 4.0).all())
    assert stats.mean_group_bounds is not None
    np.testing.assert_allclose(stats.mean_group_bounds, used.double().mean(0, keepdim=True).numpy(), rtol=1e-5)


def _spec(trainer: BatchedTrainer, data: TrainingRows, groups: np.ndarray):  # noqa: ANN202
    from audit.training._batched import _DPMechanism

    return _DPMechanism.for_rows(data.n, SMALL).spec_and_ledger(_job(DPSGDFArm(), data, groups), SMALL)


# --------------------------------------------------------------------------- the trainer


def _weights(seed: int, arm: object | None = None) -> dict[str, torch.Tensor]:
    data, groups = _rows()
    return BatchedTrainer().fit_many([_job(arm or DPSGDFArm(), data, groups, seed=seed)], config=SMALL,
                                     device=CPU)[0].model.state_dict()


def test_same_seed_same_weights() -> None:
    a, b, c = _weights(5), _weights(5), _weights(6)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    # Group-adaptive clipping changes the model (same seed, same streams, other bounds).
    plain = _weights(5, DPSGDFArm(name="x", max_clip_ratio=1.0))
    assert any(not torch.equal(a[k], plain[k]) for k in a)


def test_dp_sgd_f_and_dp_sgd_are_trained_as_separate_batches() -> None:
    data, groups = _rows()
    trainer = BatchedTrainer()
    trainer.fit_many([_job(BaselineArm(), data, groups), _job(DPSGDArm(), data, groups),
                      _job(DPSGDFArm(), data, groups)], config=SMALL, device=CPU)
    assert len(trainer.last_stats) == 3
    assert trainer.last_stats[1].mean_group_bounds is None
    assert trainer.last_stats[2].mean_group_bounds is not None


def test_the_watch_catches_a_nan_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    planted, calls = 3, []
    bounds = GroupAdaptivePrivatizer.bounds

    def poisoned(self: GroupAdaptivePrivatizer, *args: torch.Tensor) -> torch.Tensor:
        out = bounds(self, *args)
        calls.append(1)
        return out * float("nan") if len(calls) == planted else out

    monkeypatch.setattr(GroupAdaptivePrivatizer, "bounds", poisoned)
    data, groups = _rows()
    with pytest.raises(TrainingError, match=r"the gradient of the model of arm 'dp_sgd_f' \(seed 7\) became "
                                            r"NaN or infinite at step 3 of "):
        BatchedTrainer().fit_many([_job(DPSGDFArm(), data, groups, seed=7)], config=SMALL, device=CPU)


def test_reference_trainer_and_jobs_without_groups_are_refused() -> None:
    data, groups = _rows()
    with pytest.raises(ConfigError, match=r"reference trainer cannot train arm 'dp_sgd_f' \(dp_sgd_f\): "
                                          r"Opacus has no group-adaptive clipping; use trainer 'batched'"):
        ReferenceTrainer().fit(_job(DPSGDFArm(), data, groups), config=SMALL, device=CPU)
    with pytest.raises(ConfigError, match=r"arm 'dp_sgd_f' \(dp_sgd_f\) clips each row by its group's "
                                          r"bound and needs every training row's group") as info:
        _job(DPSGDFArm(), data, None)
    assert info.value.param == "groups"
    _job(DPSGDArm(), data, None)  # other arms need no groups
    unknown = groups.copy()
    unknown[3] = -1
    with pytest.raises(ConfigError, match="1 row.* belong to no known group"):
        _job(DPSGDFArm(), data, unknown)
    with pytest.raises(ConfigError, match="groups must be one integer group index per row"):
        _job(DPSGDFArm(), data, groups[:-1])
    assert group_indices(np.array(["M", "F", "M", "X"]), ("F", "M")).tolist() == [1, 0, 1, -1]


def test_cost_counts_the_second_pass() -> None:
    data, groups = _rows()
    costs = job_costs([_job(DPSGDArm(), data, groups), _job(DPSGDFArm(), data, groups)], SMALL, stacked=True)
    # Each is its own batch (same overhead, same rows); only the per-row cost differs.
    assert DPSGDF_ROW_COST == 2 * DP_ROW_COST
    # 20 steps (2 epochs of 10) of 60 expected rows, each row 1.5 row passes more.
    assert costs[1].row_passes - costs[0].row_passes == pytest.approx(20 * 60 * (DPSGDF_ROW_COST - DP_ROW_COST))
    # One calibration for both (same budget and mechanism, cached): counted once.
    assert costs[0].setup_s > 0 and costs[1].setup_s == 0.0


# --------------------------------------------------------------------------- the audit


@pytest.fixture(scope="module")
def audited():  # noqa: ANN201
    config = AuditConfig(arms=(BaselineArm(), DPSGDArm(), DPSGDFArm()), seeds=2, epsilon=3.0, n_bootstrap=0,
                         training=TrainingConfig(epochs=2, hidden=(16,)),
                         privacy_audit=PrivacyAuditConfig(mia="none", canaries=200, white_box_canaries=100,
                                                          gradient_canaries=2000))
    return run_audit("synthetic", config, n_rows=3000)


def test_audit_reports_dp_sgd_f_everywhere(audited) -> None:  # noqa: ANN001
    result = audited
    by_group = result.by_group
    groups = set(by_group.loc[by_group["arm"] == "baseline", "group"])
    assert len(groups) >= 2 and set(by_group.loc[by_group["arm"] == "dp_sgd_f", "group"]) == groups
    privacy = result.privacy
    rows = privacy[privacy["arm"] == "dp_sgd_f"]
    assert len(rows) == 3 and (rows["epsilon"] <= 3.0).all() and (rows["epsilon"] >= 2.9).all()
    assert set(result.dp_cost["arm"]) == {"dp_sgd", "dp_sgd_f"}
    # DP's cost per group against the baseline for both DP arms, and dp_sgd_f against
    # dp_sgd at the same epsilon: its error per group minus dp_sgd's, paired by seed.
    cost = result.dp_cost.set_index(["arm", "baseline", "group"])
    assert {("dp_sgd", "baseline"), ("dp_sgd_f", "baseline"), ("dp_sgd_f", "dp_sgd")} == {
        (a, b) for a, b, _ in cost.index}
    agg = result.aggregate("by_group")
    err = agg[agg["metric"] == "error_rate"].set_index(["arm", "group"])["value"]
    for group in groups:
        row = cost.loc[("dp_sgd_f", "dp_sgd", group)]
        assert row["cost"] == pytest.approx(err[("dp_sgd_f", group)] - err[("dp_sgd", group)], abs=1e-12)
        assert row["ci_low"] <= row["cost"] <= row["ci_high"] and row["seeds"] == 2
    assert "dp_sgd_f vs dp_sgd, error per group" in result.summary()
    pairs = set(zip(result.gap_changes["arm"], result.gap_changes["versus"], strict=True))
    assert ("dp_sgd_f", "dp_sgd") in pairs and ("dp_sgd_f", "baseline") in pairs
    emp = result.empirical
    mine = emp[emp["arm"] == "dp_sgd_f"]
    assert {"black_box", "white_box_rows", "white_box_gradient"} <= set(mine["audit"])
    assert not mine["dp_violation"].any()
    assert (mine["run_epsilon"] <= 3.0).all()


def test_report_explains_the_arm_and_what_its_epsilon_covers(audited) -> None:  # noqa: ANN001
    from reports import build_report

    report = build_report(audited)
    text = " ".join(getattr(block, "text", "") for section in report.sections for block in section.blocks)
    assert "Group-adaptive DP-SGD (dp_sgd_f; DPSGD-F" in text
    assert "sigma = 1/sqrt(2/s1^2 + 1/s2^2)" in text  # the composition the accountant uses
    tables = [block for section in report.sections for block in section.blocks
              if getattr(block, "header", None) and block.header[:2] == ["DP arm", "Versus"]]
    assert tables and any(row[:2] == ["dp_sgd_f", "dp_sgd"] for row in tables[0].rows)


# --------------------------------------------------------------------------- Adult


@pytest.mark.slow
@pytest.mark.adult
def test_adult_dp_sgd_f_is_never_flagged_in_10_runs(adult_path: Path) -> None:
    """10 canary runs (one per seed) on Adult, sensitive attribute sex, epsilon 3: each is
    tested at confidence 1 - 0.05/10 (Bonferroni), so an honest (3, delta)-DP trainer is
    flagged with probability at most 5% over the 10 runs."""
    ds = load_dataset(adult_path, target="Y", sensitive="sex")
    config = AuditConfig(arms=(DPSGDArm(), DPSGDFArm()), seeds=10, epsilon=3.0, n_bootstrap=0,
                         training=TrainingConfig(epochs=2),
                         privacy_audit=PrivacyAuditConfig(mia="none"))
    start = time.perf_counter()
    result = run_audit(ds, config)
    elapsed = time.perf_counter() - start
    emp = result.empirical
    mine = emp[emp["arm"] == "dp_sgd_f"]
    assert mine["seed"].nunique() == 10
    assert not mine["dp_violation"].any()
    privacy = result.privacy
    assert (privacy.loc[privacy["arm"] == "dp_sgd_f", "epsilon"] <= 3.0).all()
    errors = result.aggregate("by_group")
    errors = errors[errors["metric"] == "error_rate"].set_index(["arm", "group"])["value"]
    print(f"\nAdult dp_sgd_f audit: {elapsed:.0f} s; largest lower bound "
          f"{mine['epsilon_lower_bound'].max():.3f} vs 3 (by audit: "
          f"{mine.groupby('audit')['epsilon_lower_bound'].max().round(3).to_dict()}); "
          f"error by arm and group: {errors.round(4).to_dict()}")
