"""Vectorised, group-stratified percentile bootstrap for classification metrics.

The bootstrap resamples test rows *within* each sensitive group: a group with
``n_g`` rows is resampled with replacement ``n_g`` times, independently of the
other groups, so every resample keeps the observed group sizes.  Several score
vectors that share the same test rows (for example models trained with
different seeds) are evaluated on the *same* resampled rows, so per-seed and
seed-averaged intervals are directly comparable.

Each resample is represented as a count vector ``c`` (``c[i]`` = how many times
row ``i`` was drawn) instead of an index vector.  Every supported metric is a
simple function of that count vector, which turns the whole bootstrap into a
handful of dense array operations over a ``(resamples, rows)`` count matrix:

* confusion-matrix cells and summed log-loss are one matrix product of the
  count matrix with fixed per-row indicator/loss columns;
* ROC AUC is the Mann-Whitney statistic ``sum_i c_i * (N_below(i) +
  N_tied(i) / 2)`` over positive rows ``i``, where ``N_below``/``N_tied`` are
  count-weighted numbers of negatives with a lower/equal score.  Both are
  differences of a cumulative sum of the negatives' counts in score order,
  evaluated at fixed positions found once with ``searchsorted``.

Only numpy is required.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._exceptions import ConfigError, DataError, InternalError

__all__ = [
    "METRICS",
    "BootstrapDraws",
    "bootstrap_group_metrics",
    "group_gaps",
    "percentile_interval",
    "point_group_metrics",
]

METRICS: tuple[str, ...] = (
    "error_rate",
    "fpr",
    "fnr",
    "selection_rate",
    "log_loss",
    "roc_auc",
)

# Same clipping constant as ``sklearn.metrics.log_loss`` for float64 input.
_EPS = float(np.finfo(np.float64).eps)

# Chunks far larger than this stop fitting in cache and get slower, not
# faster, so the user-supplied memory bound is only an upper limit.
_FAST_CHUNK_ELEMENTS = 1_000_000

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class BootstrapDraws:
    """Bootstrap (or point) values of group metrics.

    Attributes
    ----------
    metrics : tuple of str
        Names of the metrics present in ``by_group`` and ``overall``.
    group_labels : tuple of str
        Group labels in ``np.unique`` order of the string labels; this is the
        order of the last axis of every ``by_group`` array.
    by_group : dict of str to ndarray
        Metric name -> float64 array of shape ``(B, S, G)``: resample, score
        vector (seed), group.
    overall : dict of str to ndarray
        Metric name -> float64 array of shape ``(B, S)`` computed on all
        groups pooled, i.e. on the concatenation of the per-group resamples.
    n_resamples : int
        ``B``; 1 for point estimates.
    """

    metrics: tuple[str, ...]
    group_labels: tuple[str, ...]
    by_group: dict[str, np.ndarray]
    overall: dict[str, np.ndarray]
    n_resamples: int


@dataclass(frozen=True)
class _AucScope:
    """Precomputed sort structure for the AUC of one set of columns.

    ``pos_cols`` are the positive rows (column order, seed independent).  For
    seed ``s``, ``neg_cols[s]`` are the negative rows in ascending score order
    and, for each positive, ``lo[s]``/``hi[s]`` are the numbers of negatives
    with a score strictly below / at most its score (``searchsorted``
    left/right).  ``tied[s]`` indexes the positives with ``lo != hi``; only
    they need the second gather.
    """

    pos_cols: IntArray
    neg_cols: tuple[IntArray, ...]
    lo: tuple[IntArray, ...]
    tied: tuple[IntArray, ...]
    tied_lo: tuple[IntArray, ...]
    tied_hi: tuple[IntArray, ...]


@dataclass(frozen=True)
class _Plan:
    """Everything about the data that does not depend on the resample.

    Rows are stored sorted by group code (stable), so group ``g`` occupies the
    contiguous columns ``bounds[g]:bounds[g + 1]`` of every count matrix.
    """

    order: IntArray
    bounds: IntArray
    n_seeds: int
    group_labels: tuple[str, ...]
    metrics: tuple[str, ...]
    design: FloatArray
    loss: FloatArray
    group_auc: tuple[_AucScope, ...]
    overall_auc: _AucScope | None


def _validate_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """Return the requested metric names as a tuple, rejecting bad ones."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = tuple(metrics)
    if not names:
        raise ConfigError("metrics must name at least one metric; valid: " + ", ".join(METRICS))
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ConfigError(
            f"unknown metric name(s) {unknown}; valid metrics are: " + ", ".join(METRICS)
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"metrics contains duplicates: {list(names)}")
    return names


def _validate_inputs(
    y_true: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike,
    threshold: float,
) -> tuple[NDArray[np.bool_], FloatArray, NDArray[np.str_]]:
    """Check and normalise inputs: bool labels, (S, n) float scores, str groups."""
    y_bool = _binary_labels(y_true)
    n = y_bool.shape[0]
    s = _score_matrix(scores, n)
    g = np.asarray(groups)
    if g.ndim != 1:
        raise DataError(f"groups must be 1-dimensional, got shape {g.shape}")
    if g.shape[0] != n:
        raise DataError(f"length mismatch: groups has {g.shape[0]} rows, y_true has {n}")
    if not isinstance(threshold, numbers.Real) or not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return y_bool, s, g.astype(str)


def _binary_labels(y_true: ArrayLike) -> NDArray[np.bool_]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"y_true must be 1-dimensional, got shape {y.shape}")
    if y.shape[0] == 0:
        raise DataError("y_true is empty; need at least one row")
    if y.dtype == np.bool_:
        return y
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"y_true must be binary 0/1 or bool, got dtype {y.dtype}")
    if not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise DataError(f"y_true must be binary 0/1 or bool; found values {bad.tolist()}")
    return np.asarray(y == 1)


def _score_matrix(scores: ArrayLike, n: int) -> FloatArray:
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"scores must be numeric probabilities: {exc}") from None
    if s.ndim == 1:
        s = s[np.newaxis, :]
    if s.ndim != 2:
        raise DataError(f"scores must have shape (n,) or (S, n), got {np.shape(scores)}")
    if s.shape[0] == 0:
        raise DataError("scores has no score vectors (S = 0)")
    if s.shape[1] != n:
        raise DataError(
            f"length mismatch: scores has {s.shape[1]} rows per score vector, y_true has {n}"
        )
    if np.isnan(s).any():
        raise DataError("scores contain NaN; scores must be probabilities in [0, 1]")
    if (s < 0.0).any() or (s > 1.0).any():
        raise DataError(f"scores must lie in [0, 1]; found min {s.min():.6g}, max {s.max():.6g}")
    return s


def _auc_scope(y: NDArray[np.bool_], s: FloatArray, cols: IntArray) -> _AucScope:
    """Build the AUC structure for the rows ``cols`` (column indices)."""
    ycols = y[cols]
    pos_cols = cols[ycols]
    neg_all = cols[~ycols]
    neg_cols, lo, tied, tied_lo, tied_hi = [], [], [], [], []
    for seed_scores in s:
        neg_order = np.argsort(seed_scores[neg_all], kind="stable")
        nc = neg_all[neg_order]
        neg_sorted = seed_scores[nc]
        pos_scores = seed_scores[pos_cols]
        left = np.searchsorted(neg_sorted, pos_scores, side="left")
        right = np.searchsorted(neg_sorted, pos_scores, side="right")
        t = np.flatnonzero(left != right)
        neg_cols.append(nc)
        lo.append(left)
        tied.append(t)
        tied_lo.append(left[t])
        tied_hi.append(right[t])
    return _AucScope(
        pos_cols=pos_cols,
        neg_cols=tuple(neg_cols),
        lo=tuple(lo),
        tied=tuple(tied),
        tied_lo=tuple(tied_lo),
        tied_hi=tuple(tied_hi),
    )


def _build_plan(
    y_true: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike,
    threshold: float,
    metrics: Sequence[str],
) -> _Plan:
    """Validate inputs and precompute all resample-independent structures."""
    names = _validate_metrics(metrics)
    y, s, g = _validate_inputs(y_true, scores, groups, threshold)
    labels, codes = np.unique(g, return_inverse=True)
    # The row order must depend on the groups only (not on the scores): then
    # the resampled rows are a function of (seed, groups), and a score vector
    # gets identical draws whether evaluated alone or alongside others.
    order = np.argsort(codes, kind="stable")
    y = y[order]
    s = s[:, order]
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    n_seeds = s.shape[0]

    # Design columns: [ones, y, tp_0..tp_{S-1}, fp_0..fp_{S-1}]; C @ design
    # yields every confusion cell in one product.  These are 0/1 columns, so
    # the product is exact in float64 whatever order BLAS sums in.
    yf = y.astype(np.float64)
    pred = s >= float(threshold)
    p = np.clip(s, _EPS, 1.0 - _EPS)
    # log(1 - p) rather than log1p(-p) to reproduce sklearn's rounding.
    loss = np.where(y, -np.log(p), -np.log(1.0 - p))
    design = np.empty((y.shape[0], 2 + 2 * n_seeds), dtype=np.float64)
    design[:, 0] = 1.0
    design[:, 1] = yf
    design[:, 2 : 2 + n_seeds] = (pred & y).T
    design[:, 2 + n_seeds : 2 + 2 * n_seeds] = (pred & ~y).T

    group_auc: tuple[_AucScope, ...] = ()
    overall_auc = None
    if "roc_auc" in names:
        group_auc = tuple(
            _auc_scope(y, s, np.arange(bounds[k], bounds[k + 1])) for k in range(len(labels))
        )
        overall_auc = _auc_scope(y, s, np.arange(y.shape[0]))
    return _Plan(
        order=order,
        bounds=bounds,
        n_seeds=n_seeds,
        group_labels=tuple(str(x) for x in labels),
        metrics=names,
        design=design,
        loss=np.ascontiguousarray(loss),
        group_auc=group_auc,
        overall_auc=overall_auc,
    )


def _auc_from_counts(counts: FloatArray, scope: _AucScope) -> FloatArray:
    """Count-weighted Mann-Whitney AUC, shape ``(B, S)``; NaN for one class."""
    n_b = counts.shape[0]
    n_seeds = len(scope.neg_cols)
    cp = np.take(counts, scope.pos_cols, axis=1)
    n_pos = cp.sum(axis=1)
    out = np.empty((n_b, n_seeds), dtype=np.float64)
    cum = np.empty((n_b, len(scope.neg_cols[0]) + 1), dtype=np.float64)
    cum[:, 0] = 0.0
    for k in range(n_seeds):
        np.cumsum(np.take(counts, scope.neg_cols[k], axis=1), axis=1, out=cum[:, 1:])
        # Counts and their prefix sums are small integers, so these float64
        # products and sums are exact for any realistic n (< 2**26 rows).
        num = np.einsum("ij,ij->i", cp, np.take(cum, scope.lo[k], axis=1))
        if scope.tied[k].size:
            half = np.take(cum, scope.tied_hi[k], axis=1) - np.take(cum, scope.tied_lo[k], axis=1)
            num += 0.5 * np.einsum("ij,ij->i", np.take(cp, scope.tied[k], axis=1), half)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = num / (n_pos * cum[:, -1])
    return out


def _rates(
    metrics: tuple[str, ...],
    n_seeds: int,
    n_all: FloatArray,
    n_pos: FloatArray,
    sums: FloatArray,
) -> dict[str, FloatArray]:
    """Confusion-based metrics from design-column sums (axis 1 = column)."""
    tp = sums[:, 2 : 2 + n_seeds]
    fp = sums[:, 2 + n_seeds : 2 + 2 * n_seeds]
    loss = sums[:, 2 + 2 * n_seeds : 2 + 3 * n_seeds]
    fn = n_pos - tp
    n_neg = n_all - n_pos
    # Empty denominators (no rows / no negatives / no positives in a
    # resample) are genuinely undefined; 0/0 gives the NaN we want.
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "error_rate": (fp + fn) / n_all,
            "fpr": fp / n_neg,
            "fnr": fn / n_pos,
            "selection_rate": (tp + fp) / n_all,
            "log_loss": loss / n_all,
        }
    return {m: np.ascontiguousarray(values[m]) for m in metrics if m in values}


def _metrics_from_counts(
    plan: _Plan, counts: NDArray[np.floating] | NDArray[np.integer]
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Turn a count matrix into metric values.

    Parameters
    ----------
    plan : _Plan
        Output of :func:`_build_plan`.
    counts : ndarray, shape (B, n)
        Non-negative integer multiplicities of every row in each of ``B``
        resamples, columns in ``plan.order`` (group-sorted) order.  Counts need
        not sum to the group sizes; a group with zero total count yields NaN.

    Returns
    -------
    by_group : dict of str to ndarray
        Metric -> ``(B, S, G)`` float64.
    overall : dict of str to ndarray
        Metric -> ``(B, S)`` float64 on all rows pooled.
    """
    c = np.asarray(counts, dtype=np.float64)
    n_seeds = plan.n_seeds
    n_groups = len(plan.group_labels)
    n_b = c.shape[0]
    n_cols = plan.design.shape[1]
    sums = np.empty((n_b, n_groups, n_cols + n_seeds), dtype=np.float64)
    for k in range(n_groups):
        lo, hi = plan.bounds[k], plan.bounds[k + 1]
        block = c[:, lo:hi]
        sums[:, k, :n_cols] = block @ plan.design[lo:hi]
        # The loss sum is not exact, and BLAS rounding depends on how many
        # resamples share a product; a per-row pairwise sum does not, which
        # keeps results bit-identical across chunk sizes.
        for s in range(n_seeds):
            sums[:, k, n_cols + s] = (block * plan.loss[s, lo:hi]).sum(axis=1)

    # Pooled sums are the sums over groups: the pooled resample is by
    # definition the concatenation of the per-group resamples.
    per_group = np.swapaxes(sums, 1, 2)
    pooled = sums.sum(axis=1)
    by_group = _rates(plan.metrics, n_seeds, per_group[:, 0:1], per_group[:, 1:2], per_group)
    overall = _rates(plan.metrics, n_seeds, pooled[:, 0:1], pooled[:, 1:2], pooled)

    if "roc_auc" in plan.metrics:
        auc = np.empty((n_b, n_seeds, n_groups), dtype=np.float64)
        for k, scope in enumerate(plan.group_auc):
            auc[:, :, k] = _auc_from_counts(c, scope)
        by_group["roc_auc"] = auc
        if plan.overall_auc is None:
            raise InternalError("AUC requested without an AUC plan")
        overall["roc_auc"] = _auc_from_counts(c, plan.overall_auc)

    by_group = {m: by_group[m] for m in plan.metrics}
    overall = {m: overall[m] for m in plan.metrics}
    return by_group, overall


def _draw_counts(
    rngs: Sequence[np.random.Generator], bounds: IntArray, n_b: int
) -> NDArray[np.int64]:
    """Draw ``n_b`` within-group resamples as a ``(n_b, n)`` count matrix."""
    n = int(bounds[-1])
    flat = np.empty((n_b, n), dtype=np.intp)
    row_offsets = (np.arange(n_b, dtype=np.intp) * n)[:, np.newaxis]
    for k, rng in enumerate(rngs):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi == lo:
            continue
        # int32 draws are ~1.5x faster than int64 and exact for n_g < 2**31;
        # the add below widens them while writing the flat bincount index.
        dtype = np.int32 if hi - lo < 2**31 else np.int64
        draws = rng.integers(0, hi - lo, size=(n_b, hi - lo), dtype=dtype)
        np.add(draws, row_offsets + lo, out=flat[:, lo:hi])
    return np.bincount(flat.ravel(), minlength=n_b * n).reshape(n_b, n)


def bootstrap_group_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    threshold: float = 0.5,
    n_resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = METRICS,
    max_chunk_elements: int = 20_000_000,
) -> BootstrapDraws:
    """Group-stratified bootstrap of classification metrics for several seeds.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (0/1 or bool).
    scores : array-like of shape (S, n) or (n,)
        Predicted probability of the positive class, one row per score vector
        (e.g. training seed); all rows refer to the same test rows.
    groups : array-like of shape (n,)
        Sensitive-group label of each row; converted with ``astype(str)``.
    threshold : float, default 0.5
        A row is predicted positive iff ``score >= threshold``.
    n_resamples : int, default 1000
        Number of bootstrap resamples ``B``.
    seed : int, default 0
        Seed of ``np.random.default_rng``; equal seeds give identical draws.
    metrics : sequence of str, default METRICS
        Subset of :data:`METRICS` to compute.
    max_chunk_elements : int, default 20_000_000
        Upper bound on the number of elements of any ``(resamples, rows)``
        intermediate; resamples are processed in chunks of at most
        ``max(1, max_chunk_elements // n)`` (chunks are further capped at
        about 1e6 elements, which is faster).  With ``n >
        max_chunk_elements`` a chunk is a single resample of ``n`` elements.
        The results do not depend on the chunk size, bit for bit.

    Returns
    -------
    BootstrapDraws
        ``by_group[m]`` has shape ``(B, S, G)``, ``overall[m]`` ``(B, S)``.
        Undefined values (e.g. FPR of a resample without negatives, AUC of a
        single-class resample) are NaN.

    Raises
    ------
    DataError, ConfigError
        (both ``ValueError``) On invalid inputs (see :func:`point_group_metrics`),
        ``n_resamples < 1`` or ``max_chunk_elements < 1``.

    Notes
    -----
    Each group of ``n_g`` rows is resampled with replacement ``n_g`` times,
    independently per group, and every score vector is evaluated on the same
    resampled rows.  The root generator ``np.random.default_rng(seed)``
    spawns one child generator per group (sorted label order); a group's
    draws are therefore one sequential stream, which makes the result
    independent of the chunk size while all groups of a chunk are available
    together for the pooled metrics.
    """
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, numbers.Integral)
        or n_resamples < 1
    ):
        raise ConfigError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    if (
        isinstance(max_chunk_elements, bool)
        or not isinstance(max_chunk_elements, numbers.Integral)
        or max_chunk_elements < 1
    ):
        raise ConfigError(f"max_chunk_elements must be an integer >= 1, got {max_chunk_elements!r}")
    plan = _build_plan(y_true, scores, groups, threshold, metrics)
    n = int(plan.bounds[-1])
    n_b = int(n_resamples)
    n_groups = len(plan.group_labels)
    chunk = max(1, min(int(max_chunk_elements), _FAST_CHUNK_ELEMENTS) // n)

    rngs = np.random.default_rng(seed).spawn(n_groups)
    by_group = {m: np.empty((n_b, plan.n_seeds, n_groups)) for m in plan.metrics}
    overall = {m: np.empty((n_b, plan.n_seeds)) for m in plan.metrics}
    for start in range(0, n_b, chunk):
        stop = min(n_b, start + chunk)
        counts = _draw_counts(rngs, plan.bounds, stop - start)
        bg, ov = _metrics_from_counts(plan, counts)
        for m in plan.metrics:
            by_group[m][start:stop] = bg[m]
            overall[m][start:stop] = ov[m]
    return BootstrapDraws(
        metrics=plan.metrics,
        group_labels=plan.group_labels,
        by_group=by_group,
        overall=overall,
        n_resamples=n_b,
    )


def point_group_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    threshold: float = 0.5,
    metrics: Sequence[str] = METRICS,
) -> BootstrapDraws:
    """Metrics on the original rows, in the same structure as the bootstrap.

    Uses the identity resample (every row counted once) through the same code
    path as :func:`bootstrap_group_metrics`, so it doubles as a check of that
    code against reference implementations.

    Parameters
    ----------
    y_true, scores, groups, threshold, metrics
        As in :func:`bootstrap_group_metrics`.

    Returns
    -------
    BootstrapDraws
        With ``n_resamples == 1``: ``by_group[m]`` is ``(1, S, G)`` and
        ``overall[m]`` is ``(1, S)``.

    Raises
    ------
    DataError
        (a ``ValueError``) If lengths differ, ``y_true`` is not binary, or scores
        are NaN or outside [0, 1].
    ConfigError
        (a ``ValueError``) If ``threshold`` is outside [0, 1] or a metric name is
        unknown.
    """
    plan = _build_plan(y_true, scores, groups, threshold, metrics)
    by_group, overall = _metrics_from_counts(plan, np.ones((1, plan.bounds[-1])))
    return BootstrapDraws(
        metrics=plan.metrics,
        group_labels=plan.group_labels,
        by_group=by_group,
        overall=overall,
        n_resamples=1,
    )


def percentile_interval(
    draws: ArrayLike, level: float = 0.95, axis: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Equal-tailed percentile interval of bootstrap draws, ignoring NaN.

    Parameters
    ----------
    draws : array-like
        Bootstrap values; ``axis`` indexes the resamples.
    level : float, default 0.95
        Coverage, strictly between 0 and 1.
    axis : int, default 0
        Resample axis.

    Returns
    -------
    lower, upper : ndarray
        ``nanpercentile`` at ``100 * (1 - level) / 2`` and ``100 * (1 + level)
        / 2``; NaN (without a warning) where a slice is all NaN.

    Raises
    ------
    ConfigError
        (a ``ValueError``) If ``level`` is not in (0, 1).
    """
    if not isinstance(level, numbers.Real) or not 0.0 < float(level) < 1.0:
        raise ConfigError(f"level must be strictly between 0 and 1, got {level!r}")
    d = np.asarray(draws, dtype=np.float64)
    alpha = 100.0 * (1.0 - float(level)) / 2.0
    with warnings.catch_warnings():
        # All-NaN slices (e.g. AUC of a group that never has both classes)
        # are expected and already encoded as NaN in the result.
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanpercentile(d, alpha, axis=axis)
        upper = np.nanpercentile(d, 100.0 - alpha, axis=axis)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def group_gaps(by_group: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Between-group difference and ratio over the last axis, ignoring NaN.

    Parameters
    ----------
    by_group : array-like of shape (..., G)
        Metric values per group (e.g. ``BootstrapDraws.by_group[m]``).

    Returns
    -------
    difference : ndarray of shape (...)
        ``nanmax - nanmin``; NaN where every group is NaN.
    ratio : ndarray of shape (...)
        ``nanmin / nanmax``; NaN where every group is NaN or the max is 0.
    """
    a = np.asarray(by_group, dtype=np.float64)
    with warnings.catch_warnings():
        # All-NaN slices legitimately give NaN; don't let numpy warn about it.
        warnings.simplefilter("ignore", RuntimeWarning)
        hi = np.nanmax(a, axis=-1)
        lo = np.nanmin(a, axis=-1)
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    diff = hi - lo
    valid = np.isfinite(hi) & (hi != 0)
    ratio = np.divide(lo, hi, out=np.full_like(hi, np.nan), where=valid)
    return diff, ratio
