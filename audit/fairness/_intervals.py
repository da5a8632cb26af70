"""Score intervals for group rates, their differences and their ratios (pure numpy/scipy).

Why not the bootstrap for rates
-------------------------------
A group's error rate, FPR, FNR or selection rate is a count over a denominator
(``k / n``). The percentile bootstrap of such a proportion is too narrow for small
``n``: simulated at nominal 95%, the bootstrap interval of an error-rate gap covered
the true gap only 90% of the time for a 40-row group, and that of an FPR gap (about 20
negatives) only 80%, so gaps in small groups were flagged as beyond uncertainty far too
often. Score intervals invert a test instead and keep their level down to a handful of
rows. The bootstrap stays for the metrics that are not proportions (ROC AUC, log-loss).

Methods, chosen by the denominator (coverage computed exactly over the binomial
distribution on a grid of true rates 0.02-0.5, nominal 95%)
-----------------------------------------------------------------------------------
``wilson``
    Wilson's score interval, for a rate whose denominator has at least
    :data:`SMALL_RATE_ROWS` (100) rows: mean coverage 0.950 at every ``n``; like every
    non-randomised interval its coverage oscillates with the true rate, dipping to
    0.93-0.945 at a few rates.
``wilson-cc``
    Wilson's interval with continuity correction (Newcombe 1998, method 4), below 100
    rows, where plain Wilson dips to 0.90 (10 rows) - 0.93 (60 rows): its minimum
    coverage is 0.95 or more at every rate and ``n`` computed, at the price of width.
``newcombe``
    Newcombe's hybrid score interval for a difference of two independent proportions
    (Newcombe 1998, method 10), built from the two Wilson intervals, when the smaller
    denominator has at least :data:`SMALL_GAP_ROWS` (40) rows: minimum coverage 0.946
    at 40 rows (second group 2,000 rows), 0.950 from 100.
``newcombe-cc``
    The same from continuity-corrected Wilson intervals (method 11) below 40 rows,
    where plain Newcombe dips to 0.938 (20 rows) and 0.925 (10 rows); minimum 0.96.
``mover-wilson`` / ``mover-wilson-cc``
    The ratio of two proportions by the MOVER-R method (Donner and Zou 2012) from the
    two groups' (continuity-corrected below 100 rows) Wilson intervals.

The groups are independent samples of test rows, which the difference and ratio
intervals assume; a gap's two groups are the highest and lowest at the point estimate.
Seed-averaged rates pass their seed-averaged count ``mean_s k_s``: the per-row average
over seeds of a 0/1 indicator lies in [0, 1] and has variance at most ``p (1 - p)``,
the Bernoulli variance the score intervals assume, so they stay conservative.

Examples
--------
Newcombe's (1998) Table I examples, 81/263 and 1/29:

>>> lo, hi = wilson_interval(81, 263, 0.95, continuity=False)
>>> round(float(lo), 4), round(float(hi), 4)
(0.2553, 0.3662)
>>> lo, hi, method = rate_interval(1, 29, 0.95)
>>> str(method), round(float(lo), 4), round(float(hi), 4)
('wilson-cc', 0.0018, 0.1963)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "SMALL_GAP_ROWS",
    "SMALL_RATE_ROWS",
    "bonferroni_level",
    "difference_interval",
    "ratio_interval",
    "rate_interval",
    "wilson_interval",
]

FloatArray = NDArray[np.float64]

#: Below this many rows in its denominator a rate's interval is continuity-corrected.
SMALL_RATE_ROWS = 100
#: Below this many rows in the smaller denominator a difference's interval is.
SMALL_GAP_ROWS = 40


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2.0))


def wilson_interval(
    k: ArrayLike, n: ArrayLike, level: float, *, continuity: bool,
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for ``k`` successes out of ``n`` (element-wise).

    ``k`` may be fractional (a seed-averaged count). Where ``n`` is 0 both limits are
    NaN. With ``continuity`` the interval is Newcombe's (1998) method 4, with the
    conventional limits 0 at ``k = 0`` and 1 at ``k = n``.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = _z(level)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        if continuity:
            q = 1.0 - p
            denom = 2.0 * (n + z2)
            root_lo = np.sqrt(np.maximum(z2 - 2 - 1 / n + 4 * p * (n * q + 1), 0.0))
            root_hi = np.sqrt(np.maximum(z2 + 2 - 1 / n + 4 * p * (n * q - 1), 0.0))
            lo = (2 * n * p + z2 - 1 - z * root_lo) / denom
            hi = (2 * n * p + z2 + 1 + z * root_hi) / denom
            lo = np.where(k <= 0, 0.0, np.clip(lo, 0.0, 1.0))
            hi = np.where(k >= n, 1.0, np.clip(hi, 0.0, 1.0))
        else:
            centre = (p + z2 / (2 * n)) / (1 + z2 / n)
            half = z * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / (1 + z2 / n)
            lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    empty = ~(n > 0)
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def rate_interval(
    k: ArrayLike, n: ArrayLike, level: float,
) -> tuple[FloatArray, FloatArray, NDArray[np.str_]]:
    """Score interval of a rate ``k / n`` and the method used, per element.

    Continuity-corrected Wilson below :data:`SMALL_RATE_ROWS` rows, plain Wilson from
    there (see the module docstring for the coverage behind the choice).
    """
    n_arr = np.asarray(n, dtype=np.float64)
    small = n_arr < SMALL_RATE_ROWS
    lo0, hi0 = wilson_interval(k, n, level, continuity=False)
    lo1, hi1 = wilson_interval(k, n, level, continuity=True)
    method = np.where(small, "wilson-cc", "wilson")
    return np.where(small, lo1, lo0), np.where(small, hi1, hi0), method


def difference_interval(
    k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, level: float,
) -> tuple[FloatArray, FloatArray, NDArray[np.str_]]:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` and the method used.

    Continuity-corrected components below :data:`SMALL_GAP_ROWS` rows in the smaller
    denominator. NaN where either denominator is 0.

    Examples
    --------
    >>> lo, hi, method = difference_interval(56, 70, 48, 80, 0.95)  # Newcombe's example
    >>> str(method), round(float(lo), 4), round(float(hi), 4)
    ('newcombe', 0.0524, 0.3339)
    """
    n1a, n2a = np.asarray(n1, dtype=np.float64), np.asarray(n2, dtype=np.float64)
    small = np.minimum(n1a, n2a) < SMALL_GAP_ROWS
    out_lo, out_hi = [], []
    for continuity in (False, True):
        l1, u1 = wilson_interval(k1, n1, level, continuity=continuity)
        l2, u2 = wilson_interval(k2, n2, level, continuity=continuity)
        with np.errstate(divide="ignore", invalid="ignore"):
            p1 = np.asarray(k1, dtype=np.float64) / n1a
            p2 = np.asarray(k2, dtype=np.float64) / n2a
        d = p1 - p2
        out_lo.append(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
        out_hi.append(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    method = np.where(small, "newcombe-cc", "newcombe")
    return np.where(small, out_lo[1], out_lo[0]), np.where(small, out_hi[1], out_hi[0]), method


def ratio_interval(
    k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, level: float,
) -> tuple[FloatArray, FloatArray, NDArray[np.str_]]:
    """MOVER-R interval for the ratio ``(k1/n1) / (k2/n2)`` and the method used.

    From the two rates' own :func:`rate_interval` limits (Donner and Zou 2012). The
    upper limit is ``inf`` when the denominator rate's lower limit is 0; both are NaN
    when the denominator rate is 0 (no ratio).

    Examples
    --------
    >>> lo, hi, method = ratio_interval(20, 200, 40, 200, 0.95)
    >>> str(method), round(float(lo), 3), round(float(hi), 3)
    ('mover-wilson', 0.305, 0.82)
    """
    l1, u1, _ = rate_interval(k1, n1, level)
    l2, u2, _ = rate_interval(k2, n2, level)
    n1a, n2a = np.asarray(n1, dtype=np.float64), np.asarray(n2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.asarray(k1, dtype=np.float64) / n1a
        p2 = np.asarray(k2, dtype=np.float64) / n2a
        prod = p1 * p2
        lo = (prod - np.sqrt(np.maximum(prod ** 2 - l1 * u2 * (2 * p1 - l1) * (2 * p2 - u2), 0.0))) \
            / (u2 * (2 * p2 - u2))
        hi_den = l2 * (2 * p2 - l2)
        hi = (prod + np.sqrt(np.maximum(prod ** 2 - u1 * l2 * (2 * p1 - u1) * (2 * p2 - l2), 0.0))) / hi_den
        hi = np.where(hi_den <= 0, np.inf, hi)
        lo = np.maximum(lo, 0.0)
    undefined = ~(p2 > 0) | ~np.isfinite(p1)
    small = np.minimum(n1a, n2a) < SMALL_RATE_ROWS
    method = np.where(small, "mover-wilson-cc", "mover-wilson")
    return np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi), method


def bonferroni_level(level: float, comparisons: int) -> float:
    """Per-interval level so that ``comparisons`` intervals hold together at ``level``.

    Examples
    --------
    >>> bonferroni_level(0.95, 5)
    0.99
    """
    return 1.0 - (1.0 - level) / max(int(comparisons), 1)


def simultaneous_levels(level: float, n_groups: int) -> tuple[float, float]:
    """Bonferroni levels of one metric's group intervals and of its gap intervals.

    The G group intervals hold together at ``level``, and so do the gaps of all
    ``G (G - 1) / 2`` pairs of groups (a gap's pair is chosen after seeing the data).

    Examples
    --------
    >>> simultaneous_levels(0.95, 3)
    (0.9833333333333333, 0.9833333333333333)
    """
    return bonferroni_level(level, n_groups), bonferroni_level(level, n_groups * (n_groups - 1) // 2)
