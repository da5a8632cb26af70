"""Disparate-error metrics per group with uncertainty, as tidy DataFrames.

Point estimates come from fairlearn's ``MetricFrame``; uncertainty from two
sources, reported separately: the spread over training seeds (``std``) and a
percentile bootstrap over test rows resampled within each group (``ci_low``,
``ci_high``; :mod:`audit.fairness._bootstrap`). Seed-aggregated rows (``seed`` missing)
average the per-seed values and take their CI from the bootstrap of that
average, with all seeds scored on the same resampled rows.

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

__all__ = [
    "GAP_ONLY_METRICS",
    "METRICS",
    "evaluate_predictions",
    "fairlearn_metric_frame",
]


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


def evaluate_predictions(
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    *,
    seeds: Sequence[int],
    threshold: float = DEFAULT_THRESHOLD,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    ci_level: float = DEFAULT_CI_LEVEL,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
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
        Bootstrap resamples of the test rows (within groups); 0 disables CIs.
    ci_level
        Confidence level of the percentile intervals.
    bootstrap_seed
        Seed of the resampling.

    Returns
    -------
    by_group, overall, gaps : pandas.DataFrame
        Tidy frames with the columns ``BY_GROUP_COLUMNS``, ``OVERALL_COLUMNS`` and
        ``GAPS_COLUMNS``. ``seed`` is ``<NA>`` on the rows aggregated over seeds.
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
            seed=bootstrap_seed,
        )
        if tuple(draws.group_labels) != labels:
            raise InternalError("bootstrap and MetricFrame disagree on the group order")

    by_group_rows: list[dict[str, Any]] = []
    overall_rows: list[dict[str, Any]] = []
    gap_rows: list[dict[str, Any]] = []
    n_total = int(y_true.shape[0])
    seed_keys: list[Any] = [*seeds, pd.NA]
    for s_idx, seed in enumerate(seed_keys):
        aggregate = seed is pd.NA
        for m in METRICS:
            if aggregate:
                values = _nanmean(point[m], axis=0)
                stds = _nanstd(point[m], axis=0)
                overall_value = float(_nanmean(point_overall[m], axis=0))
                overall_std = float(_nanstd(point_overall[m], axis=0))
                bdraw = None if draws is None else _nanmean(draws.by_group[m], axis=1)  # (B, G)
                odraw = None if draws is None else _nanmean(draws.overall[m], axis=1)  # (B,)
            else:
                values = point[m][s_idx]
                stds = np.full(len(labels), np.nan)
                overall_value = float(point_overall[m][s_idx])
                overall_std = float("nan")
                bdraw = None if draws is None else draws.by_group[m][:, s_idx, :]
                odraw = None if draws is None else draws.overall[m][:, s_idx]
            lo, hi = _interval(bdraw, ci_level, len(labels))
            for g_idx, g in enumerate(labels):
                by_group_rows.append({
                    "seed": seed, "group": g, "metric": m, "value": float(values[g_idx]),
                    "std": float(stds[g_idx]), "ci_low": float(lo[g_idx]),
                    "ci_high": float(hi[g_idx]), "n": group_n[g],
                })
            olo, ohi = _interval(None if odraw is None else odraw[:, None], ci_level, 1)
            overall_rows.append({
                "seed": seed, "metric": m, "value": overall_value, "std": overall_std,
                "ci_low": float(olo[0]), "ci_high": float(ohi[0]), "n": n_total,
            })
        gap_rows.extend(_gap_rows(seed, point, draws, s_idx, labels, ci_level))

    by_group_df = pd.DataFrame(by_group_rows, columns=list(BY_GROUP_COLUMNS))
    overall_df = pd.DataFrame(overall_rows, columns=list(OVERALL_COLUMNS))
    gaps_df = pd.DataFrame(gap_rows, columns=list(GAPS_COLUMNS))
    for df in (by_group_df, overall_df, gaps_df):
        df["seed"] = df["seed"].astype("Int64")
    return by_group_df, overall_df, gaps_df


def _gap_rows(
    seed: Any, point: dict[str, np.ndarray], draws: Any, s_idx: int,
    labels: tuple[str, ...], ci_level: float,
) -> list[dict[str, Any]]:
    aggregate = seed is pd.NA
    rows: list[dict[str, Any]] = []
    signed: dict[str, tuple[float, np.ndarray | None, str, str]] = {}

    def per_group(m: str) -> tuple[np.ndarray, np.ndarray | None]:
        if aggregate:
            vals = _nanmean(point[m], axis=0)
            dr = None if draws is None else _nanmean(draws.by_group[m], axis=1)
        else:
            vals = point[m][s_idx]
            dr = None if draws is None else draws.by_group[m][:, s_idx, :]
        return vals, dr

    def per_seed_gap(m: str, kind: str) -> np.ndarray:
        out = []
        for s in range(point[m].shape[0]):
            d, r = _diff_ratio(point[m][s])
            out.append(d if kind == "difference" else r)
        return np.asarray(out)

    for m in METRICS:
        vals, dr = per_group(m)
        if np.all(np.isnan(vals)):
            hi_i = lo_i = 0
        else:
            hi_i, lo_i = int(np.nanargmax(vals)), int(np.nanargmin(vals))
        diff, ratio = _diff_ratio(vals)
        d_draw = None if dr is None else dr[:, hi_i] - dr[:, lo_i]
        with np.errstate(divide="ignore", invalid="ignore"):
            r_draw = None if dr is None else dr[:, lo_i] / dr[:, hi_i]
            if r_draw is not None:
                # a resample whose highest group has a rate of 0 has no ratio
                r_draw = np.where(np.isfinite(r_draw), r_draw, np.nan)
        signed[m] = (diff, d_draw, labels[hi_i], labels[lo_i])
        for kind, value, bd in (("difference", diff, d_draw), ("ratio", ratio, r_draw)):
            lo, hi = _interval(None if bd is None else bd[:, None], ci_level, 1)
            std = float(_nanstd(per_seed_gap(m, kind), axis=0)) if aggregate else float("nan")
            exceeds = _exceeds(kind, float(lo[0]), float(hi[0]), value)
            rows.append({
                "seed": seed, "metric": m, "gap": kind, "value": value, "std": std,
                "ci_low": float(lo[0]), "ci_high": float(hi[0]),
                "max_group": labels[hi_i], "min_group": labels[lo_i],
                "exceeds_uncertainty": exceeds,
            })
    # equalized odds: the larger of the FPR and FNR differences (FNR diff = TPR diff).
    eo_metric = "fpr" if _nan_to_neg(signed["fpr"][0]) >= _nan_to_neg(signed["fnr"][0]) else "fnr"
    for name, source in (("equalized_odds", eo_metric), ("demographic_parity", "selection_rate")):
        value, d_draw, g_hi, g_lo = signed[source]
        if aggregate:
            per_seed = np.maximum(per_seed_gap("fpr", "difference"), per_seed_gap("fnr", "difference")) \
                if name == "equalized_odds" else per_seed_gap(source, "difference")
            std = float(_nanstd(per_seed, axis=0))
        else:
            std = float("nan")
        lo, hi = _interval(None if d_draw is None else d_draw[:, None], ci_level, 1)
        rows.append({
            "seed": seed, "metric": name, "gap": "difference", "value": value, "std": std,
            "ci_low": float(lo[0]), "ci_high": float(hi[0]), "max_group": g_hi,
            "min_group": g_lo, "exceeds_uncertainty": _exceeds("difference", float(lo[0]),
                                                               float(hi[0]), value),
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
