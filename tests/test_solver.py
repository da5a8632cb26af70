"""Group-specific dropout: closed form, solver constraints, objectives and integration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main

from audit import (
    AuditConfig,
    AuditResult,
    BaselineArm,
    ConfigError,
    DataError,
    GroupDropoutArm,
    LocalExecutor,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
    solve_group_dropout,
)
from audit.solver._dropout_theory import expected_dropout_loss, fit_dropout_linear
from audit.solver._solver import SolverProblem, solve_on_arrays


def regression_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * np.array([1.0, 0.5, 2.0])
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.3, n)
    return X, y, rng.random(n) < 0.3


def monte_carlo_dropout_sgd(X: np.ndarray, y: np.ndarray, rates: np.ndarray, seed: int = 1,
                            steps: int = 40_000) -> tuple[np.ndarray, float]:
    """Full-batch SGD with fresh random inverted-dropout masks each step, iterate-averaged."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    keep = (1 - rates)[:, None]
    w, b = np.zeros(d), 0.0
    sum_w, sum_b, count = np.zeros(d), 0.0, 0
    for t in range(steps):
        Xt = X * ((rng.random((n, d)) < keep) / keep)
        r = y - b - Xt @ w
        lr = 0.02 / (1 + t / 5000)
        w -= lr * (-2 * Xt.T @ r / n)
        b -= lr * (-2 * r.mean())
        if t >= steps // 2:
            sum_w, sum_b, count = sum_w + w, sum_b + b, count + 1
    return sum_w / count, sum_b / count


@pytest.mark.parametrize("kind", ["uniform", "group"])
def test_closed_form_matches_monte_carlo_dropout_training(kind: str) -> None:
    X, y, minority = regression_data()
    rates = np.full(len(y), 0.4) if kind == "uniform" else np.where(minority, 0.6, 0.2)
    w_cf, b_cf = fit_dropout_linear(X, y, rates)
    w_mc, b_mc = monte_carlo_dropout_sgd(X, y, rates)
    # Observed |MC - closed form| is ~2e-4 (averaging 20k SGD iterates); 2e-3 leaves a
    # 10x margin yet is 200x smaller than dropout's own effect on the weights (below).
    assert np.abs(w_mc - w_cf).max() < 2e-3
    assert abs(b_mc - b_cf) < 2e-3
    w_ols, _ = fit_dropout_linear(X, y, np.zeros(len(y)))
    assert np.abs(w_ols - w_cf).max() > 0.4


def test_expected_loss_is_the_mask_average() -> None:
    X, y, minority = regression_data(n=50)
    rates = np.where(minority, 0.5, 0.1)
    w, b = np.array([0.7, -1.0, 0.2]), 0.1
    rng = np.random.default_rng(3)
    keep = (1 - rates)[:, None]
    draws = [np.mean((y - b - (X * ((rng.random(X.shape) < keep) / keep)) @ w) ** 2) for _ in range(20000)]
    # 20k mask draws: the mean's standard error is well under 1% of the loss here.
    assert np.mean(draws) == pytest.approx(expected_dropout_loss(X, y, w, b, rates), rel=0.01)


def test_synthetic_regression_gap_cut_by_90_percent() -> None:
    sol = solve_group_dropout(load_dataset("synthetic-regression"), budget=0.3)
    assert sol.route == "exact" and sol.metric == "mse"
    assert sol.solved.test_gap <= 0.1 * sol.uniform.test_gap
    assert sol.improved
    assert abs(sol.budget_check - 0.3) < 1e-6
    # Equalising raised the majority's error: reported, not hidden.
    assert sol.levelled_down == ["majority"]
    assert sol.error_change["majority"] > 0 > sol.error_change["minority"]


def _arrays(k: int = 2, n: int = 3000, seed: int = 0, zero_var_group: str | None = None):
    """Regression rows with k groups that carry their variance in different features."""
    rng = np.random.default_rng(seed)
    labels = np.array([f"g{i}" for i in range(k)])
    g = labels[rng.choice(k, n, p=np.linspace(2, 1, k) / np.linspace(2, 1, k).sum())]
    X = np.zeros((n, k))
    for i, lab in enumerate(labels):
        rows = g == lab
        scale = np.full(k, 0.1)
        scale[i] = 1.0
        X[rows] = rng.normal(size=(rows.sum(), k)) * scale
    if zero_var_group is not None:
        X[g == zero_var_group, 0] = 0.0  # this group's first feature never varies
    y = X @ np.arange(1, k + 1, dtype=float) + rng.normal(0, 0.2, n)
    idx = rng.permutation(n)
    parts = np.array_split(idx, [int(0.6 * n), int(0.8 * n)])
    return tuple((X[p], y[p], g[p]) for p in parts)


def solve(train, val, test, **kw):
    base = dict(budget=0.3, model="linear", objective="equalize", p_max=0.9, task="regression",
                seeds=(0,), training=TrainingConfig())
    base.update(kw)
    executor = LocalExecutor(base.pop("trainer", "reference"))
    return solve_on_arrays(SolverProblem(train=train, val=val, test=test, **base), executor=executor)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("objective", ["equalize", "minimax"])
def test_budget_and_bounds_hold(k: int, objective: str) -> None:
    train, val, test = _arrays(k=k)
    sol = solve(train, val, test, objective=objective, p_max=0.8)
    rates = np.array(list(sol.rates.values()))
    shares = np.array(list(sol.shares.values()))
    assert abs(shares @ rates - 0.3) < 1e-6
    assert abs(sol.budget_check - 0.3) < 1e-6
    assert np.all(rates >= 0) and np.all(rates <= 0.8 + 1e-12)
    assert sum(shares) == pytest.approx(1.0)
    if objective == "equalize":
        assert sol.solved.val_gap < sol.uniform.val_gap
    else:
        assert sol.solved.val_worst <= sol.uniform.val_worst + 1e-12
    # every explored candidate is on the budget too
    curve_rates = sol.curve[[f"rate[{g}]" for g in sol.rates]].to_numpy()
    assert np.allclose(curve_rates @ shares, 0.3, atol=1e-6)


def test_budget_zero_gives_zero_rates() -> None:
    train, val, test = _arrays()
    sol = solve(train, val, test, budget=0.0)
    assert set(sol.rates.values()) == {0.0}
    assert sol.solved.test_gap == pytest.approx(sol.uniform.test_gap)
    assert not sol.improved


def test_group_with_zero_variance_feature() -> None:
    train, val, test = _arrays(k=2, zero_var_group="g1")
    sol = solve(train, val, test)
    assert np.isfinite(sol.solved.test_gap)
    assert abs(sol.budget_check - 0.3) < 1e-6


def test_group_absent_from_validation_is_a_clear_error() -> None:
    train, val, test = _arrays(k=3)
    X, y, g = val
    keep = g != "g2"
    with pytest.raises(DataError, match=r"group\(s\) \['g2'\] have no rows in the validation data"):
        solve(train, (X[keep], y[keep], g[keep]), test)


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"budget": 0.95}, r"budget must be in \[0, p_max=0.9\]"),
     ({"objective": "fair"}, r"objective must be one of \['equalize', 'minimax'\]"),
     ({"p_max": 1.0}, r"p_max must be a number in \(0, 1\), not 1.0"),
     ({"model": "tree"}, r"model must be one of \['linear', 'logistic', 'mlp'\], not 'tree'")],
)
def test_bad_solver_options(kw: dict, message: str) -> None:
    train, val, test = _arrays()
    with pytest.raises(ConfigError, match=message):
        solve(train, val, test, **kw)


def test_empirical_route_reports_uncertainty_and_does_not_overclaim() -> None:
    ds = load_dataset("synthetic", n_rows=2000)
    sol = solve_group_dropout(ds, budget=0.5, model="mlp", seeds=1, n_candidates=3,
                              training=TrainingConfig(epochs=1, hidden=(8,)))
    assert sol.route == "empirical"
    assert not sol.improved
    # A null result states what the held-out test could have detected.
    assert "test detects a gap reduction of" in sol.verdict
    assert sol.seeds == [0, 1, 2, 3]  # four folds, each fit with its own seed
    single = solve_group_dropout(ds, budget=0.5, model="mlp", seeds=1, n_candidates=3, folds=0,
                                 training=TrainingConfig(epochs=1, hidden=(8,)))
    # uniform, 3 on the budget line, and the logistic closed form's choice unless among them
    assert single.seeds == [0] and single.selection == "validation" and len(single.curve) in (4, 5)
    assert sol.selection == "cross-fitted" and sol.folds == 4 and sol.logistic_seed is not None
    two = solve_group_dropout(ds, budget=0.5, model="linear", seeds=2, n_candidates=3,
                              training=TrainingConfig(epochs=1))
    assert np.isfinite(two.uniform.test_gap_std) and np.isfinite(two.solved.val_gap_std)
    assert len(two.curve) >= 3
    assert {"val_gap", "val_gap_std", "val_worst", "val_overall"} <= set(two.curve.columns)
    json.dumps(two.to_dict(), allow_nan=False)  # JSON-safe, NaN-free


def test_auto_arm_in_audit_uses_solved_rates_and_round_trips() -> None:
    ds = load_dataset("synthetic", n_rows=2000)
    cfg = AuditConfig(arms=(BaselineArm(), UniformDropoutArm(p=0.4), GroupDropoutArm()), seeds=2,
                      n_bootstrap=0, training=TrainingConfig(epochs=1, hidden=(8,)))
    res = run_audit(ds, cfg)
    sol = res.solutions["group_dropout"]
    assert sol["budget"] == 0.4  # the uniform arm's rate
    assert abs(sol["budget_check"] - 0.4) < 1e-6
    assert set(sol["rates"]) == {"majority", "minority"}
    data = json.loads(res.to_json())
    assert data["arms"][2]["solver"]["rates"] == sol["rates"]
    assert data["arms"][0]["solver"] is None
    back = AuditResult.from_json(res.to_json())
    assert back.solutions == res.solutions


def test_auto_rates_cannot_be_used_unsolved() -> None:
    arm = GroupDropoutArm()
    with pytest.raises(ConfigError, match="rates='auto'"):
        arm.row_dropout_rates(np.array(["a", "b"]), ("a", "b"))
    with pytest.raises(ConfigError, match="objective must be one of"):
        GroupDropoutArm(objective="fair")
    with pytest.raises(ConfigError, match="rates must be 'auto' or a mapping"):
        GroupDropoutArm(rates="solve")


def test_cli_solve_dropout_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["solve-dropout", "--dataset", "synthetic-regression",
                                    "--rows", "3000", "--budget", "0.3", "--model", "linear",
                                    "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in ("rates", "shares", "budget", "uniform", "solved"):
        assert key in out
    for which in ("uniform", "solved"):
        assert set(out[which]["errors"]) == {"majority", "minority"}
        assert isinstance(out[which]["gap"], float)
    assert out["solved"]["gap"] < out["uniform"]["gap"]
    assert "levelled down" in res.output


@pytest.mark.adult
def test_adult_mlp_solver_completes(adult_path: Path) -> None:
    ds = load_dataset("adult", path=adult_path)
    sol = solve_group_dropout(ds, budget=0.3, model="mlp", seeds=2, n_candidates=3,
                              training=TrainingConfig(epochs=1, hidden=(16,)))
    groups = {"Female", "Male"}
    # Four cross-fitting folds: the seeds given, then the next ones.
    assert (sol.route, sol.model, sol.metric, sol.seeds) == ("empirical", "mlp", "error_rate", [0, 1, 2, 3])
    # The budget is met: the training shares times the solved rates, recomputed here.
    assert set(sol.rates) == set(sol.shares) == groups
    assert sum(sol.shares.values()) == pytest.approx(1.0, abs=1e-12)
    spent = sum(sol.shares[g] * sol.rates[g] for g in groups)
    assert abs(spent - 0.3) < 1e-6
    assert sol.budget_check == pytest.approx(spent, abs=1e-12)
    assert all(0.0 <= p <= sol.p_max for p in sol.rates.values())
    assert sol.solved.rates == sol.rates
    assert sol.uniform.rates == pytest.approx({g: 0.3 for g in groups})
    # Per-group error rates on both splits, for uniform and solved rates, and what follows.
    for errs in (sol.uniform, sol.solved):
        for per_group in (errs.val, errs.test):
            assert set(per_group) == groups
            assert all(np.isfinite(e) and 0.0 <= e <= 1.0 for e in per_group.values())
        assert errs.test_gap == pytest.approx(max(errs.test.values()) - min(errs.test.values()))
        assert errs.val_gap == pytest.approx(max(errs.val.values()) - min(errs.val.values()))
        assert errs.test_worst == max(errs.test.values())
        assert np.isfinite(errs.test_gap_std) and errs.test_gap_std >= 0  # two seeds: defined
        assert set(errs.test_std) == groups
    assert sol.error_change == pytest.approx({g: sol.solved.test[g] - sol.uniform.test[g] for g in groups})
    assert set(sol.levelled_down) <= groups
    # A verdict sentence that agrees with the improved flag and accounts for the four fits.
    assert isinstance(sol.verdict, str)
    assert sol.verdict.startswith("confirmed on held-out test rows" if sol.improved
                                  else "no improvement over uniform dropout beyond its uncertainty")
    assert "over 4 fits" in sol.verdict and "80% probability" in sol.verdict
    # Every explored candidate is on the budget and in range; uniform dropout is among them.
    rates = sol.curve[["rate[Female]", "rate[Male]"]].to_numpy()
    assert len(rates) >= 2
    shares = np.array([sol.shares["Female"], sol.shares["Male"]])
    np.testing.assert_allclose(rates @ shares, 0.3, atol=1e-6)
    assert ((rates >= 0) & (rates <= sol.p_max)).all()
    assert np.isclose(rates, 0.3).all(axis=1).any()
    assert np.isfinite(sol.curve["val_gap"]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_improvement_claimed_when_groups_are_alike(seed: int) -> None:
    """Null case: both groups drawn from one distribution. Equalising the validation gap
    is then fitting noise; the held-out check must not call it an improvement."""
    rng = np.random.default_rng(seed)
    n = 1500
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -0.5, 0.2]) + rng.normal(0, 1.0, n)
    g = np.where(rng.random(n) < 0.5, "A", "B")
    parts = np.array_split(rng.permutation(n), [900, 1100])
    train, val, test = ((X[p], y[p], g[p]) for p in parts)
    sol = solve(train, val, test)
    assert sol.solved.val_gap < sol.uniform.val_gap  # the validation gap did shrink...
    assert not sol.improved  # ...but that is not evidence
    assert "no improvement over uniform dropout beyond its uncertainty" in sol.verdict


def test_levelled_down_flagged_with_one_seed_too() -> None:
    from audit.solver._solver import _levelled_down

    rng = np.random.default_rng(0)
    groups = np.repeat(["A", "B"], 400)
    uniform = rng.random(800) < 0.1
    solved = uniform.copy()
    solved[:400] = rng.random(400) < 0.25  # group A clearly worse
    assert _levelled_down(uniform.astype(float), solved.astype(float), groups, ("A", "B")) == ["A"]
    assert _levelled_down(uniform.astype(float), uniform.astype(float), groups, ("A", "B")) == []


def test_stated_power_holds_by_simulation() -> None:
    """The verdict's "detects a reduction of D or more with 80% probability", checked
    against test sets with a known reduction: groups of 1000 and 300 rows, error 0.10 in
    both under the solved rates and 0.10 / 0.10 + r under uniform dropout, independent
    rows. At r = the stated D the test (95% CI of the reduction above 0) must reject in
    at least 80% of 300 trials, less 2 Monte-Carlo sd (sqrt(0.8 * 0.2 / 300) = 0.023):
    0.754; and D must not be so conservative that power there exceeds 0.95 (measured:
    0.81; without the noise floor in D it was 0.46)."""
    from audit.solver._solver import _heldout_verdict

    rng = np.random.default_rng(7)
    groups = np.array(["a"] * 1000 + ["b"] * 300)
    labels = ("a", "b")

    def draw(r: float) -> tuple[np.ndarray, np.ndarray]:
        uniform = rng.random(1300) < np.where(groups == "a", 0.10, 0.10 + r)
        solved = rng.random(1300) < 0.10
        return uniform.astype(float), solved.astype(float)

    def stated(r: float) -> float:
        """The detectable reduction a verdict states, averaged over 20 test sets with r."""
        texts = [_heldout_verdict(*draw(r), groups, labels, "equalize", seed_diffs=None)[1]
                 for _ in range(20)]
        return float(np.mean([float(t.split("reduction of ")[1].split(" or more")[0]) for t in texts]))

    # What the verdict states depends a little on the true reduction (through the sd),
    # so take it where the two agree: D stated for data whose true reduction is D.
    detectable = stated(stated(0.06))
    assert 0.05 < detectable < 0.15
    hits = sum(_heldout_verdict(*draw(detectable), groups, labels, "equalize", seed_diffs=None)[0]
               for _ in range(300))
    print(f"stated {detectable:.4f}, power {hits / 300:.3f}")
    assert 0.754 <= hits / 300 <= 0.95, hits


def test_logistic_closed_form_carries_the_synthetic_showcase() -> None:
    """The built-in synthetic data (20,000 rows) is built so that uniform dropout opens a
    gap that group rates close: the deterministic logistic route finds the minority's
    rate near 0 (its signal column is penalised by its own rows only), and the held-out
    test confirms the reduction. Measured: uniform gap 0.052, solved 0.005, rates
    0.606 / 0.069; the bounds leave room for the grid and for the test's noise."""
    sol = solve_group_dropout(load_dataset("synthetic"), budget=0.5, model="logistic")
    assert sol.route == "adaptive-regulariser" and sol.metric == "error_rate"
    assert sol.rates["minority"] < 0.15 and sol.rates["majority"] > 0.58
    assert sol.uniform.test_gap > 0.03 and sol.solved.test_gap < 0.02
    assert sol.improved and sol.verdict.startswith("confirmed on held-out test rows")
    # Deterministic: the same problem gives the same rates.
    again = solve_group_dropout(load_dataset("synthetic"), budget=0.5, model="logistic")
    assert again.rates == sol.rates
    with pytest.raises(ConfigError, match="model='logistic' needs a binary target"):
        solve_group_dropout(load_dataset("synthetic-regression", n_rows=2000), budget=0.3, model="logistic")
