"""Closed forms for dropout on the inputs of a linear model (pure numpy).

Inverted dropout on the inputs (keep probability ``1 - p_i`` for row i, survivors
scaled by ``1 / (1 - p_i)``) has, averaged over masks, the loss

    E_mask (y_i - b - w . x~_i)^2 = (y_i - b - w . x_i)^2 + r_i sum_j w_j^2 x_ij^2,

with ``r_i = p_i / (1 - p_i)`` (DESIGN section 2). Summed over rows this is a ridge
regression whose penalty ``Lambda = diag(sum_i r_i x_ij^2)`` depends on the data and on
each row's rate, so the exact minimiser is one linear solve. The intercept is not
dropped and not penalised.
"""

from __future__ import annotations

import numpy as np

from .._exceptions import ConfigError

__all__ = [
    "dropout_penalty",
    "expected_dropout_loss",
    "fit_dropout_linear",
    "odds_of_dropping",
]


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
