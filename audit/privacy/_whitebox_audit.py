"""Scores of the white-box canary audit, from what the trainer observed at every step.

Pure numpy: the traces come from :mod:`audit.training._whitebox`.

* Gradient canaries (DP-SGD): the observation ``z_t`` of a canary's coordinate is, in
  units of C, ``b_t + sigma * noise`` with ``b_t = 1`` when the canary was sampled at
  step t (probability q if included, never otherwise). The score is the log-likelihood
  ratio of "included" against "excluded" for that model,
  ``sum_t log(1 - q + q exp((z_t - 1/2) / sigma^2))``: by Neyman-Pearson, the most
  powerful test of one canary's membership from what the auditor sees. It uses only
  the claimed sigma and q (public), never the coins.
* Row canaries (every arm): ``c_{t,i}`` in ``[0, 1]``, how closely step t's update
  carries canary i's input on the first layer, whatever dropout mask it had
  (:func:`audit.training._whitebox.row_canary_matches`); the score is the largest over
  steps. A canary that was in a batch where its gradient was not ~0 scores ~1; one that
  was never in scores only what a random direction matches. A canary that was in but
  never showed (its label already fitted each time it was drawn) scores like one that
  was not: so the row audit guesses "in" only, for the ``k`` highest scores.

Gradient canaries' guesses are fixed as for the black-box audit: "in" for the ``k``
highest scores, "out" for the ``k`` lowest; ties are broken by canary order.
"""

from __future__ import annotations

import numpy as np

from .._exceptions import InternalError

__all__ = ["gradient_canary_scores", "guesses_from_scores", "in_guesses_from_scores",
           "row_canary_scores"]


def gradient_canary_scores(observation: np.ndarray, *, noise_multiplier: float,
                           sample_rate: float) -> np.ndarray:
    """Log-likelihood ratio per gradient canary from ``(steps, canaries)`` observations.

    Examples
    --------
    >>> z = np.array([[1.0, 0.0], [1.0, 0.0]])
    >>> s = gradient_canary_scores(z, noise_multiplier=1.0, sample_rate=0.5)
    >>> bool(s[0] > s[1])
    True
    """
    z = np.asarray(observation, dtype=float)
    sigma2 = float(noise_multiplier) ** 2
    q = float(sample_rate)
    if not (sigma2 > 0 and 0 < q < 1):
        raise InternalError(f"need noise_multiplier > 0 and 0 < sample_rate < 1, not {noise_multiplier}, {q}")
    per_step = np.logaddexp(np.log1p(-q), np.log(q) + (z - 0.5) / sigma2)
    return np.asarray(per_step.sum(axis=0))


def row_canary_scores(matches: np.ndarray) -> np.ndarray:
    """Each canary's largest match over steps, from ``(steps, canaries)``.

    Examples
    --------
    >>> row_canary_scores(np.array([[0.0, 0.9, 0.2], [0.8, 0.3, 0.1]]))
    array([0.8, 0.9, 0.2])
    """
    c = np.asarray(matches, dtype=float)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise InternalError(f"matches must be (steps, canaries), not {c.shape}")
    return np.asarray(c.max(axis=0))


def guesses_from_scores(scores: np.ndarray, included: np.ndarray, k: int) -> tuple[int, int]:
    """(guesses, correct) for "in" on the ``k`` highest and "out" on the ``k`` lowest scores."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    k = min(k, len(order) // 2)
    guess_in, guess_out = order[:k], order[len(order) - k:]
    correct = int(included[guess_in].sum() + (~included[guess_out]).sum())
    return 2 * k, correct


def in_guesses_from_scores(scores: np.ndarray, included: np.ndarray, k: int) -> tuple[int, int]:
    """(guesses, correct) for "in" on the ``k`` highest scores and no "out" guess.

    Examples
    --------
    >>> in_guesses_from_scores(np.array([1.0, 0.2, 0.9, 0.99]), np.array([True, True, False, True]), 2)
    (2, 2)
    """
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    k = min(k, len(order))
    return k, int(np.asarray(included)[order[:k]].sum())
