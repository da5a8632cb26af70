"""Closed forms for dropout on the inputs of a linear model (pure numpy/scipy).

Inverted dropout on the inputs (keep probability ``1 - p_i`` for row i, survivors
scaled by ``1 / (1 - p_i)``) has, averaged over masks, the loss

    E_mask (y_i - b - w . x~_i)^2 = (y_i - b - w . x_i)^2 + r_i sum_j w_j^2 x_ij^2,

with ``r_i = p_i / (1 - p_i)`` (DESIGN section 2). Summed over rows this is a ridge
regression whose penalty ``Lambda = diag(sum_i r_i x_ij^2)`` depends on the data and on
each row's rate, so the exact minimiser is one linear solve. The intercept is not
dropped and not penalised.

Logistic regression (Wager, Wang and Liang 2013)
------------------------------------------------
For labels ``y_i`` in {0, 1} the logistic loss of the score ``t`` is ``A(t) - y_i t`` with
``A(t) = log(1 + e^t)``. Under the masks the score ``t~_i = b + w . x~_i`` is unbiased,
``E t~_i = t_i = b + w . x_i``, and, the masks being independent Bernoulli draws scaled by
``1 / (1 - p_i)``, has variance ``Var t~_i = r_i sum_j w_j^2 x_ij^2``. The ``y_i t`` part of
the loss is linear, so only ``A`` feels the noise; a Taylor expansion of ``A`` about
``t_i`` to second order gives, the first-order term averaging to zero,

    E_mask A(t~_i) - A(t_i) ~= 1/2 A''(t_i) Var t~_i,    A''(t) = q (1 - q),  q = sigmoid(t),

so the mask-averaged logistic loss is approximately the clean loss plus the adaptive
penalty ``1/2 r_i q_i (1 - q_i) sum_j w_j^2 x_ij^2`` (the quadratic approximation of their
section 2, with the dropout variance above). For squared loss, ``A(t) = t^2 / 2``, the same
expansion is exact: it is the linear closed form above, whose factor is 1 rather than 1/2
because the squared residual is twice ``A(t) - y t`` up to a constant. Unlike the linear
case the penalty is not quadratic in ``w`` (it weighs each row by the model's own
uncertainty ``q_i (1 - q_i)``), so the minimiser is found by L-BFGS rather than a solve.

How good the approximation is: it drops the third and higher moments of ``t~_i - t_i``.
A dropped feature moves the score by ``w_j x_ij`` whatever the rate, so those moments
shrink with the rate only as fast as the variance does: the approximation is close when
each single feature's contribution ``|w_j x_ij|`` is small next to 1 (many weak features,
as in Wager et al.'s text models), not merely when the rates are small. On five
unit-variance features with rates 0.1 and 0.5 and weights up to ~0.5 its weights are within
~0.006 of exact dropout (``tests/test_dropout_logistic.py``); with weights ~1 the gap grows
to ~0.1, a fifth of dropout's whole effect.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from .._exceptions import ConfigError, TrainingError

__all__ = [
    "dropout_penalty",
    "expected_dropout_logistic_loss",
    "expected_dropout_loss",
    "fit_dropout_linear",
    "fit_dropout_logistic",
    "odds_of_dropping",
]

#: Fixed L2 weight of :func:`fit_dropout_logistic`, relative to each feature's mean square.
LOGISTIC_L2 = 1e-6


def odds_of_dropping(rates: np.ndarray) -> np.ndarray:
    """``r = p / (1 - p)`` per row (rates must be below 1)."""
    rates = np.asarray(rates, dtype=np.float64)
    if np.any(rates < 0) or np.any(rates >= 1):
        raise ConfigError("dropout rates must be in [0, 1)", param="rates")
    return rates / (1.0 - rates)


def dropout_penalty(X: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Diagonal of the dropout ridge penalty: ``Lambda_j = sum_i r_i x_ij^2``."""
    return odds_of_dropping(rates) @ (np.asarray(X, dtype=np.float64) ** 2)


def fit_dropout_linear(X: np.ndarray, y: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact minimiser of the expected squared loss under input dropout.

    Parameters
    ----------
    X, y
        Training rows ``(n, d)`` and targets ``(n,)``.
    rates
        Dropout rate of each row, ``(n,)``.

    Returns
    -------
    weights, intercept

    Examples
    --------
    >>> X = np.array([[1.0], [2.0], [3.0]]); y = 2 * X[:, 0]
    >>> w, b = fit_dropout_linear(X, y, np.zeros(3))
    >>> np.round(w, 6), round(b, 6)
    (array([2.]), 0.0)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    gram = A.T @ A
    gram[np.arange(d), np.arange(d)] += dropout_penalty(X, rates)
    rhs = A.T @ y
    try:
        coef = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        # A feature that is zero on every row (e.g. constant before scaling) leaves the
        # system singular; its weight is then irrelevant, and lstsq sets it to 0.
        coef = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return coef[:d], float(coef[d])


def expected_dropout_loss(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, intercept: float, rates: np.ndarray
) -> float:
    """Mean over rows of the mask-averaged squared loss (the objective above)."""
    X = np.asarray(X, dtype=np.float64)
    resid = np.asarray(y, dtype=np.float64) - intercept - X @ weights
    penalty = odds_of_dropping(rates) * ((X**2) @ (np.asarray(weights) ** 2))
    return float(np.mean(resid**2 + penalty))


def _logistic_inputs(
    X: np.ndarray, y: np.ndarray, rates: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float copies of ``X (n, d)``, ``y (n,)`` in {0, 1} and ``r = p / (1 - p)``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ConfigError(f"X must be a non-empty 2-D array (rows, features); got shape {X.shape}",
                          param="X")
    if not np.all(np.isfinite(X)):
        raise ConfigError("X contains NaN or infinite values", param="X")
    n = X.shape[0]
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,):
        raise ConfigError(f"y must have shape ({n},) to match X; got {y.shape}", param="y")
    if not np.all((y == 0) | (y == 1)):
        raise ConfigError("y must hold labels 0 and 1 (map -1/+1 or class names to 0/1 first)",
                          param="y")
    if y.min() == y.max():
        # One class only: the unpenalised intercept runs off to +-infinity.
        raise ConfigError(f"y holds only the label {int(y[0])}; both 0 and 1 are needed", param="y")
    rates = np.asarray(rates, dtype=np.float64)
    if rates.shape != (n,):
        raise ConfigError(f"rates must have shape ({n},), one rate per row of X; got {rates.shape}",
                          param="rates")
    return X, y, odds_of_dropping(rates)


def _logistic_objective(
    params: np.ndarray, X: np.ndarray, y: np.ndarray, odds: np.ndarray, l2: np.ndarray
) -> tuple[float, np.ndarray]:
    """Value and gradient in ``(w, b)`` of the mean penalised loss plus ``1/2 sum_j l2_j w_j^2``."""
    w, b = params[:-1], params[-1]
    t = b + X @ w
    q = special.expit(t)
    s = q * (1.0 - q)
    spread = (X**2) @ (w**2)  # sum_j w_j^2 x_ij^2, the score's variance before the odds
    n = X.shape[0]
    value = np.mean(np.logaddexp(0.0, t) - y * t + 0.5 * odds * s * spread) + 0.5 * l2 @ (w**2)
    # d/dt of the penalty uses ds/dt = s (1 - 2q): the weight q(1-q) moves with w and b too.
    dt = q - y + 0.5 * odds * spread * s * (1.0 - 2.0 * q)
    grad_w = (X.T @ dt + ((odds * s) @ (X**2)) * w) / n + l2 * w
    return float(value), np.append(grad_w, dt.mean())


def expected_dropout_logistic_loss(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, intercept: float, rates: np.ndarray
) -> float:
    """Mean over rows of the second-order mask-averaged logistic loss (module docstring).

    ``mean_i [log(1 + e^t_i) - y_i t_i + 1/2 r_i q_i (1 - q_i) sum_j w_j^2 x_ij^2]`` with
    ``t_i = intercept + weights . x_i`` and ``q_i = sigmoid(t_i)``, in nats; without the
    tiny L2 term that :func:`fit_dropout_logistic` adds.

    Examples
    --------
    >>> X = np.array([[1.0], [-1.0]]); y = np.array([1.0, 0.0])
    >>> round(expected_dropout_logistic_loss(X, y, np.zeros(1), 0.0, np.zeros(2)), 6)  # log 2
    0.693147
    """
    X, y, odds = _logistic_inputs(X, y, rates)
    params = np.append(np.asarray(weights, dtype=np.float64), float(intercept))
    if params.shape != (X.shape[1] + 1,):
        raise ConfigError(f"weights must have shape ({X.shape[1]},), one per column of X", param="weights")
    return _logistic_objective(params, X, y, odds, np.zeros(X.shape[1]))[0]


def fit_dropout_logistic(
    X: np.ndarray, y: np.ndarray, rates: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-9,
    start: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, float]:
    """Logistic regression under input dropout, by Wager et al.'s adaptive regulariser.

    Minimises the mean over rows of the approximate mask-averaged loss
    (:func:`expected_dropout_logistic_loss`, the same mean-over-rows scale as
    :func:`expected_dropout_loss`) plus ``1/2 * 1e-6 * sum_j mean_i(x_ij^2) w_j^2``
    (:data:`LOGISTIC_L2`). That tiny term keeps the weights finite where nothing else does
    (separable rows, most of all with every rate 0, i.e. plain logistic regression); it
    is fixed, not tuned, scales with each feature so that rescaling a column rescales its
    weight inversely, and on non-separable data moves the weights by ~1e-5 relative
    (1e-6 over the loss's curvature, ~0.1 on unit-scale features).

    The penalty is not convex in ``w`` in general, so the fit is the local minimum that
    L-BFGS-B reaches from ``w = 0`` and the intercept of the base rate. The start and the
    method are fixed: the same inputs give the same output.

    Parameters
    ----------
    X, y
        Training rows ``(n, d)`` and labels ``(n,)`` in {0, 1} (bool, int or float),
        both labels present. A feature that is zero on every row gets weight 0.
    rates
        Dropout rate of each row, ``(n,)``, in ``[0, 1)``.
    max_iter
        Most L-BFGS-B iterations; reaching it raises :class:`TrainingError`.
    tol
        Stop when every component of the objective's gradient is at most ``tol`` (in
        standardised coordinates: each feature scaled to unit mean square).
    start
        ``(weights, intercept)`` to start from instead (a warm start, e.g. the fit at a
        neighbouring rate vector: a few times faster on Adult); for a non-convex penalty
        the local minimum reached may then differ slightly.

    Returns
    -------
    weights, intercept
        On the scale of ``X``; the model's probability is ``sigmoid(intercept + X @ weights)``.

    Raises
    ------
    ConfigError
        For a bad shape or value of ``X``, ``y``, ``rates``, ``max_iter`` or ``tol``.
    TrainingError
        If L-BFGS-B used ``max_iter`` iterations without meeting ``tol``.

    Examples
    --------
    >>> X = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]]); y = np.array([0, 0, 1, 0, 1, 1])
    >>> w0, b0 = fit_dropout_logistic(X, y, np.zeros(6))
    >>> w5, b5 = fit_dropout_logistic(X, y, np.full(6, 0.5))
    >>> np.round(w0, 3), np.round(w5, 3)  # dropout at rate 0.5 about halves the slope here
    (array([1.351]), array([0.7]))
    """
    X, y, odds = _logistic_inputs(X, y, rates)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"max_iter must be a positive integer; got {max_iter!r}", param="max_iter")
    if not (np.isfinite(tol) and tol > 0):
        raise ConfigError(f"tol must be a positive number; got {tol!r}", param="tol")
    d = X.shape[1]
    # The objective is invariant under x_j -> x_j / c, w_j -> c w_j (penalty and L2 both
    # scale as w_j^2 x_j^2), so solving on unit-mean-square columns changes nothing but the
    # conditioning, and makes ``tol`` mean the same whatever the units of X.
    scale = np.sqrt(np.mean(X**2, axis=0))
    scale[scale == 0] = 1.0  # an all-zero column has zero gradient and stays at w_j = 0
    Xs = X / scale
    l2 = LOGISTIC_L2 * np.mean(Xs**2, axis=0)
    if start is None:
        x0 = np.zeros(d + 1)
        x0[-1] = special.logit(y.mean())
    else:
        x0 = np.append(np.asarray(start[0], dtype=np.float64) * scale, float(start[1]))
    res = optimize.minimize(
        _logistic_objective, x0, args=(Xs, y, odds, l2), jac=True, method="L-BFGS-B",
        # ftol=0 leaves ``tol`` in charge: the default relative ftol (2.2e-9) stops at
        # gradients ~5e-8, short of the default tol, most visibly on separable rows.
        options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0},
    )
    if res.status == 1:
        # Iteration limit. Other stops (a line search that cannot improve the last digits)
        # leave the iterate at the precision floor and are accepted.
        raise TrainingError(
            f"dropout logistic fit did not reach tol={tol!r} in max_iter={max_iter} iterations; "
            "raise max_iter or tol",
            param="max_iter",
        )
    return res.x[:d] / scale, float(res.x[d])
