"""How much one arm's group gap differs from another's, with a paired interval.

Every arm is scored on the same test rows, and the bootstrap (with the audit's seed)
draws the same resamples for every arm, so the difference of two arms' gaps can be
bootstrapped resample by resample: the interval of the *change* is then much narrower
than the two arms' own intervals side by side (which overlap even when one gap is
clearly wider), because the test rows' own luck is common to both.

An arm's gap in one resample is the highest minus the lowest of its seed-averaged
group errors (or FPRs, ...) in that resample, as its point gap is on the original
rows. (Fixing each arm's groups at its own point estimate instead, as the ``gaps``
table's interval does, orients two arms' gaps differently when their worst groups
differ, and the difference of two oppositely signed gaps is no gap change.) The change
is ``arm's gap - versus arm's gap``; it is *beyond uncertainty* when its percentile
interval excludes 0. The interval covers the test rows' sampling, not the training
seeds' (whose spread the ``gaps`` table reports as ``std``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import InternalError
from ..arms._arms import Arm, dp_settings
from ._bootstrap import bootstrap_group_metrics, point_group_metrics
from ._metrics import RATE_METRICS

__all__ = ["COMPARED_METRICS", "arm_comparison_pairs", "comparison_pairs", "gap_changes"]

#: Rate metrics whose gaps are compared between arms.
COMPARED_METRICS = RATE_METRICS


def comparison_pairs(kinds: Mapping[str, str],
                     dp_settings: Mapping[str, object] | None = None) -> list[tuple[str, str]]:
    """(arm, versus) pairs worth comparing, from arm label -> kind in audit order:
    every arm against the first baseline (does its mechanism widen the gap?), every
    group-dropout arm against every uniform-dropout arm (do group rates offset it?) and
    every DPSGD-F arm against every DP-SGD arm (do group clipping bounds offset it?) of
    the same privacy setting (``dp_settings``: label -> :meth:`~audit.DPSGDArm.dp_setting`;
    arms left out count as equal).

    Examples
    --------
    >>> comparison_pairs({"baseline": "baseline", "uniform_dropout": "uniform_dropout",
    ...                   "group_dropout": "group_dropout"})
    [('uniform_dropout', 'baseline'), ('group_dropout', 'baseline'), ('group_dropout', 'uniform_dropout')]
    >>> comparison_pairs({"baseline": "baseline", "dp_sgd": "dp_sgd", "dp_sgd_f": "dp_sgd_f"})
    [('dp_sgd', 'baseline'), ('dp_sgd_f', 'baseline'), ('dp_sgd_f', 'dp_sgd')]
    """
    baselines = [a for a, k in kinds.items() if k == "baseline"]
    uniforms = [a for a, k in kinds.items() if k == "uniform_dropout"]
    dp_sgds = [a for a, k in kinds.items() if k == "dp_sgd"]
    pairs = [(a, baselines[0]) for a in kinds if baselines and a != baselines[0]]
    pairs += [(a, u) for a, k in kinds.items() if k == "group_dropout" for u in uniforms]
    settings = dp_settings or {}
    pairs += [(a, d) for a, k in kinds.items() if k == "dp_sgd_f" for d in dp_sgds
              if settings.get(a) == settings.get(d)]
    return pairs


def arm_comparison_pairs(arms: Sequence[Arm]) -> list[tuple[str, str]]:
    """:func:`comparison_pairs` of an audit's arms, DP arms paired only at the same
    privacy setting (:func:`audit.arms._arms.dp_settings`)."""
    return comparison_pairs({arm.label: arm.kind for arm in arms}, dp_settings(arms))


def _ranges(values: np.ndarray) -> np.ndarray:
    """Highest minus lowest group along the last axis (NaN groups ignored)."""
    with warnings.catch_warnings():
        # A resample with no defined group leaves an all-NaN row; NaN is its answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(values, axis=-1) - np.nanmin(values, axis=-1)


def _seed_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over seeds ignoring NaN; a group undefined in every seed stays NaN, quietly."""
    with warnings.catch_warnings():
        # Small groups can lack positives (or negatives) in a resample: FNR/FPR undefined there.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def gap_changes(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    groups: np.ndarray,
    pairs: Sequence[tuple[str, str]],
    *,
    threshold: float,
    n_bootstrap: int,
    ci_level: float,
    bootstrap_seed: int,
) -> pd.DataFrame:
    """One row per pair and metric: both gaps, the change and its paired interval.

    ``scores`` maps each arm to its ``(seeds, rows)`` predicted probabilities on the
    test rows. Without resamples (``n_bootstrap=0``) the interval is NaN and nothing is
    beyond uncertainty.

    Examples
    --------
    >>> y = np.array([0, 1] * 50); g = np.array(["a"] * 50 + ["b"] * 50)
    >>> fair = np.where(y == 1, 0.9, 0.1)[None]
    >>> unfair = np.where((g == "b") & (np.arange(100) % 4 == 0), 1 - fair[0], fair[0])[None]
    >>> out = gap_changes(y, {"base": fair, "arm": unfair}, g, [("arm", "base")], threshold=0.5,
    ...                   n_bootstrap=200, ci_level=0.95, bootstrap_seed=0)
    >>> row = out[out["metric"] == "error_rate"].iloc[0]
    >>> round(float(row["change"]), 3), bool(row["beyond_uncertainty"])
    (0.24, True)
    """
    labels = tuple(str(v) for v in np.unique(np.asarray(groups).astype(str)))
    point: dict[str, dict[str, np.ndarray]] = {}
    draws: dict[str, dict[str, np.ndarray] | None] = {}
    for arm in {a for pair in pairs for a in pair}:
        s = np.atleast_2d(np.asarray(scores[arm], dtype=np.float64))
        p = point_group_metrics(y_true, s, groups, threshold=threshold, metrics=COMPARED_METRICS)
        if tuple(p.group_labels) != labels:
            raise InternalError("group order differs between the compared arms")
        point[arm] = {m: _seed_mean(p.by_group[m][0], axis=0) for m in COMPARED_METRICS}
        if n_bootstrap > 0:
            d = bootstrap_group_metrics(y_true, s, groups, threshold=threshold, n_resamples=n_bootstrap,
                                        metrics=COMPARED_METRICS,
                                        seed=bootstrap_seed)
            draws[arm] = {m: _seed_mean(d.by_group[m], axis=1) for m in COMPARED_METRICS}
        else:
            draws[arm] = None
    alpha = (1.0 - ci_level) / 2.0
    rows: list[dict[str, Any]] = []
    for arm, versus in pairs:
        for m in COMPARED_METRICS:
            gap_a, gap_v = float(_ranges(point[arm][m])), float(_ranges(point[versus][m]))
            lo = hi = float("nan")
            arm_draws, versus_draws = draws[arm], draws[versus]
            if arm_draws is not None and versus_draws is not None:
                change = _ranges(arm_draws[m]) - _ranges(versus_draws[m])
                change = change[np.isfinite(change)]
                if change.size:
                    lo, hi = (float(x) for x in np.quantile(change, [alpha, 1.0 - alpha]))
            rows.append({
                "arm": arm, "versus": versus, "metric": m, "gap": gap_a, "versus_gap": gap_v,
                "change": gap_a - gap_v, "ci_low": lo, "ci_high": hi, "level": ci_level,
                "n_bootstrap": int(n_bootstrap),
                "beyond_uncertainty": bool(np.isfinite(lo) and (lo > 0 or hi < 0)),
            })
    return pd.DataFrame(rows)
