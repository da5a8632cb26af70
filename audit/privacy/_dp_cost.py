"""DP's per-group cost: each DP arm's per-group error minus the baseline's, paired by
seed, flagged where it exceeds the overall cost beyond its uncertainty
(Bagdasaryan et al. 2019); and each group-adaptive DP arm (``dp_sgd_f``) against each
plain DP-SGD arm at the same privacy setting, so that what adaptive clipping changes for each group
is measured directly (the ``baseline`` column names the arm compared against).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .._stats import sample_std, t_interval
from ..arms._arms import Arm, DPSGDArm
from ..fairness._gap_change import arm_comparison_pairs


def dp_group_cost(by_group: pd.DataFrame, overall: pd.DataFrame, arms: Sequence[Arm],
                  metric: str = "error_rate", confidence: float = 0.95) -> pd.DataFrame:
    """Per-group error of each DP arm minus the baseline's, paired by seed; then of each
    ``dp_sgd_f`` arm minus each ``dp_sgd`` arm's at the same privacy setting
    (:meth:`~audit.DPSGDArm.dp_setting`: same target epsilon, delta, clipping norm,
    accountant and dropout).

    ``excess`` is a group's cost minus the overall cost; ``flagged`` marks groups whose
    excess is positive beyond its t-interval over seeds (needs >= 2 seeds).
    """
    # The gap changes' pairs whose first arm is a DP arm: each against the baseline, and
    # dp_sgd_f against dp_sgd at the same privacy setting (else the budget is mixed in).
    private = {arm.label for arm in arms if isinstance(arm, DPSGDArm)}
    pairs = [(arm, versus) for arm, versus in arm_comparison_pairs(arms) if arm in private]
    if not pairs:
        return pd.DataFrame()
    rows = []

    def seed_values(df: pd.DataFrame, arm: str, **where: str) -> pd.Series:
        sel = df[(df["arm"] == arm) & (df["metric"] == metric) & df["seed"].notna()]
        for col, val in where.items():
            sel = sel[sel[col] == val]
        return sel.set_index("seed")["value"]

    for label, base in pairs:
        overall_cost = seed_values(overall, label) - seed_values(overall, base)
        for group in sorted(by_group["group"].unique()):
            cost = (seed_values(by_group, label, group=group)
                    - seed_values(by_group, base, group=group))
            excess = cost - overall_cost
            c_lo, c_hi = t_interval(cost.to_numpy(), confidence)
            e_lo, e_hi = t_interval(excess.to_numpy(), confidence)
            rows.append({
                "arm": label, "group": group, "metric": metric, "baseline": base,
                "cost": float(cost.mean()), "std": sample_std(cost.to_numpy()),
                "ci_low": c_lo, "ci_high": c_hi, "overall_cost": float(overall_cost.mean()),
                "excess": float(excess.mean()), "excess_ci_low": e_lo, "excess_ci_high": e_hi,
                "flagged": bool(e_lo > 0) if not math.isnan(e_lo) else False,
                "seeds": int(cost.shape[0]),
            })
    return pd.DataFrame(rows)

