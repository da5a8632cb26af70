"""Disparate-error metrics per group with uncertainty, as tidy DataFrames.

Point estimates come from fairlearn's ``MetricFrame``; uncertainty from two
sources, reported separately: the spread over training seeds (``std``) and an
interval over the test rows (``ci_low``, ``ci_high``, named in ``ci_method``). Rates
(error rate, FPR, FNR, selection rate), their gaps and ratios get score intervals that
hold their level in small groups (Wilson, Newcombe, MOVER-R;
:mod:`audit.fairness._intervals`); ROC AUC and log-loss a percentile bootstrap over
test rows resampled within each group (:mod:`audit.fairness._bootstrap`).
Seed-aggregated rows (``seed`` missing) average the per-seed values; their rate
intervals use the seed-averaged counts, their bootstrap intervals the bootstrap of
that average, with all seeds scored on the same resampled rows.

Gaps: for each metric the difference (max - min over groups) and the ratio
(min / max), plus the equalized-odds difference (max of the FPR and FNR
differences) and the demographic-parity difference (selection-rate difference).
A gap's CI is that of the *signed* difference between the two groups that are
highest and lowest at the point estimate, so a gap whose CI covers 0 (ratio: 1)
is flagged as not exceeding its uncertainty instead of being reported as a finding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import log_loss, roc_auc_score

from .._exceptions import DataError, InternalError
from ..defaults import DEFAULT_BOOTSTRAP_SEED, DEFAULT_CI_LEVEL, DEFAULT_N_BOOTSTRAP, DEFAULT_THRESHOLD
from ..result._schema import BY_GROUP_COLUMNS, GAP_ONLY_METRICS, GAPS_COLUMNS, METRICS, OVERALL_COLUMNS
from ._bootstrap import bootstrap_group_metrics, percentile_interval
from ._intervals import difference_interval, rate_interval, ratio_interval, simultaneous_levels

__all__ = [
    "BOOTSTRAP_METRICS",
    "GAP_ONLY_METRICS",
    "METRICS",
    "RATE_METRICS",
    "RateCounts",
    "evaluate_predictions",
    "fairlearn_metric_frame",
    "rate_counts",
]

#: Proportions: score intervals (:mod:`audit.fairness._intervals`).
RATE_METRICS = ("error_rate", "fpr", "fnr", "selection_rate")
#: Not proportions: percentile bootstrap.
BOOTSTRAP_METRICS = ("log_loss", "roc_auc")


def _nan_if_single_class(fn: Callable[..., float]) -> Callable[..., float]:
    def wrapped(y_true: np.ndarray, y_score: np.ndarray) -> float:
        if np.unique(y_true).shape[0] < 2:
            return float("nan")
        return float(fn(y_true, y_score))

    return wrapped


def _metric_functions(threshold: float) -> dict[str, Callable[..., float]]:
    def predicted(score: np.ndarray) -> np.ndarray:
        return (np.asarray(score) >= threshold).astype(int)

    def rate_or_nan(fn: Callable[..., float], y_true: np.ndarray, score: np.ndarray, need: int) -> float:
        # FPR needs negatives and FNR positives; fairlearn returns 0 with a warning
        # otherwise, which would read as a perfect group.
        if not np.any(np.asarray(y_true) == need):
            return float("nan")
        return float(fn(y_true, predicted(score)))

    return {
        "error_rate": lambda y, s: float(np.mean(predicted(s) != np.asarray(y))),
        "fpr": lambda y, s: rate_or_nan(false_positive_rate, y, s, 0),
        "fnr": lambda y, s: rate_or_nan(false_negative_rate, y, s, 1),
        "selection_rate": lambda y, s: float(selection_rate(y, predicted(s))),
        "log_loss": lambda y, s: float(log_loss(y, np.clip(s, 0.0, 1.0), labels=[0, 1])),
        "roc_auc": _nan_if_single_class(roc_auc_score),
    }


def fairlearn_metric_frame(
    y_true: np.ndarray, score: np.ndarray, groups: np.ndarray, *, threshold: float = 0.5,
    metrics: Sequence[str] = METRICS,
) -> MetricFrame:
    """fairlearn ``MetricFrame`` of the audit metrics for one score vector."""
    fns = _metric_functions(threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return MetricFrame(
            metrics={m: fns[m] for m in metrics},
            y_true=np.asarray(y_true).astype(int),
            y_pred=np.asarray(score, dtype=np.float64),
            sensitive_features=pd.Series(np.asarray(groups).astype(str), name="group"),
        )


def evaluate_predictions(  # noqa: PLR0913 - the data, then one keyword per interval option
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    *,
    seeds: Sequence[int],
    threshold: float = DEFAULT_THRESHOLD,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    ci_level: float = DEFAULT_CI_LEVEL,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
    simultaneous_ci: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-group, overall and gap metrics for the scores of several seeds.

    Parameters
    ----------
    y_true
        0/1 labels of the test rows, shape ``(n,)``.
    scores
        Predicted positive-class probabilities, shape ``(S, n)``: one row per seed.
    groups
        Group label per test row.
    seeds
        The S training seeds (labels for the per-seed rows).
    threshold
        Scores at or above it are positive predictions.
    n_bootstrap
        Bootstrap resamples of the test rows (within groups) for the intervals of ROC
        AUC and log-loss; 0 leaves those NaN. Rates always get score intervals.
    ci_level
        Confidence level of every interval.
    bootstrap_seed
        Seed of the resampling.
    simultaneous_ci
        Bonferroni-adjust so that each metric's intervals hold together: the G
        per-group intervals at ``1 - (1 - ci_level) / G`` each, and the gaps at
        ``1 - (1 - ci_level) / (G (G - 1) / 2)``, enough for every pair of groups (a
        gap's pair is chosen after looking at the data).

    Returns
    -------
    by_group, overall, gaps : pandas.DataFrame
        Tidy frames with the columns ``BY_GROUP_COLUMNS``, ``OVERALL_COLUMNS`` and
        ``GAPS_COLUMNS``. ``seed`` is ``<NA>`` on the rows aggregated over seeds;
        ``ci_method`` names each interval's method (:mod:`audit.fairness._intervals`).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    y_true = np.asarray(y_true).astype(int)
    groups = np.asarray(groups).astype(str)
    if scores.shape[0] != len(seeds):
        raise DataError(f"scores has {scores.shape[0]} rows but {len(seeds)} seeds were given")
    labels = tuple(str(g) for g in np.unique(groups))
    group_n = {g: int(np.sum(groups == g)) for g in labels}

    # point[m]: (S, G) per-group values; point_overall[m]: (S,)
    point: dict[str, np.ndarray] = {m: np.empty((len(seeds), len(labels))) for m in METRICS}
    point_overall: dict[str, np.ndarray] = {m: np.empty(len(seeds)) for m in METRICS}
    for s in range(len(seeds)):
        frame = fairlearn_metric_frame(y_true, scores[s], groups, threshold=threshold)
        by_group = frame.by_group
        for m in METRICS:
            point[m][s] = by_group.loc[list(labels), m].to_numpy(dtype=np.float64)
            point_overall[m][s] = float(frame.overall[m])

    draws = None
    if n_bootstrap > 0:
        draws = bootstrap_group_metrics(
            y_true, scores, groups, threshold=threshold, n_resamples=n_bootstrap,
            metrics=BOOTSTRAP_METRICS, seed=bootstrap_seed,
        )
        if tuple(draws.group_labels) != labels:
            raise InternalError("bootstrap and MetricFrame disagree on the group order")
    group_level, gap_level = simultaneous_levels(ci_level, len(labels)) if simultaneous_ci \
        else (ci_level, ci_level)
    counts = rate_counts(y_true, scores, groups, labels, threshold)

    by_group_rows: list[dict[str, Any]] = []
    overall_rows: list[dict[str, Any]] = []
    gap_rows: list[dict[str, Any]] = []
    n_total = int(y_true.shape[0])
    seed_keys: list[Any] = [*seeds, pd.NA]
    for s_idx, seed in enumerate(seed_keys):
        view = _SeedView(point, point_overall, draws, counts, None if seed is pd.NA else s_idx)
        for m in METRICS:
            values, stds, overall_value, overall_std = view.values(m)
            lo, hi, method = view.group_interval(m, group_level)
            for g_idx, g in enumerate(labels):
                by_group_rows.append({
                    "seed": seed, "group": g, "metric": m, "value": float(values[g_idx]),
                    "std": float(stds[g_idx]), "ci_low": float(lo[g_idx]),
                    "ci_high": float(hi[g_idx]), "ci_method": str(method[g_idx]), "n": group_n[g],
                })
            olo, ohi, omethod = view.overall_interval(m, ci_level)
            overall_rows.append({
                "seed": seed, "metric": m, "value": overall_value, "std": overall_std,
                "ci_low": olo, "ci_high": ohi, "ci_method": omethod, "n": n_total,
            })
        gap_rows.extend(_gap_rows(seed, view, labels, gap_level))

    by_group_df = pd.DataFrame(by_group_rows, columns=list(BY_GROUP_COLUMNS))
    overall_df = pd.DataFrame(overall_rows, columns=list(OVERALL_COLUMNS))
    gaps_df = pd.DataFrame(gap_rows, columns=list(GAPS_COLUMNS))
    for df in (by_group_df, overall_df, gaps_df):
        df["seed"] = df["seed"].astype("Int64")
    return by_group_df, overall_df, gaps_df


@dataclass(frozen=True)
class RateCounts:
    """Numerators and denominators of a rate metric on the test rows.

    ``k`` has shape ``(S, G)`` (seed, group), ``n`` shape ``(G,)``; ``k_overall``
    ``(S,)`` and ``n_overall`` pool the groups. Denominators do not depend on the
    seed: rows, negatives or positives of the test labels.
    """

    k: np.ndarray
    n: np.ndarray
    k_overall: np.ndarray
    n_overall: int


def rate_counts(
    y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray, labels: Sequence[str],
    threshold: float,
) -> dict[str, RateCounts]:
    """:class:`RateCounts` of every rate metric, keyed by metric name."""
    predicted = np.atleast_2d(scores) >= threshold  # (S, n)
    positive = np.asarray(y_true) == 1
    hits = {
        "error_rate": (predicted != positive, np.ones_like(positive)),
        "fpr": (predicted & ~positive, ~positive),
        "fnr": (~predicted & positive, positive),
        "selection_rate": (predicted, np.ones_like(positive)),
    }
    members = np.stack([np.asarray(groups) == g for g in labels], axis=1)  # (n, G)
    out = {}
    for m, (hit, eligible) in hits.items():
        k = (hit & eligible).astype(np.float64) @ members.astype(np.float64)
        out[m] = RateCounts(k=k, n=eligible.astype(np.float64) @ members.astype(np.float64),
                            k_overall=(hit & eligible).sum(axis=1).astype(np.float64),
                            n_overall=int(eligible.sum()))
    return out


@dataclass(frozen=True)
class _SeedView:
    """One seed's (or, with ``seed_index`` None, the seed average's) values and intervals."""

    point: dict[str, np.ndarray]
    point_overall: dict[str, np.ndarray]
    draws: Any
    counts: dict[str, RateCounts]
    seed_index: int | None

    def values(self, m: str) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Per-group values and seed spreads, overall value and spread."""
        if self.seed_index is None:
            return (_nanmean(self.point[m], axis=0), _nanstd(self.point[m], axis=0),
                    float(_nanmean(self.point_overall[m], axis=0)),
                    float(_nanstd(self.point_overall[m], axis=0)))
        return (self.point[m][self.seed_index], np.full(self.point[m].shape[1], np.nan),
                float(self.point_overall[m][self.seed_index]), float("nan"))

    def k(self, m: str) -> np.ndarray:
        """Per-group numerators: this seed's counts or the seeds' mean count."""
        k = self.counts[m].k
        return k.mean(axis=0) if self.seed_index is None else k[self.seed_index]

    def group_draws(self, m: str) -> np.ndarray | None:
        """Bootstrap draws ``(B, G)`` of a non-rate metric, or None."""
        if self.draws is None:
            return None
        d = self.draws.by_group[m]
        return _nanmean(d, axis=1) if self.seed_index is None else d[:, self.seed_index, :]

    def group_interval(self, m: str, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_groups = self.point[m].shape[1]
        if m in self.counts:
            return rate_interval(self.k(m), self.counts[m].n, level)
        lo, hi = _interval(self.group_draws(m), level, n_groups)
        return lo, hi, np.full(n_groups, _bootstrap_name(self.draws))

    def overall_interval(self, m: str, level: float) -> tuple[float, float, str]:
        if m in self.counts:
            c = self.counts[m]
            k = c.k_overall.mean() if self.seed_index is None else c.k_overall[self.seed_index]
            lo, hi, method = rate_interval(k, c.n_overall, level)
            return float(lo), float(hi), str(method)
        odraw = None
        if self.draws is not None:
            d = self.draws.overall[m]
            odraw = (_nanmean(d, axis=1) if self.seed_index is None else d[:, self.seed_index])[:, None]
        lo, hi = _interval(odraw, level, 1)
        return float(lo[0]), float(hi[0]), _bootstrap_name(self.draws)

    def gap_interval(self, m: str, kind: str, hi_i: int, lo_i: int, level: float) -> tuple[float, float, str]:
        """Interval of the signed difference (highest - lowest) or ratio (lowest / highest)."""
        if m in self.counts:
            k, n = self.k(m), self.counts[m].n
            if kind == "difference":
                lo, hi, method = difference_interval(k[hi_i], n[hi_i], k[lo_i], n[lo_i], level)
            else:
                lo, hi, method = ratio_interval(k[lo_i], n[lo_i], k[hi_i], n[hi_i], level)
            return float(lo), float(hi), str(method)
        dr = self.group_draws(m)
        if dr is None:
            return float("nan"), float("nan"), _bootstrap_name(None)
        if kind == "difference":
            bd = dr[:, hi_i] - dr[:, lo_i]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                # a resample whose highest group has a rate of 0 has no ratio
                bd = dr[:, lo_i] / dr[:, hi_i]
            bd = np.where(np.isfinite(bd), bd, np.nan)
        lo_a, hi_a = _interval(bd[:, None], level, 1)
        return float(lo_a[0]), float(hi_a[0]), _bootstrap_name(self.draws)


def _bootstrap_name(draws: Any) -> str:
    return "bootstrap" if draws is not None else "none"


def _gap_rows(seed: Any, view: _SeedView, labels: tuple[str, ...], level: float) -> list[dict[str, Any]]:
    aggregate = seed is pd.NA
    point = view.point
    rows: list[dict[str, Any]] = []
    signed: dict[str, tuple[float, tuple[float, float, str], str, str]] = {}

    def per_seed_gap(m: str, kind: str) -> np.ndarray:
        out = []
        for s in range(point[m].shape[0]):
            d, r = _diff_ratio(point[m][s])
            out.append(d if kind == "difference" else r)
        return np.asarray(out)

    for m in METRICS:
        vals = view.values(m)[0]
        if np.all(np.isnan(vals)):
            hi_i = lo_i = 0
        else:
            hi_i, lo_i = int(np.nanargmax(vals)), int(np.nanargmin(vals))
        diff, ratio = _diff_ratio(vals)
        for kind, value in (("difference", diff), ("ratio", ratio)):
            lo, hi, method = view.gap_interval(m, kind, hi_i, lo_i, level)
            if kind == "difference":
                signed[m] = (diff, (lo, hi, method), labels[hi_i], labels[lo_i])
            std = float(_nanstd(per_seed_gap(m, kind), axis=0)) if aggregate else float("nan")
            rows.append({
                "seed": seed, "metric": m, "gap": kind, "value": value, "std": std,
                "ci_low": lo, "ci_high": hi, "ci_method": method,
                "max_group": labels[hi_i], "min_group": labels[lo_i],
                "exceeds_uncertainty": _exceeds(kind, lo, hi, value),
            })
    # equalized odds: the larger of the FPR and FNR differences (FNR diff = TPR diff).
    eo_metric = "fpr" if _nan_to_neg(signed["fpr"][0]) >= _nan_to_neg(signed["fnr"][0]) else "fnr"
    for name, source in (("equalized_odds", eo_metric), ("demographic_parity", "selection_rate")):
        value, (lo, hi, method), g_hi, g_lo = signed[source]
        if aggregate:
            per_seed = np.maximum(per_seed_gap("fpr", "difference"), per_seed_gap("fnr", "difference")) \
                if name == "equalized_odds" else per_seed_gap(source, "difference")
            std = float(_nanstd(per_seed, axis=0))
        else:
            std = float("nan")
        rows.append({
            "seed": seed, "metric": name, "gap": "difference", "value": value, "std": std,
            "ci_low": lo, "ci_high": hi, "ci_method": method, "max_group": g_hi,
            "min_group": g_lo, "exceeds_uncertainty": _exceeds("difference", lo, hi, value),
        })
    return rows


def _exceeds(kind: str, lo: float, hi: float, value: float) -> Any:
    if np.isnan(lo) or np.isnan(hi) or np.isnan(value):
        return pd.NA
    return bool(lo > 0) if kind == "difference" else bool(hi < 1)


def _nan_to_neg(x: float) -> float:
    return -np.inf if np.isnan(x) else x


def _diff_ratio(values: np.ndarray) -> tuple[float, float]:
    if np.all(np.isnan(values)):
        return float("nan"), float("nan")
    hi, lo = float(np.nanmax(values)), float(np.nanmin(values))
    ratio = lo / hi if hi > 0 else float("nan")
    return hi - lo, ratio


def _interval(draws: np.ndarray | None, level: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    if draws is None:
        nan = np.full(width, np.nan)
        return nan, nan.copy()
    lo, hi = percentile_interval(draws, level, axis=0)
    return np.atleast_1d(lo), np.atleast_1d(hi)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _nanstd(a: np.ndarray, axis: int) -> np.ndarray:
    if a.shape[axis] < 2:
        return np.full(np.delete(a.shape, axis), np.nan) if a.ndim > 1 else np.asarray(np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(a, axis=axis, ddof=1)
