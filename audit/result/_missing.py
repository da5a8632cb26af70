"""Views of the missing-feature measurement, the same in every front end.

:func:`missing_degradation` compares how fast each group's error rises as features go
missing (per arm, the change from no missing feature to the largest ``p_test`` of the
grid, and the difference between the groups that rise fastest and slowest);
:func:`missing_scenario` reads each group's error at its own rate;
:func:`best_p_train` says which training dropout rate copes best with each ``p_test``;
:func:`missing_findings` puts them in plain sentences for reports, the app and the CLI.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from .._format import format_interval, format_number

if TYPE_CHECKING:
    from ._container import AuditResult

__all__ = ["DEGRADATION_COLUMNS", "SCENARIO_COLUMNS", "best_p_train", "missing_degradation",
           "missing_findings", "missing_scenario"]

#: Columns of :func:`missing_scenario`.
SCENARIO_COLUMNS = ("arm", "kind", "group", "p_test", "clean", "value", "ci_low", "ci_high", "change",
                    "change_ci_low", "change_ci_high")

#: Columns of :func:`missing_degradation`.
DEGRADATION_COLUMNS = (
    "arm", "kind", "p_test", "fastest", "slowest", "fastest_change", "slowest_change", "difference",
    "ci_low", "ci_high", "pairs", "beyond_uncertainty",
)  # fmt: skip


def missing_degradation(result: AuditResult) -> pd.DataFrame:
    """Per arm, the group whose error rises fastest and slowest from no missing feature to
    the grid's largest ``p_test``, and the difference of their rises.

    The two groups' rises come from disjoint test rows, so the difference's standard
    error is the root of the sum of their squares; ``beyond_uncertainty`` when its
    interval excludes 0. The two groups are picked by their point estimates, so with
    ``k > 2`` groups the interval is Bonferroni-adjusted over the ``k (k - 1) / 2`` pairs
    (each at level ``1 - (1 - ci_level) / pairs``): the chance of calling any pair's
    difference real when none is stays below ``1 - ci_level``. With two groups it is the
    plain interval at the result's level. Empty without the measurement.
    """
    missing = result.missing
    if missing.empty:
        return pd.DataFrame(columns=list(DEGRADATION_COLUMNS))
    top = float(max(result.missing_setup.get("grid") or missing["p_test"]))
    rows = []
    for arm in result.arm_names:
        sel = missing[(missing["arm"] == arm) & np.isclose(missing["p_test"], top)]
        sel = sel.drop_duplicates("group")
        if len(sel) < 2:
            continue
        pairs = len(sel) * (len(sel) - 1) // 2
        z = float(stats.norm.ppf(1 - (1 - result.ci_level) / 2 / pairs))
        ordered = sel.sort_values("change", kind="stable")
        fast, slow = ordered.iloc[-1], ordered.iloc[0]
        diff = float(fast["change"] - slow["change"])
        se = math.hypot(float(fast["change_se"]), float(slow["change_se"]))
        lo, hi = diff - z * se, diff + z * se
        rows.append({"arm": arm, "kind": str(fast["kind"]), "p_test": top, "fastest": str(fast["group"]),
                     "slowest": str(slow["group"]), "fastest_change": float(fast["change"]),
                     "slowest_change": float(slow["change"]), "difference": diff, "ci_low": lo,
                     "ci_high": hi, "pairs": pairs, "beyond_uncertainty": bool(lo > 0)})
    return pd.DataFrame(rows, columns=list(DEGRADATION_COLUMNS))


def missing_scenario(result: AuditResult) -> pd.DataFrame:
    """Each arm's error per group at the group's own missing rate (the scenario rows),
    next to its error without missing features. Empty without per-group rates."""
    missing = result.missing
    if missing.empty or not missing["scenario"].astype(bool).any():
        return pd.DataFrame(columns=list(SCENARIO_COLUMNS))
    scenario = missing[missing["scenario"].astype(bool)]
    clean = missing[missing["p_test"] == 0][["arm", "group", "value"]].drop_duplicates(["arm", "group"])
    out = scenario.merge(clean.rename(columns={"value": "clean"}), on=["arm", "group"], how="left")
    return out[list(SCENARIO_COLUMNS)].reset_index(drop=True)


def best_p_train(result: AuditResult, group: str = "overall") -> pd.DataFrame:
    """For each ``p_test``, the ``p_train`` of the grid with the lowest error for ``group``
    (``"overall"``: all test rows), its error and the error without dropout."""
    match = result.missing_match
    if match.empty:
        return pd.DataFrame(columns=["p_test", "best_p_train", "error", "error_without_dropout"])
    sel = match[match["group"] == group]
    rows = []
    for p_test, block in sel.groupby("p_test", sort=True):
        best = block.sort_values("value", kind="stable").iloc[0]
        plain = block[block["p_train"] == 0]["value"]
        rows.append({"p_test": float(str(p_test)), "best_p_train": float(best["p_train"]),
                     "error": float(best["value"]),
                     "error_without_dropout": float(plain.iloc[0]) if len(plain) else math.nan})
    return pd.DataFrame(rows)


def missing_findings(result: AuditResult) -> list[str]:
    """The measurement's findings as plain sentences (empty without it)."""
    if result.missing.empty:
        return []
    level = result.ci_level
    lines = []
    for _, row in missing_degradation(result).iterrows():
        verdict = ("beyond uncertainty" if row["beyond_uncertainty"] else "within uncertainty")
        lines.append(
            f"{row['arm']}: as features go missing (p_test 0 to {row['p_test']:g}), the error of "
            f"{row['fastest']} rises by {format_number(row['fastest_change'], signed=True)} and that "
            f"of {row['slowest']} by {format_number(row['slowest_change'], signed=True)}; difference "
            f"{format_interval(row['difference'], row['ci_low'], row['ci_high'], level=level, signed=True)}"
            + (f", simultaneous over the {row['pairs']} pairs of groups" if row["pairs"] > 1 else "")
            + f", {verdict}.")
    scenario = missing_scenario(result)
    for arm, block in scenario.groupby("arm", sort=False):
        parts = [f"{r['group']} {format_number(r['value'])} at {r['p_test']:g} (was "
                 f"{format_number(r['clean'])})" for _, r in block.iterrows()]
        lines.append(f"{arm} at the groups' own missing rates: " + "; ".join(parts) + ".")
    best = best_p_train(result)
    if not best.empty:
        pairs = "; ".join(f"p_test {r['p_test']:g}: p_train {r['best_p_train']:g}"
                          for _, r in best.iterrows())
        lines.append("The training dropout rate p_train with the lowest overall error, for each "
                     f"test-time missing rate: {pairs}.")
    return lines
