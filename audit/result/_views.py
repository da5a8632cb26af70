"""Text and HTML views of an :class:`audit.AuditResult`: ``summary()`` and the notebook repr."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .._format import EPSILON_DIGITS, format_interval, format_number
from ..fairness._intervals import SMALL_GAP_ROWS, SMALL_RATE_ROWS, simultaneous_levels
from ._bounds import CANARY_AUDITS, largest_bounds, privacy_bounds
from ._missing import missing_findings
from ._schema import is_missing

if TYPE_CHECKING:
    from ._container import AuditResult

__all__ = ["describe_intervals", "level_text", "result_html", "result_summary"]


def level_text(level: float) -> str:
    """A confidence level as a percentage: 0.95 -> '95%', 0.995 -> '99.5%'."""
    return f"{100 * float(level):.4g}%"


# What each interval method is, in a report's words, in the order they are listed.
_METHOD_WORDS = (
    ({"wilson", "wilson-cc"}, "group rates (error, FPR, FNR, selection) by Wilson's score interval",
     "wilson-cc", f"continuity-corrected where the rate's denominator has under {SMALL_RATE_ROWS} rows"),
    ({"newcombe", "newcombe-cc"}, "gaps between groups' rates by Newcombe's hybrid score interval",
     "newcombe-cc", f"continuity-corrected where a group has under {SMALL_GAP_ROWS} rows"),
    ({"mover-wilson", "mover-wilson-cc"}, "ratios of rates by the MOVER-R method from those "
     "Wilson intervals", None, ""),
    ({"bootstrap"}, "ROC AUC and log-loss by a percentile bootstrap over the evaluated rows resampled "
     "within each group", None, ""),
)


def describe_intervals(result: AuditResult) -> str:
    """One sentence naming the interval methods a result used, for reports and summaries.

    Files written before the methods were recorded (schema 1.0) used the percentile
    bootstrap for every interval, and say so.
    """
    level = level_text(result.ci_level)
    used = {str(m) for df in (result.by_group, result.gaps) if "ci_method" in df
            for m in df["ci_method"].dropna().unique()}
    if not used:
        return (f"Intervals ({level}): percentile bootstrap over the evaluated rows, resampled "
                "within each group.")
    parts = []
    for methods, words, corrected, correction in _METHOD_WORDS:
        if used & methods:
            parts.append(words + (f" ({correction})" if corrected in used else ""))
    text = f"Intervals ({level}): " + "; ".join(parts) + "."
    if result.config.get("simultaneous_ci"):
        groups = result.aggregate("by_group")["group"].nunique()
        group_level, gap_level = simultaneous_levels(result.ci_level, groups)
        text += (f" Simultaneous: each metric's {groups} group intervals hold together, and its "
                 f"gaps over all {groups * (groups - 1) // 2} pairs of groups (Bonferroni: "
                 f"{level_text(group_level)} and {level_text(gap_level)} each).")
    return text


def result_summary(result: AuditResult) -> str:
    """Plain-text comparison of the arms: epsilon, accuracy, group errors and the gap."""
    groups = sorted(result.aggregate("by_group")["group"].unique())
    header = ["arm", "epsilon", "accuracy", *[f"error[{g}]" for g in groups],
              f"error gap [{level_text(result.ci_level)} CI]", "", "MIA AUC", "eps lower bound"]
    rows = [_summary_row(result, arm, groups) for arm in result.arm_names]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    if result.dp_violations:
        lines.insert(0, "!!! DP VIOLATION: the empirical epsilon lower bound exceeds the "
                     f"accountant's epsilon for {', '.join(result.dp_violations)}; the DP "
                     "implementation or its accounting is wrong. !!!")
    return "\n".join([*lines, "", *_summary_notes(result)])


def _summary_row(result: AuditResult, arm: str, groups: list[str]) -> list[str]:
    """One arm's cells of the summary table, in header order."""
    by_group = result.aggregate("by_group")
    overall = result.aggregate("overall")
    gaps = result.aggregate("gaps")
    privacy = result.aggregate("privacy")
    eps = privacy.loc[privacy["arm"] == arm, "epsilon"]
    eps_text = _fmt(eps.iloc[0], 2) if len(eps) and not is_missing(eps.iloc[0]) else "none"
    err = overall[(overall["arm"] == arm) & (overall["metric"] == "error_rate")]
    acc = "n/a" if err.empty else _fmt(1 - err["value"].iloc[0], 3)
    cells = []
    for g in groups:
        r = by_group[(by_group["arm"] == arm) & (by_group["group"] == g)
                     & (by_group["metric"] == "error_rate")]
        cells.append("n/a" if r.empty else _fmt(r["value"].iloc[0], 3))
    gap = gaps[(gaps["arm"] == arm) & (gaps["metric"] == "error_rate")
               & (gaps["gap"] == "difference")]
    if gap.empty:
        gap_text, flag = "n/a", ""
    else:
        g0 = gap.iloc[0]
        gap_text = f"{_fmt(g0['value'], 3)} [{_fmt(g0['ci_low'], 3)}, {_fmt(g0['ci_high'], 3)}]"
        exceeds = g0["exceeds_uncertainty"]
        flag = "" if (not is_missing(exceeds) and bool(exceeds)) else "within noise"
    return [arm, eps_text, acc, *cells, gap_text, flag, _mia_text(result, arm),
            _bound_text(result, arm)]


def _summary_notes(result: AuditResult) -> list[str]:
    """The lines under the summary table saying what its numbers are."""
    ds = result.dataset
    merged = ds.get("splits", {}).get("merged_groups", [])
    kinds = set(result.arms["kind"].astype(str)) if not result.arms.empty else set()
    external = bool(kinds) and kinds <= {"external"}
    notes = [
        f"dataset: {ds.get('name')} ({ds.get('rows')} rows; groups "
        + ", ".join(f"{k}: {v}" for k, v in ds.get("groups", {}).items()) + ")"
        + (f"; merged into one group for the audit: {', '.join(merged)}" if merged else ""),
    ]
    if external:
        n = ds.get("evaluated_rows", ds.get("rows"))
        member = (ds.get("inputs") or {}).get("member")
        evaluated = f"the {n} rows the model did not train on" if member else f"all {n} rows"
        notes += [
            f"positive class: {ds.get('positive_label')!r}; errors of the uploaded predictions on "
            f"{evaluated}.",
            "epsilon 'none' = no formal privacy guarantee (a model trained elsewhere has no known "
            "training mechanism).",
        ]
    else:
        seeds = len(result.config.get("seeds", []))
        dropout = bool(kinds & {"uniform_dropout", "group_dropout"})
        notes += [
            f"positive class: {ds.get('positive_label')!r}; errors on the test split, "
            + (f"mean over {seeds} seeds" if seeds != 1 else "one training seed")
            + ".",
            "epsilon 'none' = no formal privacy guarantee"
            + (" (dropout is not differential privacy)." if dropout else "."),
        ]
    notes.append(describe_intervals(result))
    notes.extend(_gap_change_notes(result))
    notes.extend(_adaptive_dp_notes(result))
    findings = missing_findings(result)
    if findings:
        notes.append("Missing features at test time (a missing feature is zero after encoding and "
                     "the row's observed ones are scaled by 1/(1 - p), as dropout does in training):")
        notes += [f"  {line}" for line in findings]
    if not result.mia.empty:
        notes.append("MIA AUC: loss-threshold membership inference, "
                     + ("members vs non-members of the member column" if external else
                        "training rows vs as many test rows") + " (0.5 = no leakage).")
    if not result.empirical.empty:
        notes.append(
            "eps lower bound: the largest over the canary audits below (the one that gave it in "
            f"brackets) and over seeds, {level_text(result.confidence)} confidence for all seeds "
            "together (Bonferroni);")
        notes.append(
            "  a lower bound on leakage, never a guarantee (0 shows nothing); delta "
            f"{float(result.empirical['delta'].iloc[0]):.2g}. What each audit observes:")
        for audit, rows in result.empirical.groupby("audit", sort=False):
            info = CANARY_AUDITS.get(str(audit))
            e = rows.iloc[0]
            observes = info.observes if info is not None else str(audit)
            label = info.label if info is not None else str(audit)
            kind = "" if e["canary_kind"] in ("crafted", "gradient") else f"{e['canary_kind']} "
            notes.append(f"  {label} ({int(e['canaries'])} {kind}canaries, {guess_text(e)}): "
                         f"{observes}.")
    return notes


def _mia_text(result: AuditResult, arm: str) -> str:
    mia = result.mia
    if mia.empty:
        return ""
    sel = mia[(mia["arm"] == arm) & mia["seed"].isna() & (mia["attack"] == "loss")
              & (mia["group"] == "overall") & (mia["metric"] == "auc")]
    return "n/a" if sel.empty else _fmt(sel["value"].iloc[0], 3)


def _bound_text(result: AuditResult, arm: str) -> str:
    if result.empirical.empty:
        return ""
    top = largest_bounds(privacy_bounds(result))
    sel = top[top["arm"] == arm]
    if sel.empty:
        return "n/a"
    row = sel.iloc[0]
    text = _fmt(row["epsilon_lower_bound"], 2)
    if row["epsilon_lower_bound"] > 0:
        info = CANARY_AUDITS.get(str(row["audit"]))
        text += f" ({info.label if info is not None else row['audit']})"
    return text + (" VIOLATION" if row["dp_violation"] else "")


def result_html(result: AuditResult) -> str:
    """The notebook (``_repr_html_``) view: error rate per group and the privacy table."""
    table = result.error_table().round(4)
    privacy = result.aggregate("privacy")[["arm", "kind", "epsilon", "delta", "guarantee"]]
    privacy = privacy.assign(epsilon=privacy["epsilon"].map(
        lambda e: "no guarantee" if is_missing(e) else format_number(e, EPSILON_DIGITS)))
    banner = ""
    if result.dp_violations:
        banner = ("<p style='color:#b00;font-weight:bold'>DP VIOLATION: the empirical "
                  "epsilon lower bound exceeds the accountant's epsilon for "
                  + html.escape(", ".join(result.dp_violations)) + ".</p>")
    return (
        banner
        + f"<h4>fairpriv audit: {html.escape(str(result.dataset.get('name')))}</h4>"
        + ("<p>Error rate per group (the uploaded predictions)</p>"
           if set(result.arms["kind"].astype(str)) == {"external"} else
           "<p>Error rate per group (test split, mean over seeds)</p>")
        + table.to_html()
        + "<p>Privacy</p>"
        + privacy.to_html(index=False)
    )


def _fmt(value: Any, digits: int) -> str:
    return "n/a" if is_missing(value) else format_number(value, digits)


def guess_text(row: Any) -> str:
    """How an audit row guessed: "k 'in' and k 'out' guesses", or "k 'in' guesses"."""
    k_plus, k_minus = int(row["k_plus"]), int(row["k_minus"])
    if k_minus == 0:
        return f"{k_plus} 'in' guesses"
    return f"{k_plus} 'in' and {k_minus} 'out' guesses"


def _adaptive_dp_notes(result: AuditResult) -> list[str]:
    """Each group-adaptive DP arm's error per group against plain DP-SGD's (dp_cost rows
    whose reference is a DP arm)."""
    cost = result.dp_cost
    if cost.empty:
        return []
    kinds = dict(zip(result.arms["arm"], result.arms["kind"], strict=True))
    rows = cost[cost["baseline"].map(lambda b: kinds.get(b) == "dp_sgd")]
    lines = []
    for (arm, base), block in rows.groupby(["arm", "baseline"], sort=False):
        parts = [f"{r['group']} {format_interval(r['cost'], r['ci_low'], r['ci_high'], signed=True)}"
                 for _, r in block.iterrows()]
        lines.append(f"{arm} vs {base}, error per group (paired by seed; "
                     f"{level_text(result.ci_level)} CI): " + "; ".join(parts))
    return lines


def _gap_change_notes(result: AuditResult) -> list[str]:
    """One line per compared pair: the error gap's change and its paired interval."""
    changes = result.gap_changes
    if changes.empty:
        return []
    rows = changes[changes["metric"] == "error_rate"]
    lines = [f"error gap change between arms (paired: same test rows and resamples; "
             f"{level_text(result.ci_level)} CI):"]
    for _, r in rows.iterrows():
        if is_missing(r["ci_low"]):
            reading = "no interval (no bootstrap)"
        elif bool(r["beyond_uncertainty"]):
            reading = "wider, beyond uncertainty" if r["change"] > 0 else "narrower, beyond uncertainty"
        else:
            reading = "within uncertainty"
        lines.append(f"  {r['arm']} vs {r['versus']}: {format_number(r['change'], signed=True)} "
                     f"[{_fmt(r['ci_low'], 3)}, {_fmt(r['ci_high'], 3)}] ({reading})")
    return lines
