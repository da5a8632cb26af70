"""Statistics of the one-run privacy audit of Steinke, Nasr and Jagielski.

Reference: T. Steinke, M. Nasr, M. Jagielski, "Privacy Auditing with One (1) Training
Run", NeurIPS 2023, arXiv:2305.08846. Statement numbers below are those of arXiv v1 as
cited by public ports of the paper's Appendix D code; other versions of the paper number
their statements differently.

Setting (the paper's auditor): ``m`` canaries, each included in the training data
independently with probability 1/2 (``Z`` uniform on ``{-1, +1}^m``, everything else in the
dataset fixed). The algorithm ``M`` is run once; from its output alone the auditor makes
guesses ``T`` in ``{-1, 0, +1}^m`` ("in", abstain, "out") with at most ``r`` non-abstentions,
e.g. "in" for the ``k+`` highest scores and "out" for the ``k-`` lowest, ``r = k+ + k-``.
``W`` counts the correct guesses.

What is implemented:

* :func:`correct_guess_p_value` is the paper's tail bound for an ``(epsilon, delta)``-DP
  ``M`` (the closed form of Corollary 5.4, which follows from Theorem 5.2)::

      P[W >= v] <= f(v) + 2 m delta max_{i = 1..m} (f(v - i) - f(v)) / i,
      f(u) = P[Binomial(r, e^eps / (1 + e^eps)) >= u],     f(u) = 1 for u <= 0.

  For ``delta = 0`` this is the paper's main theorem for pure DP: ``W`` is stochastically
  dominated by ``Binomial(r, e^eps / (1 + e^eps))``, the accuracy of r independent uses of
  eps-DP randomized response. The maximum over ``i > v`` sits at ``i = v`` (there
  ``f(v - i) = 1``), so only ``i = 1..v`` is evaluated; the bound is capped at 1.
* :func:`epsilon_lower_bound` is the paper's Appendix D procedure (``get_eps_audit``): the
  largest ``epsilon`` that the observation rejects at level ``beta = 1 - confidence``,
  i.e. ``sup {eps >= 0 : p(eps) < beta}``, found by doubling an upper bracket and bisecting
  to 1e-9. The search assumes ``p(eps)`` nondecreasing in ``eps``, which held in every case
  we scanned; regardless, the value returned is the rejected end of the final bracket (never
  rounded up), and as an ``(eps, delta)``-DP algorithm is also ``(eps', delta)``-DP for every
  ``eps' > eps``, the probability that it exceeds the true ``epsilon`` is at most ``beta``.

What the guarantee assumes: canaries are included independently with probability exactly
1/2; ``M`` is ``(epsilon, delta)``-DP with respect to adding or removing one canary; the
guesses depend on ``M``'s output (and public information) only, never on the inclusion
bits; and ``r`` is fixed before the guesses are scored. Trying several ``(k+, k-)`` and
reporting the best bound is a multiple comparison the theorem does not cover: split
``beta`` between the tries (Bonferroni) or fix them in advance. The result lower-bounds the
algorithm's epsilon for adding or removing one canary; with few canaries it is typically far
below the accountant's upper bound, since ``v`` out of ``r`` correct can certify at most
about ``log(r / log(1 / beta))``.

Cost: with ``delta = 0`` each evaluation is one regularized incomplete beta function; with
``delta > 0`` it is ``O(v)`` vectorized work (the binomial pmf below ``v``), whose log
binomial coefficients are computed once per call.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np
from scipy import special

from .._exceptions import ConfigError, InternalError
from ..defaults import DEFAULT_CONFIDENCE

__all__ = ["correct_guess_p_value", "epsilon_lower_bound"]

#: Width of the final bisection bracket of :func:`epsilon_lower_bound`.
_EPS_TOLERANCE = 1e-9
#: Upper end of the bracket search; p(eps) -> 1 as eps -> inf, so it is never reached in practice.
_EPS_CEILING = 2.0**12


def _count(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, not the bool {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name} must be an integer, not {value!r}") from None


def _check_counts(canaries: object, guesses: object, correct: object) -> tuple[int, int, int]:
    m = _count("canaries", canaries)
    r = _count("guesses", guesses)
    v = _count("correct", correct)
    if m < 0:
        raise ConfigError(f"canaries must be >= 0, not {m}")
    if not 0 <= r <= m:
        raise ConfigError(f"guesses must satisfy 0 <= guesses <= canaries = {m}, not {r}")
    if not 0 <= v <= r:
        raise ConfigError(f"correct must satisfy 0 <= correct <= guesses = {r}, not {v}")
    return m, r, v


def _check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float | np.floating | np.integer):
        raise ConfigError(f"delta must be a number in [0, 1), not {delta!r}")
    if not 0 <= delta < 1:  # also rejects NaN
        raise ConfigError(f"delta must be in [0, 1), not {delta}")
    return float(delta)


def _tail_bound(m: int, r: int, v: int, delta: float) -> Callable[[float], float]:
    """``eps -> `` the Corollary 5.4 bound on ``P[W >= v]`` for fixed ``m, r, v, delta``."""
    if v == 0:
        return lambda eps: 1.0
    use_delta = delta > 0
    if use_delta:
        # pmf is evaluated at k = v-1, v-2, ..., 0 so its cumulative sum over the first i
        # entries is f(v - i) - f(v) = P[v - i <= Binomial < v].
        k = np.arange(v - 1, -1, -1, dtype=np.float64)
        log_comb = special.gammaln(r + 1.0) - special.gammaln(k + 1.0) - special.gammaln(r - k + 1.0)
        width = np.arange(1, v + 1, dtype=np.float64)
        weight = 2.0 * m * delta

    def bound(eps: float) -> float:
        q = float(special.expit(eps))
        tail = float(special.bdtrc(v - 1, r, q))  # P[Binomial(r, q) >= v]
        if not use_delta:
            return min(tail, 1.0)
        # log q and log(1 - q) without forming 1 - q, which rounds to 0 for large eps.
        softplus = math.log1p(math.exp(-eps))
        pmf = np.exp(log_comb + k * -softplus + (r - k) * (-eps - softplus))
        alpha = float(np.max(np.cumsum(pmf) / width))
        return min(tail + weight * alpha, 1.0)

    return bound


def correct_guess_p_value(
    *, canaries: int, guesses: int, correct: int, epsilon: float, delta: float
) -> float:
    """Upper bound on the probability of ``correct`` or more correct guesses under (eps, delta)-DP.

    The tail bound of Steinke, Nasr and Jagielski (arXiv:2305.08846v1, Corollary 5.4; see
    the module docstring for the statement and its assumptions). Read as a p-value: a
    small value means an ``(epsilon, delta)``-DP algorithm rarely lets an auditor be this
    accurate.

    Parameters
    ----------
    canaries
        m, the number of canaries, each included independently with probability 1/2.
    guesses
        r, the number of non-abstaining guesses (``k+ + k-``), ``0 <= r <= m``.
    correct
        v, how many of those guesses were right, ``0 <= v <= r``.
    epsilon
        Privacy parameter of the null hypothesis, finite and ``>= 0``.
    delta
        Privacy parameter of the null hypothesis, ``0 <= delta < 1``.

    Returns
    -------
    float
        The bound, in ``[0, 1]``; exactly ``P[Binomial(r, e^eps/(1+e^eps)) >= v]`` when
        ``delta = 0``, and 1 when ``correct = 0``.

    Raises
    ------
    ConfigError
        (a ``ValueError``) naming the argument that is out of range or of the wrong type.

    Examples
    --------
    Ten guesses, all right, against a 0-DP algorithm: a fair coin ten times.

    >>> p = correct_guess_p_value(canaries=100, guesses=10, correct=10, epsilon=0.0, delta=0.0)
    >>> print(f"{p:.6g}")
    0.000976562
    >>> correct_guess_p_value(canaries=100, guesses=10, correct=10, epsilon=0.0, delta=1e-3) > p
    True
    """
    m, r, v = _check_counts(canaries, guesses, correct)
    d = _check_delta(delta)
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float | np.floating | np.integer):
        raise ConfigError(f"epsilon must be a finite number >= 0, not {epsilon!r}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ConfigError(f"epsilon must be a finite number >= 0, not {epsilon}")
    return _tail_bound(m, r, v, d)(float(epsilon))


def epsilon_lower_bound(
    *, canaries: int, guesses: int, correct: int, delta: float, confidence: float = DEFAULT_CONFIDENCE
) -> float:
    """Empirical lower bound on epsilon from one run: the largest epsilon the audit rejects.

    With ``beta = 1 - confidence`` and ``p(eps)`` the :func:`correct_guess_p_value` of the
    observation, returns ``sup {eps >= 0 : p(eps) < beta}`` to within 1e-9 (rounded down),
    or 0.0 when even ``eps = 0`` is not rejected. If the audited algorithm is
    ``(eps, delta)``-DP, the returned value exceeds ``eps`` with probability at most
    ``1 - confidence`` (over the canaries' coin flips and the algorithm). This is the search
    of the paper's Appendix D (``get_eps_audit``) with a finer tolerance.

    Parameters
    ----------
    canaries
        m, the number of canaries, each included independently with probability 1/2.
    guesses
        r, the number of non-abstaining guesses (``k+ + k-``), ``0 <= r <= m``; fix it
        before looking at which guesses are right (see the module docstring).
    correct
        v, how many of those guesses were right, ``0 <= v <= r``.
    delta
        The delta the epsilon is audited at, ``0 <= delta < 1``; larger delta, smaller bound.
    confidence
        ``1 - beta``, in ``(0, 1)``; higher confidence, smaller bound.

    Returns
    -------
    float
        The lower bound on epsilon, ``>= 0``. Bad arguments raise ``ConfigError`` as
        :func:`correct_guess_p_value` does.

    Examples
    --------
    The paper's worked example (Appendix D): 1000 canaries, 100 guesses, 75 right, at
    delta = 1e-4 and 95% confidence.

    >>> round(epsilon_lower_bound(canaries=1000, guesses=100, correct=75, delta=1e-4), 3)
    0.673
    >>> epsilon_lower_bound(canaries=1000, guesses=100, correct=50, delta=0.0)
    0.0
    """
    m, r, v = _check_counts(canaries, guesses, correct)
    d = _check_delta(delta)
    if isinstance(confidence, bool) or not isinstance(
        confidence, int | float | np.floating | np.integer
    ):
        raise ConfigError(f"confidence must be a number in (0, 1), not {confidence!r}")
    if not 0 < confidence < 1:  # also rejects NaN
        raise ConfigError(f"confidence must be in (0, 1), not {confidence}")
    beta = 1.0 - float(confidence)

    p = _tail_bound(m, r, v, d)
    if p(0.0) >= beta:
        return 0.0
    bound = largest_where(lambda eps: p(eps) < beta, tolerance=_EPS_TOLERANCE, ceiling=_EPS_CEILING)
    if bound is None:  # pragma: no cover - p(eps) -> 1 as eps -> inf
        raise InternalError(f"no epsilon up to {_EPS_CEILING} is consistent with the audit")
    return bound


def largest_where(holds: Callable[[float], bool], *, tolerance: float, ceiling: float) -> float | None:
    """``sup {x >= 0 : holds(x)}`` for a ``holds`` true at 0 and monotone (true, then false).

    Doubles an upper bracket from 1, then bisects to ``tolerance``; returns the end of the
    final bracket where ``holds`` is true (never rounded up), or ``None`` if it still holds
    at ``ceiling``.
    """
    lo, hi = 0.0, 1.0  # invariant: holds(lo), not holds(hi)
    while holds(hi):
        if hi >= ceiling:
            return None
        lo, hi = hi, 2.0 * hi
    while hi - lo > tolerance:
        mid = 0.5 * (lo + hi)
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return lo
