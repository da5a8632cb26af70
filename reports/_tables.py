"""Readable tables of a result, for the report and for front ends that show a result
piece by piece (the app): every cell is text, formatted as in the report."""

from __future__ import annotations

import pandas as pd

from audit import AuditResult, epsilon_lower_bound, format_interval, largest_bounds

from . import _figures
from ._common import (
    accuracy,
    audit_label,
    ci_cell,
    epsilon_text,
    fmt,
    gap_row,
    level_text,
    within_noise_text,
)

__all__ = ["MIA_METRIC_COLUMNS", "audit_ceilings", "dp_cost_caption", "dp_cost_table", "mia_table",
           "summary_table"]

#: Membership-inference metrics of :func:`mia_table`, with their column names.
MIA_METRIC_COLUMNS = {
    "auc": "AUC",
    "advantage": "Advantage",
    "tpr_at_fpr_1pct": "TPR @ FPR 1%",
    "tpr_at_fpr_0.1pct": "TPR @ FPR 0.1%",
}


def summary_table(result: AuditResult) -> pd.DataFrame:
    """One row per arm, every cell text, formatted as in the report.

    Columns: ``Arm``, ``Accuracy``, ``Error gap [95% CI]`` (max - min over groups, at
    the result's ``ci_level``), ``Gap beyond noise`` (yes / no (within noise) / no
    interval), ``Epsilon (guarantee)`` (the accountant's, or "no guarantee"), and, when
    the audit measured them, ``Proven epsilon lower bound`` (the largest over the canary
    audits, the audit in brackets; "VIOLATION" when it exceeds the claim) and
    ``MIA AUC [CI]`` (loss-threshold attack, all groups, bootstrap interval). A column the audit has
    nothing for is left out, never filled with blanks.
    """
    ci = level_text(result.ci_level)
    top = largest_bounds(result.privacy_bounds()) if not result.empirical.empty else None
    mia = result.mia
    rows = []
    for arm in result.arm_names:
        g = gap_row(result, arm)
        row = {
            "Arm": arm,
            "Accuracy": fmt(accuracy(result, arm)),
            f"Error gap [{ci} CI]": "n/a" if g is None else ci_cell(g),
            "Gap beyond noise": "n/a" if g is None else within_noise_text(g["exceeds_uncertainty"]),
            "Epsilon (guarantee)": epsilon_text(result, arm),
        }
        if top is not None:
            sel = top[top["arm"] == arm]
            if sel.empty:
                row["Proven epsilon lower bound"] = "not audited"
            else:
                t = sel.iloc[0]
                text = fmt(t["epsilon_lower_bound"], 2)
                if t["epsilon_lower_bound"] > 0:
                    text += f" ({audit_label(str(t['audit']))})"
                row["Proven epsilon lower bound"] = text + (" VIOLATION" if t["dp_violation"] else "")
        if not mia.empty:
            sel = mia[(mia["arm"] == arm) & mia["seed"].isna() & (mia["attack"] == "loss")
                      & (mia["group"] == "overall") & (mia["metric"] == "auc")]
            row["MIA AUC [CI]"] = (
                "n/a" if sel.empty or not bool(sel["available"].iloc[0]) else ci_cell(sel.iloc[0]))
        rows.append(row)
    return pd.DataFrame(rows)


def dp_cost_table(result: AuditResult) -> pd.DataFrame:
    """DP's cost per group, every cell text: each DP arm's error per group minus the
    baseline's, and each dp_sgd_f arm's minus dp_sgd's (``Versus``), paired by seed.
    Empty without a DP arm to compare."""
    cost = result.dp_cost
    if cost.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "DP arm": cost["arm"].astype(str), "Versus": cost["baseline"].astype(str),
        "Group": cost["group"].astype(str),
        f"Error change [{level_text(result.ci_level)} CI over seeds]": [
            format_interval(r["cost"], r["ci_low"], r["ci_high"], signed=True)
            + (" (one seed: no interval)" if r["seeds"] < 2 else "") for _, r in cost.iterrows()],
        "Excess over overall change": [fmt(v) for v in cost["excess"]],
        "Flagged": ["yes" if f else "" for f in cost["flagged"]],
    })


def dp_cost_caption(result: AuditResult) -> str:
    """What :func:`dp_cost_table` shows, in one sentence or two."""
    adaptive = "dp_sgd_f" in set(result.arms["kind"].astype(str))
    return ("DP's per-group cost: each DP arm's error per group minus the baseline's"
            + (", and the group-adaptive arm's minus plain DP-SGD's at the same privacy setting "
               "(epsilon, delta, clipping norm; what adaptive clipping changes for each group)"
               if adaptive else "")
            + "; paired by seed. Flagged: a group's change exceeds the overall change beyond its "
              "interval.")


def _short_reason(reason: str) -> str:
    if "non-members" in reason and "needs" in reason:
        return "too few non-members"
    return reason.split(";")[0]


def mia_table(result: AuditResult) -> pd.DataFrame:
    """Membership inference, one row per arm x group (x attack when several ran).

    Columns: ``Arm``, ``Attack`` (loss, then LiRA and RMIA when shadow models ran),
    ``Group`` ("overall" first), then ``AUC``, ``Advantage``, ``TPR @ FPR 1%`` and ``TPR @ FPR 0.1%``, each
    "value [low, high]" with its bootstrap interval where there is one, and "n/a
    (reason)" where the metric could not be measured (e.g. too few non-members to
    resolve an FPR of 0.1%). Aggregated over seeds. Empty (with these columns) when no
    attack ran.
    """
    # The attack intervals are the engine's bootstrap over members and non-members, at
    # its own level (not the result's ci_level): named without one.
    metric_cols = {m: (f"{name} [CI]" if m != "advantage" else name)
                   for m, name in MIA_METRIC_COLUMNS.items()}
    mia = result.mia
    sel = mia[mia["seed"].isna()] if not mia.empty else mia
    attacks = _figures.attack_order(sel["attack"].astype(str).tolist()) if not sel.empty else []
    columns = ["Arm", "Attack", "Group", *metric_cols.values()]
    rows = []
    for arm in result.arm_names:
        for attack in attacks:
            part = sel[(sel["arm"] == arm) & (sel["attack"] == attack)]
            groups = list(dict.fromkeys(part["group"].astype(str)))
            groups = [g for g in groups if g == "overall"] + sorted(g for g in groups if g != "overall")
            for group in groups:
                g = part[part["group"].astype(str) == group].set_index("metric")
                row = {"Arm": arm, "Attack": _figures.ATTACK_LABELS.get(attack, attack), "Group": group}
                for metric, col in metric_cols.items():
                    if metric not in g.index:
                        row[col] = "n/a"
                    elif bool(g.loc[metric, "available"]):
                        row[col] = ci_cell(g.loc[metric])
                    else:
                        row[col] = fmt(None, reason=_short_reason(str(g.loc[metric, "reason"])))
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def audit_ceilings(result: AuditResult) -> dict[tuple[str, str], float]:
    """Per (arm, canary audit), the largest epsilon lower bound the audit could have
    proven: every one of its guesses right (the largest over seeds, each at its own
    confidence). A bound at its ceiling says the arm leaks at least that much, and
    possibly far more; a ceiling below a claim means the audit could not have caught a
    violation of it."""
    out: dict[tuple[str, str], float] = {}
    for _, e in result.empirical.iterrows():
        if int(e["guesses"]) <= 0:
            continue
        ceiling = epsilon_lower_bound(canaries=int(e["canaries"]), guesses=int(e["guesses"]),
                                      correct=int(e["guesses"]), delta=float(e["delta"]),
                                      confidence=float(e["confidence"]))
        key = (str(e["arm"]), str(e["audit"]))
        out[key] = max(out.get(key, 0.0), ceiling)
    return out
