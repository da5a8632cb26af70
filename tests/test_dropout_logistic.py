"""Input dropout on logistic regression: Wager et al.'s adaptive regulariser (closed form).

The reference for "what dropout training does" is twofold: Monte-Carlo dropout training
in torch (fresh masks every step), and, because the problems here have five features,
the exact mask average over all 2^5 masks, minimised by L-BFGS. The second has no noise,
so it splits the closed form's gap to Monte-Carlo training into the second-order
approximation's own error and the Monte-Carlo noise, each with its own tolerance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize, special
from sklearn.linear_model import LogisticRegression

from audit import ConfigError, TrainingError
from audit.solver._dropout_theory import (
    LOGISTIC_L2,
    _logistic_objective,
    expected_dropout_logistic_loss,
    fit_dropout_logistic,
)


def two_groups(n: int = 2000, seed: int = 0, spread: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five N(0, 1) features; a 30% group B has features 3 and 4 ``spread`` times wider.

    Weights of at most 0.6 keep each feature's contribution to the score below ~1, the
    regime where the quadratic approximation is meant to hold (module docstring).
    """
    rng = np.random.default_rng(seed)
    in_b = rng.random(n) < 0.3
    X = rng.normal(size=(n, 5))
    X[np.ix_(in_b, [3, 4])] *= spread
    y = (rng.random(n) < special.expit(0.2 + X @ np.array([0.6, -0.4, 0.3, 0.4, -0.3]))).astype(float)
    return X, y, in_b


def exact_dropout_loss(params: np.ndarray, X: np.ndarray, y: np.ndarray,
                       rates: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean logistic loss averaged exactly over all 2^d inverted-dropout masks, and its gradient."""
    n, d = X.shape
    keep = 1.0 - rates
    w, b = params[:-1], params[-1]
    value, grad = 0.0, np.zeros(d + 1)
    for mask in itertools.product((0.0, 1.0), repeat=d):
        m = np.array(mask)
        prob = keep ** m.sum() * rates ** (d - m.sum())  # P(this mask) for each row
        Xm = X * m / keep[:, None]
        t = b + Xm @ w
        value += prob @ (np.logaddexp(0.0, t) - y * t)
        dt = prob * (special.expit(t) - y)
        grad += np.append(Xm.T @ dt, dt.sum())
    return value / n, grad / n


def fit_exact_dropout(X: np.ndarray, y: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, float]:
    res = optimize.minimize(exact_dropout_loss, np.zeros(X.shape[1] + 1), args=(X, y, rates), jac=True,
                            method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0.0, "maxiter": 5000})
    assert res.status != 1
    return res.x[:-1], float(res.x[-1])


def monte_carlo_dropout_training(X: np.ndarray, y: np.ndarray, rates: np.ndarray, seed: int,
                                 steps: int = 3000, lr: float = 2.0) -> tuple[np.ndarray, float]:
    """Full-batch SGD on a torch logistic model, fresh inverted-dropout masks every step.

    The iterates of the second half are averaged (Polyak-Ruppert): at a constant step the
    last iterate keeps jittering with the mask noise, the average converges. lr=2 is inside
    the stability limit 2 / 0.59 = 3.4 (0.59: largest Hessian eigenvalue of the dropout
    loss of :func:`two_groups` at its minimum; the smallest, 0.21, makes the first half of
    the steps far more than enough to forget the start).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        Xt = torch.tensor(X, dtype=torch.float64)
        yt = torch.tensor(y, dtype=torch.float64)
        keep = torch.tensor(1.0 - rates, dtype=torch.float64)[:, None]
        model = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        total = torch.zeros(X.shape[1] + 1, dtype=torch.float64)
        for step in range(steps):
            mask = (torch.rand(Xt.shape, generator=gen, dtype=torch.float64) < keep) / keep
            opt.zero_grad()
            loss_fn(model(Xt * mask)[:, 0], yt).backward()
            opt.step()
            if step >= steps // 2:
                with torch.no_grad():
                    total += torch.cat([model.weight[0], model.bias])
        coef = (total / (steps - steps // 2)).numpy()
    finally:
        torch.set_num_threads(threads)
    return coef[:-1], float(coef[-1])


def per_group(w: np.ndarray, b: float, X: np.ndarray, y: np.ndarray, in_b: np.ndarray) -> np.ndarray:
    """``[error A, log-loss A, error B, log-loss B]`` at threshold 0.5."""
    t = b + X @ w
    out = []
    for rows in (~in_b, in_b):
        out += [np.mean((t[rows] > 0) != (y[rows] == 1)),
                np.mean(np.logaddexp(0.0, t[rows]) - y[rows] * t[rows])]
    return np.array(out)


def disagreement(a: tuple[np.ndarray, float], c: tuple[np.ndarray, float], X: np.ndarray,
                 in_b: np.ndarray) -> np.ndarray:
    """Share of each group's rows on which two models predict different labels."""
    differ = ((a[1] + X @ a[0]) > 0) != ((c[1] + X @ c[0]) > 0)
    return np.array([differ[~in_b].mean(), differ[in_b].mean()])


def coef_gap(a: tuple[np.ndarray, float], c: tuple[np.ndarray, float]) -> float:
    return float(np.abs(np.append(a[0] - c[0], a[1] - c[1])).max())


def test_gradient_matches_finite_differences() -> None:
    X, y, in_b = two_groups(n=300)
    odds = np.where(in_b, 1.0, 0.25)  # rates 0.5 and 0.2
    l2 = np.full(5, 1e-3)
    rng = np.random.default_rng(1)
    h = 1e-6
    for _ in range(3):
        p = rng.normal(size=6)
        value, grad = _logistic_objective(p, X, y, odds, l2)
        numeric = np.array([
            (_logistic_objective(p + h * e, X, y, odds, l2)[0] - _logistic_objective(p - h * e, X, y, odds, l2)[0])
            / (2 * h) for e in np.eye(6)])
        # Central differences: truncation ~h^2 |f'''| ~ 1e-12 and rounding ~1e-16 |f| / h
        # ~ 1e-10 on an objective of order 1, so 1e-7 is loose yet far below the terms checked.
        assert np.abs(grad - numeric).max() < 1e-7
        # Teeth: the part of the gradient that comes from d q(1-q) / d(w, b), the easiest
        # term to forget, is many orders of magnitude above that tolerance here.
        t = p[-1] + X @ p[:-1]
        q = special.expit(t)
        dt = 0.5 * odds * ((X**2) @ (p[:-1] ** 2)) * q * (1 - q) * (1 - 2 * q)
        assert np.abs(np.append(X.T @ dt, dt.sum()) / len(y)).max() > 1e-3
        # The value is the public objective plus the L2 term.
        rates = odds / (1 + odds)
        assert value == pytest.approx(expected_dropout_logistic_loss(X, y, p[:-1], p[-1], rates)
                                      + 0.5 * l2 @ p[:-1] ** 2, rel=1e-12)


def test_expected_loss_is_the_exact_mask_average_to_second_order() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4))
    y = (rng.random(300) < 0.4).astype(float)
    rates = np.where(rng.random(300) < 0.5, 0.5, 0.1)
    w, b = np.array([0.8, -0.5, 0.3, 1.0]), 0.3
    errors = []
    for eps in (0.1, 0.05):
        clean = expected_dropout_logistic_loss(X, y, eps * w, b, np.zeros(300))
        approx = expected_dropout_logistic_loss(X, y, eps * w, b, rates)
        exact = exact_dropout_loss(np.append(eps * w, b), X, y, rates)[0]
        errors.append(abs((exact - clean) / (approx - clean) - 1))
    # The neglected terms are higher order in the score's noise, so the penalty's relative
    # error must shrink with the weights (measured 1.9e-3 at 0.1 and 5.2e-4 at 0.05, ~eps^2).
    # A factor 1 instead of 1/2 would leave it at 1, a missing q(1-q) at ~3.
    assert errors[1] < 2e-3
    assert errors[1] < 0.5 * errors[0]


def test_rates_zero_is_logistic_regression_as_in_sklearn() -> None:
    X, y, _ = two_groups()
    w, b = fit_dropout_logistic(X, y, np.zeros(len(y)))
    # Exactly our objective in sklearn's terms: on columns scaled to unit mean square the
    # tiny L2 is 1e-6/2 ||u||^2 next to the mean loss, i.e. C = 1 / (n * 1e-6).
    scale = np.sqrt(np.mean(X**2, axis=0))
    same = LogisticRegression(C=1 / (len(y) * LOGISTIC_L2), solver="newton-cholesky", tol=1e-12,
                              max_iter=1000).fit(X / scale, y)
    # Both solvers stop at gradients ~1e-9 on a problem with curvature ~0.2: 1e-6 is loose.
    assert np.abs(w - same.coef_[0] / scale).max() < 1e-6
    assert abs(b - same.intercept_[0]) < 1e-6
    plain = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    # The tiny L2 moves the weights by ~1e-6 / curvature (~0.2) times |w| (< 1): below 1e-4.
    assert np.abs(w - plain.coef_[0]).max() < 1e-4
    assert abs(b - plain.intercept_[0]) < 1e-4


def test_fit_is_deterministic_and_takes_labels_in_any_numeric_form() -> None:
    X, y, in_b = two_groups(n=500)
    rates = np.where(in_b, 0.5, 0.1)
    w, b = fit_dropout_logistic(X, y, rates)
    for labels in (y, y.astype(int), y.astype(bool), list(y)):
        w2, b2 = fit_dropout_logistic(X, labels, rates)
        assert np.array_equal(w, w2) and b == b2


def test_separable_rows_without_dropout_give_finite_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    w, b = fit_dropout_logistic(X, y, np.zeros(500))
    # Without the tiny L2 the weights would grow until L-BFGS gave up; with it they stop
    # at ~90 (only log(1/1e-6) / margin), separate the rows and point along (1, 0.5, 0).
    assert np.all(np.isfinite(w)) and np.linalg.norm(w) < 1e3
    assert np.all(((b + X @ w) > 0) == (y == 1))
    assert w[1] / w[0] == pytest.approx(0.5, abs=0.05)
    # Dropout alone regularises too: the penalty keeps them an order of magnitude smaller.
    w_drop, _ = fit_dropout_logistic(X, y, np.full(500, 0.3))
    assert np.linalg.norm(w_drop) < 0.2 * np.linalg.norm(w)


def test_zero_feature_gets_zero_weight_and_changes_nothing_else() -> None:
    X, y, in_b = two_groups(n=500)
    rates = np.where(in_b, 0.5, 0.1)
    w, b = fit_dropout_logistic(X, y, rates)
    w0, b0 = fit_dropout_logistic(np.insert(X, 2, 0.0, axis=1), y, rates)
    assert w0[2] == 0.0
    # The column changes nothing in the objective, but rounding in the longer dot products
    # can end L-BFGS on another iteration. Each run stops at gradient <= 1e-9 (tol), i.e.
    # within ~1e-9 / curvature (>= ~0.1 here) = 1e-8 of the minimum (measured 4.6e-9).
    assert np.abs(np.delete(w0, 2) - w).max() < 1e-7 and abs(b0 - b) < 1e-7


def test_rescaling_a_feature_rescales_its_weight() -> None:
    X, y, in_b = two_groups(n=500)
    rates = np.where(in_b, 0.5, 0.1)
    w, b = fit_dropout_logistic(X, y, rates)
    units = np.array([1.0, 1000.0, 1e-3, 1.0, 7.0])
    w_units, b_units = fit_dropout_logistic(X * units, y, rates)
    # The objective is invariant and the solver works on unit-mean-square columns: the
    # same iterates up to rounding, which can only change where L-BFGS stops, within
    # ~1e-8 of the minimum (as for the zero column above).
    assert np.abs(w_units * units - w).max() < 1e-7 and abs(b_units - b) < 1e-7


def test_closed_form_matches_monte_carlo_dropout_training() -> None:
    X, y, in_b = two_groups()
    X_test, y_test, in_b_test = two_groups(n=20_000, seed=100)
    rates = np.where(in_b, 0.5, 0.1)
    closed = fit_dropout_logistic(X, y, rates)
    exact = fit_exact_dropout(X, y, rates)
    mc = [monte_carlo_dropout_training(X, y, rates, seed) for seed in (0, 1)]

    # Tolerances, from runs on three draws of this problem (data seeds 0-2) with three
    # Monte-Carlo seeds each:
    # (b) Monte-Carlo noise: 3000 full-batch steps, second half averaged, land within
    #     7e-4..1.7e-3 of the exact mask-averaged minimiser, at most 2.3e-3 apart between
    #     seeds.
    TOL_MC = 5e-3
    # (a) The second-order approximation: 3.8e-3..5.8e-3 from the exact minimiser (weights
    #     <= 0.6, rates 0.1/0.5; the module docstring on why it does not vanish).
    TOL_APPROX = 1e-2
    for run in mc:
        assert coef_gap(run, exact) < TOL_MC
    assert coef_gap(mc[0], mc[1]) < TOL_MC
    assert coef_gap(closed, exact) < TOL_APPROX
    # The key check, closed form against dropout training (measured 3.4e-3..7.1e-3).
    for run in mc:
        assert coef_gap(closed, run) < TOL_APPROX + TOL_MC

    # Held out, per group. Measured |closed form - MC|: error rates <= 2.5e-3, log-losses
    # <= 1.4e-3 nats (group B, where rate 0.5 makes the approximation coarser), labels
    # disagreeing on <= 3.5e-3 of a group's rows (which bounds the error-rate change);
    # between MC seeds <= 1e-3 and 2e-4. With 6,000 group-B test rows the binomial noise
    # of a share near 3e-3 is ~7e-4.
    TOL_ERR = TOL_DISAGREE = 1e-2
    TOL_LOGLOSS = 3e-3
    for run in mc:
        diff = np.abs(per_group(*closed, X_test, y_test, in_b_test) - per_group(*run, X_test, y_test, in_b_test))
        assert diff[[0, 2]].max() < TOL_ERR
        assert diff[[1, 3]].max() < TOL_LOGLOSS
        assert disagreement(closed, run, X_test, in_b_test).max() < TOL_DISAGREE

    # Teeth: the same closed form without dropout, or with one rate for everyone (same
    # mean), is well outside these tolerances (measured gaps 0.17-0.19 and 0.056-0.072 in
    # the weights; 0.02-0.05 of labels disagreeing; group B's log-loss off by >= 0.0085).
    no_dropout = fit_dropout_logistic(X, y, np.zeros(len(y)))
    uniform = fit_dropout_logistic(X, y, np.full(len(y), rates.mean()))
    for other in (no_dropout, uniform):
        assert coef_gap(other, mc[0]) > 3 * (TOL_APPROX + TOL_MC)
        assert disagreement(other, mc[0], X_test, in_b_test).min() > 1.5 * TOL_DISAGREE
        gap_b = abs(per_group(*other, X_test, y_test, in_b_test)[3] - per_group(*mc[0], X_test, y_test, in_b_test)[3])
        assert gap_b > 2 * TOL_LOGLOSS


def test_higher_rate_for_a_group_shrinks_the_weights_it_leans_on() -> None:
    X, y, in_b = two_groups()
    norms, fits = [], []
    for rate_b in (0.0, 0.2, 0.4, 0.6, 0.8):
        w, _ = fit_dropout_logistic(X, y, np.where(in_b, rate_b, 0.1))
        norms.append(np.linalg.norm(w))
        fits.append(w)
    # More dropout on group B, more shrinkage (measured |w| 0.89, 0.81, 0.70, 0.55, 0.33).
    assert np.all(np.diff(norms) < -0.05)
    # Group B's rows are where features 3 and 4 are large, so its penalty falls on them:
    # from rate 0 to 0.6 they keep ~50% of their size, the others ~66% (measured).
    kept = np.abs(fits[3]) / np.abs(fits[0])
    assert kept[[3, 4]].max() < kept[[0, 1, 2]].min() - 0.08
    # When group B is nearly everyone, its rate drives the whole fit.
    mostly_b = np.ones(len(y), dtype=bool)
    mostly_b[:100] = False
    w_low, _ = fit_dropout_logistic(X, y, np.where(mostly_b, 0.1, 0.0))
    w_high, _ = fit_dropout_logistic(X, y, np.where(mostly_b, 0.5, 0.0))
    assert np.linalg.norm(w_high) < 0.8 * np.linalg.norm(w_low)


def test_iteration_limit_is_an_error() -> None:
    X, y, in_b = two_groups(n=300)
    with pytest.raises(TrainingError, match="max_iter") as info:
        fit_dropout_logistic(X, y, np.where(in_b, 0.5, 0.1), max_iter=1)
    assert info.value.param == "max_iter"


X3, Y3 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0.0, 1.0, 1.0])


@pytest.mark.parametrize(("kwargs", "param", "message"), [
    ({"X": np.ones(3)}, "X", "2-D"),
    ({"X": np.ones((0, 2)), "y": np.ones(0), "rates": np.ones(0)}, "X", "non-empty"),
    ({"X": np.array([[0.0, np.nan], [1.0, 0.0], [1.0, 1.0]])}, "X", "NaN"),
    ({"y": np.array([0.0, 1.0])}, "y", r"shape \(3,\)"),
    ({"y": np.array([-1.0, 1.0, 1.0])}, "y", "0 and 1"),
    ({"y": np.array([0.0, 0.5, 1.0])}, "y", "0 and 1"),
    ({"y": np.ones(3)}, "y", "only the label 1"),
    ({"rates": np.zeros(2)}, "rates", r"shape \(3,\)"),
    ({"rates": np.array([0.1, 1.0, 0.1])}, "rates", r"\[0, 1\)"),
    ({"rates": np.array([0.1, -0.1, 0.1])}, "rates", r"\[0, 1\)"),
    ({"max_iter": 0}, "max_iter", "positive integer"),
    ({"max_iter": 10.5}, "max_iter", "positive integer"),
    ({"tol": 0.0}, "tol", "positive"),
    ({"tol": float("nan")}, "tol", "positive"),
])
def test_bad_input_names_the_argument(kwargs: dict, param: str, message: str) -> None:
    args = {"X": X3, "y": Y3, "rates": np.zeros(3), **kwargs}
    with pytest.raises(ConfigError, match=message) as info:
        fit_dropout_logistic(**args)
    assert info.value.param == param


def test_expected_loss_checks_the_weights() -> None:
    with pytest.raises(ConfigError, match="weights") as info:
        expected_dropout_logistic_loss(X3, Y3, np.zeros(3), 0.0, np.zeros(3))
    assert info.value.param == "weights"
