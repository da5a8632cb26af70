"""The schema of an audit's results: frame columns, their dtypes and order, JSON values.

This is the bottom layer of the engine: the stages that build result frames
(fairness, privacy, pipeline) import their column names from here, so every frame
and ``results.json`` agree on one spelling. Nothing here imports a stage that trains
or attacks models.

Frames of an :class:`audit.AuditResult` (``arm`` and ``kind`` lead every frame but
``dp_cost``; ``seed`` is ``<NA>`` on rows aggregated over seeds):

* ``arms``       -- :data:`ARMS_COLUMNS`
* ``by_group``   -- arm, kind, then :data:`BY_GROUP_COLUMNS`
* ``overall``    -- arm, kind, then :data:`OVERALL_COLUMNS`
* ``gaps``       -- arm, kind, then :data:`GAPS_COLUMNS`
* ``privacy``    -- arm, kind, seed, then :data:`PRIVACY_FIELDS`
* ``mia``        -- :data:`MIA_COLUMNS`
* ``empirical``  -- :data:`EMPIRICAL_COLUMNS`
* ``mechanism``  -- :data:`MECHANISM_COLUMNS`
* ``dp_cost``    -- :data:`DP_COST_COLUMNS`
* ``gap_changes`` -- :data:`GAP_CHANGE_COLUMNS`
* ``roc``        -- :data:`ROC_COLUMNS`
* ``missing``    -- :data:`MISSING_COLUMNS` (missing features at test time, by group)
* ``missing_match`` -- :data:`MISSING_MATCH_COLUMNS` (uniform dropout at each p_train)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

# The fairness metric names are defined next to the bootstrap that computes them:
# that module imports only numpy (a test pins it), so importing it here adds no cycle.
from ..fairness._bootstrap import METRICS

__all__ = [
    "ARMS_COLUMNS",
    "ATTACK_METRICS_COLUMNS",
    "BY_GROUP_COLUMNS",
    "DP_COST_COLUMNS",
    "GAP_CHANGE_COLUMNS",
    "EMPIRICAL_COLUMNS",
    "GAPS_COLUMNS",
    "GAP_FIELDS",
    "GAP_ONLY_METRICS",
    "MECHANISM_COLUMNS",
    "MIA_COLUMNS",
    "MIA_METRICS",
    "MIA_STAT_FIELDS",
    "MISSING_COLUMNS",
    "MISSING_MATCH_COLUMNS",
    "OVERALL_COLUMNS",
    "PRIVACY_FIELDS",
    "PRIVACY_FIELDS_SINCE_1_2",
    "ROC_COLUMNS",
    "SCHEMA_VERSION",
    "STAT_FIELDS",
    "frame_from_records",
    "is_missing",
    "json_safe",
    "none_to_nan",
    "normalise_empirical",
    "normalise_frames",
    "normalise_mia",
    "nullable_bool",
]

#: Version of the ``results.json`` layout, MAJOR.MINOR, bumped on any change: the minor
#: when fields are added (older readers of the major still read the file), the major when
#: a change breaks readers. ``results.schema.json`` carries the same number
#: (``x-fairpriv-schema-version``); 1.1 is the first version described by that schema
#: (its fields are those of the last 1.0 files); 1.2 adds the missing-feature frames
#: (``missing`` per arm, ``missing_features`` at the top) and the privacy fields of
#: group-adaptive DP-SGD.
SCHEMA_VERSION = "1.2"

# ------------------------------------------------------------------ metric names

#: Gap-only summaries built from the per-group metrics.
GAP_ONLY_METRICS: tuple[str, ...] = ("equalized_odds", "demographic_parity")
#: Membership-inference attack metrics, in report order.
MIA_METRICS: tuple[str, ...] = ("auc", "advantage", "tpr_at_fpr_1pct", "tpr_at_fpr_0.1pct")

# ------------------------------------------------------------------ columns

ARMS_COLUMNS = ("arm", "kind", "params")

#: A statistic with its spread over seeds and its confidence interval.
STAT_FIELDS = ("value", "std", "ci_low", "ci_high")
GAP_FIELDS = (*STAT_FIELDS, "max_group", "min_group", "exceeds_uncertainty")
BY_GROUP_COLUMNS = ("seed", "group", "metric", *STAT_FIELDS, "ci_method", "n")
OVERALL_COLUMNS = ("seed", "metric", *STAT_FIELDS, "ci_method", "n")
GAPS_COLUMNS = ("seed", "metric", "gap", *GAP_FIELDS[:4], "ci_method", *GAP_FIELDS[4:])

PRIVACY_FIELDS = (
    "epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "accountant",
    "max_grad_norm", "guarantee", "gradient_noise_multiplier", "statistics_noise_multiplier",
)  # fmt: skip
#: Privacy fields a file written before schema 1.2 lacks (read back as missing).
PRIVACY_FIELDS_SINCE_1_2 = ("gradient_noise_multiplier", "statistics_noise_multiplier")

#: One attack's metrics on one model (no spread over seeds yet).
ATTACK_METRICS_COLUMNS = (
    "group", "metric", "value", "ci_low", "ci_high", "n_members", "n_nonmembers", "available",
    "reason",
)  # fmt: skip
MIA_STAT_FIELDS = (*STAT_FIELDS, "n_members", "n_nonmembers", "available", "reason")
MIA_COLUMNS = ("arm", "kind", "seed", "attack", "group", "metric", *MIA_STAT_FIELDS)

EMPIRICAL_COLUMNS = (
    "arm", "kind", "seed", "audit", "canaries", "canary_kind", "included", "k_plus", "k_minus",
    "guesses", "correct", "delta", "confidence", "family_confidence", "epsilon_lower_bound",
    "mu_lower_bound", "epsilon_lower_bound_gdp", "run_epsilon", "dp_violation",
)  # fmt: skip
#: The canary audits, in report order (see :data:`audit.result._bounds.CANARY_AUDITS`).
EMPIRICAL_AUDITS = ("black_box", "white_box_rows", "white_box_gradient")
ROC_COLUMNS = ("arm", "kind", "seed", "attack", "fpr", "tpr", "resolvable")
MECHANISM_COLUMNS = ("arm", "kind", "row", "group", "rate", "grad_norm", "noise_norm", "noise_std")
GAP_CHANGE_COLUMNS = (
    "arm", "versus", "metric", "gap", "versus_gap", "change", "ci_low", "ci_high", "level",
    "n_bootstrap", "beyond_uncertainty",
)  # fmt: skip
DP_COST_COLUMNS = (
    "arm", "group", "metric", "baseline", "cost", "std", "ci_low", "ci_high", "overall_cost",
    "excess", "excess_ci_low", "excess_ci_high", "flagged", "seeds",
)  # fmt: skip

#: Error under missing features: the rate, its interval, and the change from no missing
#: feature (per row, over seeds and draws) with its normal interval and standard error.
_MISSING_FIELDS = (
    "p_test", "group", "metric", "value", "std", "ci_low", "ci_high", "ci_method", "change",
    "change_ci_low", "change_ci_high", "change_se", "n", "seeds",
)  # fmt: skip
MISSING_COLUMNS = ("arm", "kind", *_MISSING_FIELDS, "scenario")
MISSING_MATCH_COLUMNS = ("p_train", *_MISSING_FIELDS)

_METRIC_ORDER = {m: i for i, m in enumerate((*METRICS, *GAP_ONLY_METRICS, *MIA_METRICS))}
_FLOAT_COLUMNS = {"value", "std", "ci_low", "ci_high", "epsilon", "delta", "noise_multiplier",
                  "sample_rate", "max_grad_norm", "gradient_noise_multiplier",
                  "statistics_noise_multiplier"}
_OBJECT_COLUMNS = {"arm", "kind", "group", "metric", "gap", "max_group", "min_group",
                   "accountant", "guarantee", "ci_method"}
#: Columns of the small record frames (mechanism, dp_cost, gap_changes, roc) that are
#: not numbers.
_RECORD_TEXT_COLUMNS = {"arm", "kind", "group", "metric", "baseline", "flagged", "attack",
                        "resolvable", "versus", "beyond_uncertainty", "ci_method", "scenario"}


# ------------------------------------------------------------------ values


def is_missing(value: Any) -> bool:
    """Whether ``value`` is an absent number: ``None``, ``pd.NA`` or a float NaN."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def nullable_bool(value: Any) -> Any:
    """``bool(value)``, or ``pd.NA`` where the flag was never decided (``None``/NA)."""
    return pd.NA if value is None or value is pd.NA else bool(value)


def json_safe(value: Any) -> Any:
    """``value`` with every part JSON can hold as it is.

    Mappings get string keys, tuples and numpy arrays become lists, numpy scalars
    become Python numbers, and missing or non-finite numbers (NaN, +-inf, ``pd.NA``)
    become ``None``: JSON has no infinity, and an infinite statistic is undefined for
    the reader too. :func:`none_to_nan` turns such a ``None`` back into NaN.

    Examples
    --------
    >>> json_safe({"a": (np.float64(0.5), float("nan")), 1: np.array([np.int64(2)])})
    {'a': [0.5, None], '1': [2]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def none_to_nan(value: Any) -> Any:
    """The inverse of :func:`json_safe` for a statistic: ``None`` -> NaN."""
    return float("nan") if value is None else value


# ------------------------------------------------------------------ frames


def normalise_frames(
    by_group: pd.DataFrame, overall: pd.DataFrame, gaps: pd.DataFrame, privacy: pd.DataFrame,
    arm_order: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Give the four frames the canonical columns, dtypes and row order used everywhere.

    Rows are ordered by arm (audit order), seed (aggregate last), metric, group, gap.
    """
    return (
        _ordered(_typed(by_group, ("arm", "kind", *BY_GROUP_COLUMNS)), arm_order),
        _ordered(_typed(overall, ("arm", "kind", *OVERALL_COLUMNS)), arm_order),
        _ordered(_typed(gaps, ("arm", "kind", *GAPS_COLUMNS)), arm_order),
        _ordered(_typed(privacy, ("arm", "kind", "seed", *PRIVACY_FIELDS)), arm_order),
    )


def normalise_mia(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    """Canonical columns, dtypes and order of the membership-inference frame."""
    if df.empty:
        return pd.DataFrame(columns=list(MIA_COLUMNS))
    df = df.reindex(columns=list(MIA_COLUMNS)).reset_index(drop=True)
    for col in ("value", "std", "ci_low", "ci_high"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("seed", "n_members", "n_nonmembers"):
        df[col] = pd.array([None if is_missing(v) else int(v) for v in df[col]], dtype="Int64")
    df["available"] = df["available"].astype(bool)
    for col in ("arm", "kind", "attack", "group", "metric"):
        df[col] = pd.Series([str(v) for v in df[col]], dtype=object)
    df["reason"] = pd.Series(["" if is_missing(v) else str(v) for v in df["reason"]], dtype=object)
    arm_rank = {a: i for i, a in enumerate(arm_order)}
    keys = pd.DataFrame({
        "arm": df["arm"].map(arm_rank), "attack": df["attack"],
        "aggregate": df["seed"].isna(), "seed": df["seed"].fillna(-1).astype("int64"),
        "overall": df["group"] != "overall", "group": df["group"],
        "metric": df["metric"].map(lambda m: _METRIC_ORDER.get(m, 99)),
    })
    return df.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


def normalise_empirical(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    """Canonical columns, dtypes and order of the canary-audit frame."""
    if df.empty:
        return pd.DataFrame(columns=list(EMPIRICAL_COLUMNS))
    df = df.reindex(columns=list(EMPIRICAL_COLUMNS)).reset_index(drop=True)
    # Results written before the white-box audit existed hold black-box rows only.
    df["audit"] = df["audit"].where(df["audit"].notna(), "black_box")
    for col in ("delta", "confidence", "family_confidence", "epsilon_lower_bound", "run_epsilon",
                "mu_lower_bound", "epsilon_lower_bound_gdp"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("seed", "canaries", "included", "k_plus", "k_minus", "guesses", "correct"):
        df[col] = df[col].astype("int64")
    df["dp_violation"] = df["dp_violation"].astype(bool)
    for col in ("arm", "kind", "canary_kind", "audit"):
        df[col] = pd.Series([str(v) for v in df[col]], dtype=object)
    rank = df["arm"].map({a: i for i, a in enumerate(arm_order)})
    audit_rank = df["audit"].map({a: i for i, a in enumerate(EMPIRICAL_AUDITS)}).fillna(99)
    return df.assign(_r=rank, _a=audit_rank).sort_values(["_r", "_a", "seed"], kind="stable") \
        .drop(columns=["_r", "_a"]) \
        .reset_index(drop=True)


def frame_from_records(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    """A mechanism, dp_cost, gap_changes, roc, missing or missing_match frame from its
    records (empty without any)."""
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).reindex(columns=list(columns))
    for col in df.columns:
        if df[col].map(lambda v: v is None).all():
            continue
        if col not in _RECORD_TEXT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df.reset_index(drop=True)


def _ordered(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    arm_rank = {a: i for i, a in enumerate(arm_order)}
    keys = pd.DataFrame({
        "arm": df["arm"].map(arm_rank),
        "aggregate": df["seed"].isna(),
        "seed": df["seed"].fillna(-1).astype("int64"),
    })
    if "metric" in df:
        keys["metric"] = df["metric"].map(lambda m: _METRIC_ORDER.get(m, len(_METRIC_ORDER)))
        keys["metric_name"] = df["metric"]
    for col in ("group", "gap"):
        if col in df:
            keys[col] = df[col]
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def _typed(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    df = df.reindex(columns=list(columns)).reset_index(drop=True)
    for col in df.columns:
        if col in _FLOAT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        elif col in ("seed", "n", "steps"):
            df[col] = pd.array([None if is_missing(v) else int(v) for v in df[col]], dtype="Int64")
        elif col == "exceeds_uncertainty":
            df[col] = pd.array([nullable_bool(v) for v in df[col]], dtype="boolean")
        elif col in _OBJECT_COLUMNS:
            df[col] = pd.Series([None if is_missing(v) else str(v) for v in df[col]], dtype=object)
    return df
