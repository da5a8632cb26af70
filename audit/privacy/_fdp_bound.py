"""The one-run audit bound for Gaussian differential privacy (Mahloujifar et al. 2024).

Reference: S. Mahloujifar, L. Melis, K. Chaudhuri, "Auditing f-Differential Privacy in
One Run", ICML 2025, arXiv:2410.22235 (the numerical bound on the number of correct
guesses of an f-DP mechanism, for membership: alphabet size k = 2).

Setting: as in :mod:`audit.privacy._audit_bound` (``m`` canaries, each in with
probability 1/2, ``r`` non-abstaining guesses fixed in advance, ``v`` of them right).
Where Steinke et al. bound the guesses of *any* (epsilon, delta)-DP algorithm, this
bound uses the whole trade-off curve ``f`` of a hypothesised family: here mu-Gaussian
DP, ``f_mu(alpha) = Phi(Phi^-1(1 - alpha) - mu)`` (Dong, Roth, Su 2019), which DP-SGD
with Poisson sampling approaches as its steps grow (their central limit theorem). An
observation too accurate for every curve up to ``mu`` rejects them all; the largest
such ``mu`` is the lower bound, and ``epsilon(mu, delta)`` of mu-GDP,

    delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2),

is reported as the epsilon lower bound at the audit's delta.

The test (the paper's Algorithm 3 with k = 2, justified by its Theorem 3.2): with
``beta = 1 - confidence``, start from ``r_v = beta v / m`` and ``h_v = beta (r - v) / m``,
then for ``i = v-1, ..., 0``

    h_i = fbar^-1(r_{i+1}) = Phi(Phi^-1(r_{i+1}) - mu)
    r_i = r_{i+1} + i / (r - i) * (h_i - h_{i+1})

and reject mu-GDP when ``r_0 + h_0 > r / m`` (then at most ``beta`` is the probability
of ``v`` or more correct guesses). The paper's appendix code takes ``max(h_{i+1}, ...)``
in the first line; the printed algorithm, which the proof covers, does not, and neither
do we. The paper writes ``>=``; we reject on ``>`` only, the conservative side.

What it assumes, beyond the one-run setting: the run's privacy is described by a
mu-GDP curve. DP-SGD's exact curve is close to Gaussian but not equal to it (its
tails are heavier), so this bound estimates the run's epsilon more tightly than
Steinke et al.'s but is not a proof against an arbitrary (epsilon, delta)-DP
algorithm; only :func:`audit.privacy._audit_bound.epsilon_lower_bound` is used to flag
a violation. The search assumes rejection is monotone in mu (it held in every case we
scanned) and returns the rejected end of its bracket.
"""

from __future__ import annotations

import math

from scipy.special import log_ndtr, ndtr, ndtri

from .._exceptions import ConfigError, InternalError
from ._audit_bound import _EPS_CEILING, _check_counts, largest_where

__all__ = ["gaussian_dp_epsilon", "gaussian_dp_rejects", "mu_lower_bound"]

#: Upper end of the mu search: beyond it every observation is consistent.
_MU_CEILING = 64.0
_MU_TOLERANCE = 1e-6


def _inverse_blow_up(x: float, mu: float) -> float:
    """``Phi(Phi^-1(x) - mu)``: the least false-negative mass an f_mu test leaves at ``x``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return float(ndtr(ndtri(x) - mu))


def gaussian_dp_rejects(mu: float, *, canaries: int, guesses: int, correct: int, beta: float) -> bool:
    """Whether ``correct`` right out of ``guesses`` rejects mu-GDP at level ``beta``."""
    m, r, v = _check_counts(canaries, guesses, correct)
    if v == 0 or r == 0:
        return False
    r_i, h_i = beta * v / m, beta * (r - v) / m
    for i in range(v - 1, -1, -1):
        h_next = _inverse_blow_up(r_i, mu)
        r_i = r_i + i / (r - i) * (h_next - h_i)
        h_i = h_next
    return r_i + h_i > r / m


def mu_lower_bound(*, canaries: int, guesses: int, correct: int, confidence: float) -> float:
    """The largest mu that the observation rejects (0.0 if none), to 1e-6, rounded down."""
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), not {confidence}")
    beta = 1.0 - confidence

    def rejects(mu: float) -> bool:
        return gaussian_dp_rejects(mu, canaries=canaries, guesses=guesses, correct=correct, beta=beta)

    if not rejects(0.0):
        return 0.0
    bound = largest_where(rejects, tolerance=_MU_TOLERANCE, ceiling=_MU_CEILING)
    # Still rejected at the ceiling: the ceiling itself is rejected, so it is a lower bound.
    return _MU_CEILING if bound is None else bound


def gaussian_dp_delta(mu: float, epsilon: float) -> float:
    """delta(epsilon) of mu-GDP (Dong, Roth, Su 2019, Corollary 2.13).

    The second term is taken in logs (``e^eps`` alone overflows beyond eps ~ 709, reached
    for mu above ~37), and both use scipy's normal CDF, which keeps its relative precision
    in the far tail where ``statistics.NormalDist`` rounds to 0 (that overstated epsilon,
    e.g. 33.8 instead of 33.1 for mu = 5 at delta 1e-5).
    """
    if mu <= 0:
        return 0.0
    second = math.exp(epsilon + float(log_ndtr(-epsilon / mu - mu / 2)))
    return max(0.0, float(ndtr(-epsilon / mu + mu / 2)) - second)


def gaussian_dp_epsilon(mu: float, delta: float) -> float:
    """The smallest epsilon with ``delta(epsilon) <= delta`` for mu-GDP (0 if mu = 0)."""
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), not {delta}")
    if mu <= 0 or gaussian_dp_delta(mu, 0.0) <= delta:
        return 0.0
    eps = largest_where(lambda e: gaussian_dp_delta(mu, e) > delta, tolerance=1e-9, ceiling=_EPS_CEILING)
    if eps is None:  # pragma: no cover - delta(eps) -> 0 as eps -> inf
        raise InternalError(f"mu = {mu}: delta(epsilon) stays above {delta} up to epsilon {_EPS_CEILING}")
    return eps
