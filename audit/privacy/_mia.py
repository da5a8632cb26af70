"""Membership-inference attack metrics and LiRA (offline) scoring math.

Everything here is pure numpy/scipy/pandas: the module scores attacks whose
per-row scores were computed elsewhere (no model training, no torch).

Metrics (:func:`attack_metrics`)
--------------------------------
A membership-inference attack assigns every candidate row a score, higher
meaning "more likely a member".  Given the scores of known members and known
non-members, split by sensitive group, :func:`attack_metrics` reports

* ``auc`` -- the Mann-Whitney probability that a random member outscores a
  random non-member, ties counted 1/2 (equal to ``sklearn.metrics.
  roc_auc_score`` with members as the positive class);
* ``advantage`` -- the membership advantage of Yeom et al. (2018), here the
  best threshold attack's ``max_t (TPR(t) - FPR(t))`` over the empirical ROC
  (which includes the "flag nobody" point, so it is ``>= 0``);
* ``tpr_at_fpr_1pct`` / ``tpr_at_fpr_0.1pct`` -- the largest TPR among
  threshold attacks whose FPR is at most 1% / 0.1% (Carlini et al. 2022
  report attacks this way, on the empirical ROC).

How every metric is computed from counts
----------------------------------------
Sort the distinct score values of a group in *descending* order.  For one
(re)sample let ``M[v]`` / ``N[v]`` be how many drawn members / non-members
have the ``v``-th largest value, and ``TP[v]`` / ``FP[v]`` their cumulative
sums (the members / non-members scoring ``>=`` that value).  Every
deterministic threshold rule flags the rows scoring at or above some value, so
the empirical ROC vertices are ``(0, 0)`` and ``(FP[v] / n0, TP[v] / n1)``:

* ``AUC = sum_v M[v] * (n0 - FP[v] + N[v] / 2) / (n1 * n0)``;
* ``advantage = max(0, max_v (TP[v] / n1 - FP[v] / n0))``;
* ``TPR@FPR<=f = max(0, max {TP[v] : FP[v] <= k}) / n1`` with
  ``k = floor(f * n0)`` the number of false positives allowed.  Equivalently:
  flag the rows scoring strictly above the ``(k + 1)``-th largest non-member
  score.

All of these are exact integer computations, so the point estimates agree
with scikit-learn to rounding.

Bootstrap
---------
A resample draws ``n1_g`` members and ``n0_g`` non-members with replacement,
independently, within every group ``g``; the "overall" resample is the union
of the group resamples (stratified, so group sizes, and hence the group mix of
the overall population, stay fixed; the overall and per-group intervals come
from the same resamples).  A resample is never represented row by row: each
drawn index is mapped straight to the distinct-value bin of its score, and one
``np.bincount`` per chunk of resamples produces the ``(resamples, values)``
count matrices ``M`` and ``N``; the formulas above are then a few dense array
operations.  Intervals are equal-tailed percentile intervals
(``np.percentile``, linear interpolation), as in :mod:`audit.fairness._bootstrap`.

LiRA, offline (:func:`lira_offline_scores`)
-------------------------------------------
Carlini, Chien, Nasr, Song, Terzis and Tramer, "Membership Inference Attacks
From First Principles", IEEE S&P 2022 (arXiv:2112.03570).  The statistic is
the logit-scaled confidence on the true label, ``phi(p) = log(p / (1 - p))``
(:func:`logit_confidence`), which the paper finds is close to Gaussian across
shadow models.  The *offline* attack trains only OUT shadow models (models that
did not see the row), fits ``N(mu_out, sigma_out^2)`` per row, and performs a
one-sided test of the hypothesis that the row is OUT: a target confidence far
*above* what OUT models give is evidence of membership.  The paper writes the
offline score as ``1 - Pr[Z > phi_obs]``, ``Z ~ N(mu_out, sigma_out^2)``
(Sec. IV, the paragraph on the offline attack, p. 6 of the arXiv version, and
Algorithm 1); we return the strictly increasing transform ``-log Pr[Z >=
phi_obs]``, which ranks rows identically but does not saturate at 1 in the
low-FPR tail that the paper evaluates.  With few shadow models the paper
recommends a single global variance instead of per-row variances.

Note: the authors' released code scores the offline attack with the Gaussian
log *density* of the OUT fit (and a median for the mean) rather than the
one-sided tail probability described in the paper; this module follows the
paper's text.

RMIA, offline (:func:`rmia_offline_scores`)
-------------------------------------------
Zarifzadeh, Liu, Mahloujifar and Shokri, "Low-Cost High-Power Membership
Inference Attacks", ICML 2024 (PMLR 235; arXiv:2312.03262).  The statistic is
the model's *probability* of the true label, ``Pr(x | theta)``, not its logit.
The likelihood ratio of a row against the population is
``LR(x) = Pr(x | theta) / Pr(x)``, where ``Pr(x)`` is the probability averaged
over reference models trained like the target on random data; the pairwise
ratio against a population row ``z`` (a row that is not a member) is
``LR(x) / LR(z)``, and the score of ``x`` is the fraction of population rows
it dominates, ``Pr_z[LR(x) / LR(z) > gamma]``.  *Offline* (only OUT reference
models) the missing IN half of ``Pr(x) = (P_IN(x) + P_OUT(x)) / 2`` is
approximated linearly, ``P_IN(x) ~ a P_OUT(x) + (1 - a)``, so that
``Pr(x) = ((1 + a) P_OUT(x) + (1 - a)) / 2``; ``Pr(z)`` is computed the same
way; :func:`rmia_fit_a` reads ``a`` off reference models that observed the
rows both IN and OUT.  For one target model and one population the score is a non-decreasing
function of ``LR(x)`` alone (it is the empirical distribution function of the
``gamma LR(z)`` evaluated at ``LR(x)``), so its ROC is that of ``LR(x)``,
coarsened to ``|Z| + 1`` levels; the comparison with ``z`` makes the score a
calibrated, population-relative number.

Only numpy, scipy and pandas are required.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

from .._exceptions import ConfigError, DataError, InternalError
from ..defaults import DEFAULT_RMIA_A, DEFAULT_RMIA_GAMMA
from ..result._schema import ATTACK_METRICS_COLUMNS, MIA_METRICS

__all__ = [
    "MIA_METRICS",
    "attack_metrics",
    "lira_offline_scores",
    "logit_confidence",
    "rmia_fit_a",
    "rmia_offline_scores",
]

# TPR-at-FPR metrics: metric -> (the FPR bound as text, 1 / f).  Using the
# integer 1 / f keeps ``k = floor(f * n0) = n0 // (1 / f)`` exact (0.001 * 1000
# is not guaranteed to round to 1 in floating point).
_TPR_AT_FPR: dict[str, tuple[str, int]] = {
    "tpr_at_fpr_1pct": ("1%", 100),
    "tpr_at_fpr_0.1pct": ("0.1%", 1000),
}

OVERALL = "overall"

# Upper bound on the elements of one (resamples x rows) chunk.  Larger chunks
# stop fitting in cache and get slower, not faster.  The chunk size depends
# only on the input sizes, so results are reproducible for a given seed.
_CHUNK_ELEMENTS = 2_000_000

# A per-row LiRA standard deviation below this fraction of the global one is
# treated as degenerate (e.g. all OUT shadows clipped to the same logit).
_TINY_STD_RATIO = 1e-3

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------
# Metrics from per-value count matrices
# --------------------------------------------------------------------------


def _bin_counts(bins: IntArray, n_bins: int) -> IntArray:
    """Count matrix of a batch of resamples.

    Parameters
    ----------
    bins : ndarray of int, shape (b, m)
        Row ``r`` holds the value bins of the ``m`` rows drawn in resample
        ``r``.
    n_bins : int
        Number of distinct values.

    Returns
    -------
    ndarray of int64, shape (b, n_bins)
        ``out[r, v]`` = how many of resample ``r``'s draws fall in bin ``v``.
    """
    b = bins.shape[0]
    flat = bins + (np.arange(b, dtype=np.int64) * n_bins)[:, None]
    counts = np.bincount(flat.ravel(), minlength=b * n_bins)
    return counts.reshape(b, n_bins)


def _metrics_from_counts(m: IntArray, n: IntArray, n1: int, n0: int) -> dict[str, FloatArray]:
    """All :data:`MIA_METRICS` of a batch of resamples.

    Parameters
    ----------
    m, n : ndarray of int64, shape (b, V)
        Member / non-member counts per distinct score value, values in
        descending order.  Every row of ``m`` sums to ``n1`` and every row of
        ``n`` to ``n0``; both must be positive.
    n1, n0 : int
        Numbers of members and non-members in every resample.

    Returns
    -------
    dict of str to ndarray of float64, shape (b,)
    """
    tp = np.cumsum(m, axis=1)
    fp = np.cumsum(n, axis=1)
    out: dict[str, FloatArray] = {}
    # Mann-Whitney: each member beats the non-members strictly below it
    # (n0 - fp) and ties with those at its value (n), counted 1/2.
    wins2 = (m * (2 * (n0 - fp) + n)).sum(axis=1)
    out["auc"] = wins2 / (2.0 * n1 * n0)
    # max_v (TP/n1 - FP/n0).  The last vertex (1, 1) contributes 0, so the
    # maximum is already >= 0; np.maximum only states the (0, 0) vertex.
    gap = (tp * n0 - fp * n1).max(axis=1)
    out["advantage"] = np.maximum(gap, 0) / float(n1 * n0)
    for name, (_, inv_f) in _TPR_AT_FPR.items():
        k = n0 // inv_f
        # fp is non-decreasing along a row, so the allowed vertices are a
        # prefix and the best is its last entry (or the (0, 0) vertex).
        n_ok = (fp <= k).sum(axis=1)
        last = np.take_along_axis(tp, np.maximum(n_ok - 1, 0)[:, None], axis=1)[:, 0]
        out[name] = np.where(n_ok > 0, last, 0) / float(n1)
    return out


# --------------------------------------------------------------------------
# Plan: value bins of every row, per group and overall
# --------------------------------------------------------------------------


def _descending_bins(values: FloatArray, scores: FloatArray) -> IntArray:
    """Index of each score among ``values`` (ascending, unique) counted from the top."""
    return (len(values) - 1 - np.searchsorted(values, scores)).astype(np.int64)


@dataclass(frozen=True)
class _Side:
    """Members or non-members of one group."""

    n: int
    local_bins: IntArray  # bin among the group's distinct values
    overall_bins: IntArray  # bin among all distinct values


@dataclass(frozen=True)
class _Group:
    label: str
    members: _Side
    nonmembers: _Side
    n_values: int


@dataclass(frozen=True)
class _Plan:
    groups: tuple[_Group, ...]
    n_values: int  # distinct values overall
    n1: int
    n0: int


def _build_plan(s1: FloatArray, s0: FloatArray, g1: IntArray, g0: IntArray, labels: list[str]) -> _Plan:
    all_values = np.unique(np.concatenate([s1, s0]))
    groups = []
    for code, label in enumerate(labels):
        a = s1[g1 == code]
        b = s0[g0 == code]
        values = np.unique(np.concatenate([a, b]))
        groups.append(
            _Group(
                label=label,
                members=_Side(len(a), _descending_bins(values, a), _descending_bins(all_values, a)),
                nonmembers=_Side(len(b), _descending_bins(values, b), _descending_bins(all_values, b)),
                n_values=len(values),
            )
        )
    return _Plan(tuple(groups), len(all_values), len(s1), len(s0))


def _resample_metrics(
    plan: _Plan, member_idx: list[IntArray | None], nonmember_idx: list[IntArray | None]
) -> tuple[dict[str, FloatArray] | None, list[dict[str, FloatArray] | None]]:
    """Metrics of a batch of resamples given the drawn row indices.

    Parameters
    ----------
    plan : _Plan
    member_idx, nonmember_idx : list of (ndarray of int, shape (b, n_g)) or None
        Per group, the drawn positions (``0 .. n_g - 1``) of that group's
        members / non-members in each of ``b`` resamples; None where the group
        has none.

    Returns
    -------
    overall : dict or None
        Overall metrics, None if there are no members or no non-members.
    by_group : list of (dict or None)
        Per-group metrics, None where a group lacks members or non-members.
    """
    by_group: list[dict[str, FloatArray] | None] = []
    overall_m: list[IntArray] = []
    overall_n: list[IntArray] = []
    for grp, mi, ni in zip(plan.groups, member_idx, nonmember_idx, strict=True):
        if mi is not None:
            overall_m.append(grp.members.overall_bins[mi])
        if ni is not None:
            overall_n.append(grp.nonmembers.overall_bins[ni])
        if mi is None or ni is None:
            by_group.append(None)
            continue
        m = _bin_counts(grp.members.local_bins[mi], grp.n_values)
        n = _bin_counts(grp.nonmembers.local_bins[ni], grp.n_values)
        by_group.append(_metrics_from_counts(m, n, grp.members.n, grp.nonmembers.n))
    overall = None
    if plan.n1 > 0 and plan.n0 > 0:
        m = _bin_counts(np.concatenate(overall_m, axis=1), plan.n_values)
        n = _bin_counts(np.concatenate(overall_n, axis=1), plan.n_values)
        overall = _metrics_from_counts(m, n, plan.n1, plan.n0)
    return overall, by_group


def _identity_idx(n: int) -> IntArray | None:
    return None if n == 0 else np.arange(n, dtype=np.int64)[None, :]


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


def _scores(x: ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {a.shape}")
    if np.isnan(a).any():
        raise DataError(f"{name} contains NaN")
    return a


def _groups(x: ArrayLike, n: int, name: str) -> NDArray[np.generic]:
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise DataError(
            f"{name} must be one-dimensional with {n} entries (one per score), got shape {a.shape}"
        )
    return a


def _check_int(x: object, name: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or int(x) < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {x!r}")
    return int(x)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def attack_metrics(
    member_scores: ArrayLike,
    nonmember_scores: ArrayLike,
    member_groups: ArrayLike,
    nonmember_groups: ArrayLike,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Membership-inference metrics, overall and per group, with bootstrap CIs.

    Parameters
    ----------
    member_scores, nonmember_scores : array-like of float, shape (n1,) / (n0,)
        Attack scores of rows that were / were not in the training set; higher
        means "more likely a member".  NaN is rejected; +-inf is allowed.
    member_groups, nonmember_groups : array-like, shape (n1,) / (n0,)
        Sensitive-group label of every row.  Labels are sorted with
        ``np.unique`` (so integers sort numerically) and reported as ``str``.
    n_bootstrap : int, default 1000
        Number of bootstrap resamples; 0 skips the bootstrap (CIs are NaN).
    seed : int, default 0
        Seed of the ``numpy.random.Generator`` that draws the resamples.  The
        same inputs and seed give identical results.
    confidence : float, default 0.95
        Coverage of the equal-tailed percentile intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per (group, metric), groups in the order ``"overall"`` then
        the sorted labels, metrics in :data:`MIA_METRICS` order.  Columns:

        ``group`` (str), ``metric`` (str), ``value`` (float), ``ci_low``,
        ``ci_high`` (float; percentile bootstrap interval), ``n_members``,
        ``n_nonmembers`` (int), ``available`` (bool), ``reason`` (str, empty
        when available).

        A metric is unavailable (``value``, ``ci_low``, ``ci_high`` NaN) when
        the group has no members or no non-members, and a TPR-at-FPR-``f``
        metric also when the group has fewer than ``ceil(1 / f)`` non-members
        (100 for 1%, 1000 for 0.1%): below that the smallest non-zero FPR a
        threshold can reach, ``1 / n_nonmembers``, exceeds ``f``, so only
        FPR = 0 would qualify and the number would say little about FPR ``f``.

    Raises
    ------
    ValueError
        On NaN scores, mismatched lengths, a group labelled ``"overall"``, or
        invalid ``n_bootstrap`` / ``seed`` / ``confidence``.

    Notes
    -----
    Definitions (members are the positive class):

    * ``auc``: ``P(S_member > S_nonmember) + P(S_member = S_nonmember) / 2``,
      equal to ``sklearn.metrics.roc_auc_score``.  A reversed attack (members
      scoring lower) has AUC below 0.5; it is not flipped.
    * ``advantage``: ``max_t (TPR(t) - FPR(t))`` over the empirical ROC,
      including the "flag nobody" point, hence in ``[0, 1]``.  It is the
      advantage of the best threshold attack *in the stated direction*; a
      reversed attack gets 0 (its signal is not credited, unlike
      ``max |TPR - FPR|``).
    * ``tpr_at_fpr_1pct`` / ``tpr_at_fpr_0.1pct``: the largest TPR over
      thresholds with ``FPR <= f``, i.e. the fraction of members scoring
      strictly above the ``(floor(f * n0) + 1)``-th largest non-member
      score.  No interpolation between ROC vertices.

    The bootstrap resamples members and non-members independently within each
    group; the overall row uses the union of the group resamples, so group
    sizes stay fixed.  Percentile intervals need not contain the point
    estimate (maxima over thresholds such as the advantage are biased upward
    under resampling), and are degenerate (zero width) when every resample
    gives the same value.  TPR at a low FPR rests on the few highest-scoring
    non-members, so its interval is wide unless there are many non-members.

    Examples
    --------
    >>> df = attack_metrics([0.9, 0.8, 0.3], [0.1, 0.4, 0.2, 0.35],
    ...                     ["a", "b", "a"], ["a", "a", "b", "b"], n_bootstrap=0)
    >>> df.loc[df.metric == "auc", "group"].tolist()
    ['overall', 'a', 'b']
    >>> df.loc[df.metric == "auc", "value"].round(4).tolist()
    [0.8333, 0.75, 1.0]
    >>> bool(df.loc[df.metric == "tpr_at_fpr_1pct", "available"].any())
    False
    """
    s1 = _scores(member_scores, "member_scores")
    s0 = _scores(nonmember_scores, "nonmember_scores")
    lab1 = _groups(member_groups, len(s1), "member_groups")
    lab0 = _groups(nonmember_groups, len(s0), "nonmember_groups")
    n_boot = _check_int(n_bootstrap, "n_bootstrap", 0)
    seed_ = _check_int(seed, "seed", 0)
    if not isinstance(confidence, numbers.Real) or not 0.0 < float(confidence) < 1.0:
        raise ConfigError(f"confidence must be strictly between 0 and 1, got {confidence!r}")

    labels, g1, g0 = _group_codes(lab1, lab0, len(s1))
    plan = _build_plan(s1, s0, g1, g0, labels)

    # Point estimates: the "resample" that takes every row once.
    point_overall, point_groups = _resample_metrics(
        plan,
        [_identity_idx(g.members.n) for g in plan.groups],
        [_identity_idx(g.nonmembers.n) for g in plan.groups],
    )
    scopes = [point_overall, *point_groups]
    draws = (_bootstrap_draws(plan, scopes, n_boot, seed_) if point_overall is not None
             else [None] * len(scopes))
    alpha = 100.0 * (1.0 - float(confidence)) / 2.0
    sizes = [(plan.n1, plan.n0)] + [(g.members.n, g.nonmembers.n) for g in plan.groups]
    rows = []
    for label, point, store, (n1, n0) in zip([OVERALL, *labels], scopes, draws, sizes, strict=True):
        for metric in MIA_METRICS:
            reason = _unavailable_reason(metric, n1, n0)
            value = lo = hi = float("nan")
            if not reason:
                if point is None:
                    raise InternalError(f"no point estimate for group {label!r}")
                value = float(point[metric][0])
                if n_boot > 0 and store is not None:
                    lo, hi = (float(q) for q in np.percentile(store[metric], [alpha, 100.0 - alpha]))
            rows.append((label, metric, value, lo, hi, n1, n0, not reason, reason))

    df = pd.DataFrame(rows, columns=list(ATTACK_METRICS_COLUMNS))
    return df.astype(
        {
            "value": np.float64,
            "ci_low": np.float64,
            "ci_high": np.float64,
            "n_members": np.int64,
            "n_nonmembers": np.int64,
            "available": bool,
        }
    )


def _group_codes(lab1: NDArray[np.generic], lab0: NDArray[np.generic],
                 n1: int) -> tuple[list[str], IntArray, IntArray]:
    """Sorted group labels (as str) and each member's / non-member's group code."""
    # An empty label list (``[]`` is float) must not force a dtype on the other.
    if len(lab1) == 0:
        lab1 = lab1.astype(lab0.dtype)
    if len(lab0) == 0:
        lab0 = lab0.astype(lab1.dtype)
    uniq, codes = np.unique(np.concatenate([lab1, lab0]), return_inverse=True)
    labels = [str(u) for u in uniq.tolist()]
    if OVERALL in labels:
        raise DataError(f"a group may not be labelled {OVERALL!r}: that name is reserved for all rows")
    if len(set(labels)) != len(labels):
        raise DataError("group labels must stay distinct when converted to str")
    codes = codes.reshape(-1).astype(np.int64)
    return labels, codes[:n1], codes[n1:]


def _bootstrap_draws(plan: _Plan, scopes: list[dict[str, FloatArray] | None], n_boot: int,
                     seed: int) -> list[dict[str, FloatArray] | None]:
    """Each scope's metric over ``n_boot`` resamples (within groups), chunked over resamples."""
    draws: list[dict[str, FloatArray] | None] = [
        None if p is None else {k: np.empty(n_boot) for k in MIA_METRICS} for p in scopes
    ]
    if n_boot == 0:
        return draws
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // max(plan.n1 + plan.n0, plan.n_values, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        m_idx: list[IntArray | None] = []
        n_idx: list[IntArray | None] = []
        for g in plan.groups:
            m_idx.append(rng.integers(0, g.members.n, size=(b, g.members.n)) if g.members.n else None)
            n_idx.append(rng.integers(0, g.nonmembers.n, size=(b, g.nonmembers.n))
                         if g.nonmembers.n else None)
        overall, by_group = _resample_metrics(plan, m_idx, n_idx)
        for store, got in zip(draws, [overall, *by_group], strict=True):
            if store is not None and got is not None:
                for k in MIA_METRICS:
                    store[k][start : start + b] = got[k]
    return draws


def _unavailable_reason(metric: str, n1: int, n0: int) -> str:
    """Why a metric cannot be measured in a group ("" when it can)."""
    if n1 == 0:
        return "no members in this group"
    if n0 == 0:
        return "no non-members in this group"
    if metric in _TPR_AT_FPR:
        text, need = _TPR_AT_FPR[metric]
        if n0 < need:
            return (f"TPR at FPR <= {text} needs at least {need} non-members "
                    f"(the smallest non-zero FPR is 1/n_nonmembers); this group has {n0}")
    return ""


def logit_confidence(prob_true_label: ArrayLike, eps: float = 1e-12) -> FloatArray:
    """Logit-scaled confidence ``phi(p) = log(p / (1 - p))`` on the true label.

    Parameters
    ----------
    prob_true_label : array-like of float
        The model's probability of each row's *true* label, in ``[0, 1]``; any
        shape.  NaN is passed through (useful for shadow matrices where NaN
        marks "not OUT").
    eps : float, default 1e-12
        The output is clipped to ``[-B, B]`` with ``B = log((1 - eps) / eps)``
        (about 27.6), i.e. probabilities are treated as lying in ``[eps, 1 -
        eps]``; so ``p = 0`` and ``p = 1`` give finite values.

    Returns
    -------
    ndarray of float64
        Same shape as the input.

    Raises
    ------
    ValueError
        If a (non-NaN) probability lies outside ``[0, 1]`` or ``eps`` is not
        in ``(0, 0.5)``.

    Notes
    -----
    Carlini et al. (2022) use this scaling because it makes the confidence of
    a row across shadow models approximately Gaussian.  Their released code
    computes it from the logits ("stable" form ``log p_y - log sum_{y' != y}
    p_y'``); for a binary classifier the two agree, and from probabilities
    the clipping keeps the numbers finite.

    Examples
    --------
    >>> logit_confidence([0.5, 0.880797077977882, 1.0]).round(4).tolist()
    [0.0, 2.0, 27.631]
    """
    if not isinstance(eps, numbers.Real) or not 0.0 < float(eps) < 0.5:
        raise ConfigError(f"eps must be in (0, 0.5), got {eps!r}")
    p = np.asarray(prob_true_label, dtype=np.float64)
    finite = ~np.isnan(p)
    if ((p[finite] < 0.0) | (p[finite] > 1.0)).any():
        raise DataError("prob_true_label must lie in [0, 1]")
    # Clip the logit rather than p: 1 - eps is not exactly representable, and
    # clipping there would make the two bounds differ in the 6th digit.
    bound = float(np.log1p(-float(eps)) - np.log(float(eps)))
    with np.errstate(divide="ignore"):
        phi = np.log(p) - np.log1p(-p)
    return np.asarray(np.clip(phi, -bound, bound), dtype=np.float64)


def lira_offline_scores(
    target_conf: ArrayLike, shadow_out_conf: ArrayLike, *, global_variance: bool = False
) -> FloatArray:
    """Offline LiRA membership scores (Carlini et al. 2022).

    Parameters
    ----------
    target_conf : array-like of float, shape (n,)
        Logit-scaled confidences (:func:`logit_confidence`) of the target
        model on the ``n`` candidate rows.
    shadow_out_conf : array-like of float, shape (S, n)
        Logit-scaled confidences of ``S`` shadow models on the same rows; NaN
        where a shadow model trained on the row (is IN), so that column ``i``
        holds the OUT observations of row ``i``.
    global_variance : bool, default False
        Use one standard deviation for every row instead of per-row ones (the
        paper's recommendation when there are few shadow models).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``-log P[Z >= target_conf_i]`` with ``Z ~ N(mu_i, sigma_i^2)`` the OUT
        fit of row ``i``: 0 for a target far below the OUT mean, ``log 2`` at
        the mean, large when the target is far above what OUT models give.
        Higher = more member-like.  NaN for rows with no OUT observation (a
        ``RuntimeWarning`` says how many); drop them before
        :func:`attack_metrics`.

    Raises
    ------
    ValueError
        On shape mismatches, non-finite target confidences, infinite shadow
        confidences, or when no variance can be estimated at all (fewer than
        two OUT observations in total, or all of them equal).

    Notes
    -----
    This is the offline variant of the Likelihood Ratio Attack of Carlini,
    Chien, Nasr, Song, Terzis and Tramer, "Membership Inference Attacks From
    First Principles", IEEE S&P 2022, arXiv:2112.03570, Sec. IV (parametric
    estimation of the likelihood ratio; the offline-attack paragraph on p. 6
    of the arXiv version, and Algorithm 1): with only OUT shadow models the
    attack cannot form the two-sided ratio ``p_in / p_out``, so it performs a
    one-sided test of the null hypothesis "row ``i`` is OUT" and scores
    ``1 - Pr[Z > phi_obs]``.  We return ``-log Pr[Z >= phi_obs]``, a strictly
    increasing function of that score computed with ``scipy.special.log_ndtr``
    so that it stays accurate far in the tail.

    Per row ``i``: ``mu_i`` is the mean of its OUT confidences and
    ``sigma_i`` their standard deviation (``ddof=1``).  The global standard
    deviation is the pooled within-row one, ``sqrt(sum_i sum_s (x_si -
    mu_i)^2 / sum_i (k_i - 1))`` over rows with ``k_i >= 2`` OUT values (the
    spread of a row's OUT confidences around *its own* mean, which is what a
    shared ``sigma`` stands for); if no row has two OUT values (e.g. ``S =
    1``) it falls back to the standard deviation of all OUT values pooled
    across rows, which also contains the between-row spread of the means and
    is therefore conservative.  A row uses the global value when
    ``global_variance`` is set, when it has fewer than two OUT values, or when
    its own standard deviation is below ``1e-3`` times the global one.  Using
    one ``sigma`` for all rows keeps the per-row means, so the ranking is
    then that of ``phi_obs - mu_i`` and does not depend on the global value.

    Differences from the authors' released code: it uses the median for
    ``mu_i`` and ``ddof=0``, its fixed variance is the standard deviation of
    all OUT values pooled across rows, and its offline score is the Gaussian
    log-density rather than the tail probability described in the paper.

    Examples
    --------
    >>> shadows = np.array([[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]])  # S=3, n=2
    >>> lira_offline_scores([1.0, 5.0], shadows).round(4).tolist()
    [0.6931, 3.7832]
    """
    t = np.asarray(target_conf, dtype=np.float64)
    x = np.asarray(shadow_out_conf, dtype=np.float64)
    if t.ndim != 1:
        raise DataError(f"target_conf must be one-dimensional, got shape {t.shape}")
    if x.ndim != 2 or x.shape[1] != t.shape[0]:
        raise DataError(f"shadow_out_conf must have shape (S, {t.shape[0]}), got {x.shape}")
    if not np.isfinite(t).all():
        raise DataError("target_conf must be finite")
    if np.isinf(x).any():
        raise DataError("shadow_out_conf must be finite or NaN (NaN = not an OUT observation)")

    out = ~np.isnan(x)
    k = out.sum(axis=0)
    xz = np.where(out, x, 0.0)
    has_any = k > 0
    mu = np.divide(xz.sum(axis=0), k, out=np.full(t.shape, np.nan), where=has_any)
    resid2 = np.where(out, (x - mu[None, :]) ** 2, 0.0)
    ss = resid2.sum(axis=0)
    dof = np.maximum(k - 1, 0)

    # Global standard deviation: pooled within-row, else all values pooled.
    global_sd = float(np.sqrt(ss.sum() / dof.sum())) if dof.sum() > 0 else 0.0
    if not global_sd > 0.0:
        pooled = x[out]
        global_sd = float(np.std(pooled, ddof=1)) if pooled.size >= 2 else 0.0
    if not global_sd > 0.0:
        raise DataError(
            "cannot estimate the OUT variance: need at least two OUT confidences that are not all equal"
        )

    row_sd = np.sqrt(np.divide(ss, dof, out=np.zeros(t.shape), where=dof > 0))
    use_global = (k < 2) | (row_sd < _TINY_STD_RATIO * global_sd)
    if global_variance:
        use_global[:] = True
    sd = np.where(use_global, global_sd, row_sd)

    scores = np.full(t.shape, np.nan)
    scores[has_any] = -log_ndtr((mu[has_any] - t[has_any]) / sd[has_any])
    _warn_rows_without_out(has_any, "OUT shadow confidence", "LiRA")
    return np.asarray(scores, dtype=np.float64)


def _warn_rows_without_out(has_out: np.ndarray, what: str, attack: str) -> None:
    """Warn, from the attack's caller, about rows that have no OUT model to compare with."""
    n_missing = int((~has_out).sum())
    if n_missing:
        warnings.warn(f"{n_missing} of {len(has_out)} rows have no {what}; their {attack} score is NaN",
                      RuntimeWarning, stacklevel=3)


# Probabilities below this are raised to it in RMIA, so that every ratio is finite
# and positive (the same floor as :func:`logit_confidence`'s default ``eps``).
_RMIA_PROB_FLOOR = 1e-12


def _probabilities(x: ArrayLike, name: str, ndim: int, *, allow_nan: bool) -> FloatArray:
    """``x`` as a float array of ``ndim`` dimensions with values in ``[0, 1]`` (NaN if allowed)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise DataError(f"{name} must be {'one' if ndim == 1 else 'two'}-dimensional, got shape {a.shape}")
    nan = np.isnan(a)
    if nan.any() and not allow_nan:
        raise DataError(f"{name} contains NaN")
    if ((a[~nan] < 0.0) | (a[~nan] > 1.0)).any():
        raise DataError(f"{name} must be probabilities in [0, 1] (NaN = not an OUT observation)"
                        if allow_nan else f"{name} must be probabilities in [0, 1]")
    return a


def _rmia_likelihood_ratio(p_target: FloatArray, p_refs: FloatArray, a: float) -> FloatArray:
    """``Pr(x | theta) / Pr(x)`` with the offline ``Pr(x)``; NaN where no reference is OUT."""
    k = (~np.isnan(p_refs)).sum(axis=0)
    p_out = np.divide(np.nansum(p_refs, axis=0), k, out=np.full(p_target.shape, np.nan), where=k > 0)
    pr_x = 0.5 * ((1.0 + a) * p_out + (1.0 - a))
    return np.asarray(np.maximum(p_target, _RMIA_PROB_FLOOR) / np.maximum(pr_x, _RMIA_PROB_FLOOR),
                      dtype=np.float64)


def rmia_offline_scores(
    target_prob: ArrayLike,
    reference_probs_out: ArrayLike,
    population_target_prob: ArrayLike,
    population_reference_probs: ArrayLike,
    *,
    a: float = DEFAULT_RMIA_A,
    gamma: float = DEFAULT_RMIA_GAMMA,
) -> FloatArray:
    """Offline RMIA membership scores (Zarifzadeh, Liu, Mahloujifar and Shokri, 2024).

    Parameters
    ----------
    target_prob : array-like of float, shape (n,)
        The target model's probability of each candidate row's *true* label,
        ``Pr(x | theta)``, in ``[0, 1]``.
    reference_probs_out : array-like of float, shape (R, n)
        The same probability under ``R`` reference models; NaN where a reference
        model trained on the row (is IN), so that column ``i`` holds the OUT
        observations of row ``i``.
    population_target_prob : array-like of float, shape (m,)
        The target model's probability of the true label of ``m >= 1``
        population rows ``z``: rows that are not members of the target, disjoint
        from the candidates, chosen before scoring.
    population_reference_probs : array-like of float, shape (R, m)
        The reference models' probabilities on the population rows, NaN for an
        observation not to use.  Every population row needs at least one.
    a : float in [0, 1], default :data:`audit.defaults.DEFAULT_RMIA_A`
        Slope of the offline approximation ``P_IN(x) ~ a P_OUT(x) + (1 - a)``:
        1 says IN models are no more confident than OUT ones (``Pr(x) =
        P_OUT(x)``), 0 that they are certain (``Pr(x) = (P_OUT(x) + 1) / 2``).
    gamma : float > 0, default :data:`audit.defaults.DEFAULT_RMIA_GAMMA`
        ``x`` dominates ``z`` when ``LR(x) / LR(z) > gamma``.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``#{z : LR(x_i) > gamma LR(z)} / m``, a multiple of ``1 / m`` in
        ``[0, 1]``; higher = more member-like.  NaN for rows with no OUT
        reference observation (a ``RuntimeWarning`` says how many); drop them
        before :func:`attack_metrics`.

    Raises
    ------
    DataError
        On shape mismatches, probabilities outside ``[0, 1]``, NaN in
        ``target_prob`` or ``population_target_prob``, an empty population, or a
        population row without any reference observation.
    ConfigError
        If ``a`` is not in ``[0, 1]`` or ``gamma`` is not a finite number
        ``> 0``.

    Notes
    -----
    This is the offline variant of the Robust Membership Inference Attack of
    Zarifzadeh, Liu, Mahloujifar and Shokri, "Low-Cost High-Power Membership
    Inference Attacks", ICML 2024, PMLR 235 (arXiv:2312.03262): the test of
    the hypothesis "``x`` is OUT" by pairwise likelihood ratios against
    population samples, in its offline form, where the reference models are OUT
    for the row (the paper's text on offline RMIA; its section numbers could not
    be checked against the PDF here, so the formulas below were checked against
    the authors' reproduction code and documentation in
    ``privacytrustlab/ml_privacy_meter`` instead).  Per row,

    * ``P_OUT(x)`` = mean of ``Pr(x | theta')`` over the OUT reference models
      (the authors' paper code takes a 20% trimmed mean, which for up to four
      models is the plain mean);
    * ``Pr(x) = ((1 + a) P_OUT(x) + (1 - a)) / 2`` and ``LR(x) = Pr(x | theta)
      / Pr(x)``; ``Pr(z)`` and ``LR(z)`` alike, with each population row's own
      reference observations;
    * score ``= #{z : LR(x) > gamma LR(z)} / m``.

    ``LR(x) / LR(z) > gamma`` is evaluated as ``LR(x) > gamma LR(z)``, exact for
    ``gamma = 1``.  The inequality is strict, as in every version of the
    authors' code (their documentation writes ``>=``): an exact tie
    ``LR(x) = gamma LR(z)`` does not count, so a row compared with itself never
    dominates itself.  Probabilities below ``1e-12`` are raised to ``1e-12``,
    so every ratio is finite and positive.

    Choices where the sources differ, and what this function does:

    * ``Pr(x | theta)`` is the plain probability of the true label (softmax
      temperature 1, as in the authors' tool; their paper code uses
      temperature 2 on Purchase-100 and CIFAR-10).
    * ``a`` is a parameter.  The paper code fixes it per dataset (0.2 for the
      tabular Purchase-100, 0.33 for CIFAR-10), the tool grid-searches it by
      attacking a reference model.  An audit fits it on its reference models
      with :func:`rmia_fit_a` (about 0.94 for an MLP on Adult, 0.99 for DP-SGD:
      small tabular models memorise little); the default, 1, is the authors'
      choice when nothing is known and the value that fit approaches when
      IN and OUT models agree.
    * ``gamma`` defaults to 1 (the tool; the paper code uses 2).  For one
      target model and population, gamma does not change which rows rank
      higher, only where the ``m + 1`` score levels fall; with ``gamma = 1``
      and population rows scored exactly as non-member candidates are, a
      non-member's score is close to uniform on ``[0, 1]``, so ``1 - score``
      reads as a p-value.
    * A candidate row uses only its OUT reference models and, unlike the
      tool's code, never a zero in their place when it has fewer than the
      others.  The tool also uses the same number of reference models for a
      population row as for a candidate; here the caller decides which
      observations of a population row to use (NaN the rest).

    Examples
    --------
    One reference model, three population rows, ``a = 0.5`` (so ``Pr = 0.75
    P_OUT + 0.25``).  The population's LRs are ``0.8 / 0.85``, ``0.5 / 0.4``
    and ``0.6 / 1.0``.  The first row's ``LR = 0.9 / 0.7`` exceeds all three;
    the second row's ``0.5 / 0.4`` ties the second population row's exactly,
    which does not count.

    >>> rmia_offline_scores([0.9, 0.5], [[0.6, 0.2]], [0.8, 0.5, 0.6],
    ...                     [[0.8, 0.2, 1.0]], a=0.5).tolist()
    [1.0, 0.6666666666666666]
    """
    p_x = _probabilities(target_prob, "target_prob", 1, allow_nan=False)
    r_x = _probabilities(reference_probs_out, "reference_probs_out", 2, allow_nan=True)
    p_z = _probabilities(population_target_prob, "population_target_prob", 1, allow_nan=False)
    r_z = _probabilities(population_reference_probs, "population_reference_probs", 2, allow_nan=True)
    if r_x.shape[1] != p_x.shape[0]:
        raise DataError(f"reference_probs_out must have shape (R, {p_x.shape[0]}), got {r_x.shape}")
    if r_z.shape != (r_x.shape[0], p_z.shape[0]):
        raise DataError(f"population_reference_probs must have shape ({r_x.shape[0]}, {p_z.shape[0]}) "
                        f"(the same R reference models, one column per population row), got {r_z.shape}")
    if p_z.shape[0] == 0:
        raise DataError("the population is empty: RMIA needs at least one population row")
    no_obs = int(np.isnan(r_z).all(axis=0).sum())
    if no_obs:
        raise DataError(f"{no_obs} of {p_z.shape[0]} population rows have no reference observation")
    if isinstance(a, bool) or not isinstance(a, numbers.Real) or not 0.0 <= float(a) <= 1.0:
        raise ConfigError(f"a must be a number in [0, 1], got {a!r}", param="a")
    if (isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not math.isfinite(gamma)
            or not float(gamma) > 0.0):
        raise ConfigError(f"gamma must be a finite number > 0, got {gamma!r}", param="gamma")

    lr_x = _rmia_likelihood_ratio(p_x, r_x, float(a))
    thresholds = np.sort(float(gamma) * _rmia_likelihood_ratio(p_z, r_z, float(a)))
    has_out = ~np.isnan(lr_x)
    scores = np.full(p_x.shape, np.nan)
    # side="left": the number of population rows with gamma LR(z) strictly below LR(x).
    scores[has_out] = np.searchsorted(thresholds, lr_x[has_out], side="left") / thresholds.shape[0]
    _warn_rows_without_out(has_out, "OUT reference probability", "RMIA")
    return np.asarray(scores, dtype=np.float64)


def rmia_fit_a(reference_probs: ArrayLike, reference_inside: ArrayLike) -> float:
    """RMIA's offline slope ``a``, fitted on reference models that saw some rows.

    Parameters
    ----------
    reference_probs : array-like of float, shape (R, n)
        Each reference model's probability of each row's true label, in ``[0, 1]``.
    reference_inside : array-like of bool, shape (R, n)
        True where the reference model trained on the row (IN).

    Returns
    -------
    float
        ``a = sum_i (1 - P_IN(i)) / sum_i (1 - P_OUT(i))`` over the rows with at
        least one IN and one OUT observation, ``P_IN(i)`` / ``P_OUT(i)`` the mean
        IN / OUT probability of row ``i``, clipped to ``[0, 1]``;
        :data:`audit.defaults.DEFAULT_RMIA_A` when no row has both or every OUT
        probability is 1.

    Notes
    -----
    The offline approximation of :func:`rmia_offline_scores`, ``P_IN(x) ~ a
    P_OUT(x) + (1 - a)``, says that a model that trained on ``x`` leaves a
    fraction ``a`` of the OUT models' error ``1 - P_OUT(x)`` on it.  Reference
    models trained on random halves of the candidate pool observe every row
    both ways, so ``a`` can be read off them rather than fixed per dataset as in
    the authors' paper code (0.2 for Purchase-100, 0.33 for CIFAR-10) or tuned
    by attacking a reference model as in their tool.  The ratio of the summed
    errors is used rather than a least-squares slope because ``P_OUT`` is
    itself an average of a few noisy models: errors in the regressor would bias
    a least-squares slope towards 0 (regression dilution), while the sums
    average the noise out.  The target model and its membership are not used.

    Examples
    --------
    >>> rmia_fit_a([[0.9, 0.5], [0.7, 0.3]], [[True, True], [False, False]])  # errors .6 vs 1.0
    0.6
    """
    p = _probabilities(reference_probs, "reference_probs", 2, allow_nan=False)
    inside = np.asarray(reference_inside)
    if inside.shape != p.shape or inside.dtype != np.bool_:
        raise DataError(f"reference_inside must be a boolean array of shape {p.shape}, got "
                        f"{inside.dtype} of shape {inside.shape}")
    k_in, k_out = inside.sum(axis=0), (~inside).sum(axis=0)
    both = (k_in > 0) & (k_out > 0)
    if not both.any():
        return float(DEFAULT_RMIA_A)
    err_in = (np.where(inside, 1.0 - p, 0.0).sum(axis=0)[both] / k_in[both]).sum()
    err_out = (np.where(inside, 0.0, 1.0 - p).sum(axis=0)[both] / k_out[both]).sum()
    if not err_out > 0.0:
        return float(DEFAULT_RMIA_A)
    return float(np.clip(err_in / err_out, 0.0, 1.0))
