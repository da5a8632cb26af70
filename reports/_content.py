"""The report's content model: sections of paragraphs, tables and figures, built once
from an :class:`audit.AuditResult`. Renderers only lay it out; every number is
formatted here, so the PDF and the HTML show the same text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from audit import (
    CANARY_AUDITS,
    GAUSSIAN_DP_NOTE,
    GUARANTEE_ASSUMPTIONS,
    NOT_COVERED,
    AuditResult,
    largest_bounds,
)

from . import _figures
from ._figures import level_text

__all__ = ["Figure", "Paragraph", "Report", "Section", "Table", "build_report", "dropout_tradeoff_caption",
           "fmt", "has_group_errors", "solution_tradeoff_figure"]

SECTION_TITLES = (
    "1. Audit overview",
    "2. Findings",
    "3. Fairness: error by group",
    "4. Group-specific dropout",
    "5. Privacy",
    "6. Trade-offs",
    "7. Why dropout is not differential privacy",
    "8. Assumptions and limits",
    "9. Appendix: configuration and per-seed numbers",
)


@dataclass
class Paragraph:
    text: str
    style: str = "body"  # body | finding | warning | note | code


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    png: bytes
    caption: str


Block = Paragraph | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    violation: str | None
    sections: list[Section]


def fmt(value: Any, digits: int = 3, *, reason: str = "") -> str:
    """A number as shown everywhere in reports; missing values as 'n/a (reason)'."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return f"n/a ({reason})" if reason else "n/a"
    return f"{float(value):.{digits}f}"


def _ci(row: pd.Series, digits: int = 3) -> str:
    if pd.isna(row["ci_low"]):
        return fmt(row["value"], digits)
    return f"{fmt(row['value'], digits)} [{fmt(row['ci_low'], digits)}, {fmt(row['ci_high'], digits)}]"


def epsilon_text(result: AuditResult, arm: str) -> str:
    priv = result.aggregate("privacy")
    sel = priv[priv["arm"] == arm]
    if sel.empty or pd.isna(sel["epsilon"].iloc[0]):
        return "no guarantee"
    return fmt(sel["epsilon"].iloc[0], 2)


def build_report(result: AuditResult) -> Report:
    """Assemble every section of the report from ``result``."""
    arms = result.arm_names
    violation = None
    if result.dp_violations:
        violation = ("DP VIOLATION: the empirical epsilon lower bound exceeds the accountant's "
                     f"epsilon for {', '.join(result.dp_violations)}. The differential-privacy "
                     "implementation or its accounting is wrong; do not rely on its guarantee.")
    sections = [
        _overview(result),
        _findings(result, violation),
        _fairness(result, arms),
        _group_dropout(result),
        _privacy(result, arms),
        _tradeoffs(result, arms),
        _mechanism(result, arms),
        _limits(result),
        _appendix(result),
    ]
    return Report(title=f"fairpriv audit: {result.dataset.get('name', 'dataset')}",
                  violation=violation, sections=sections)


def _overview(result: AuditResult) -> Section:
    ds, meta = result.dataset, result.meta
    groups = ds.get("groups", {})
    rows = [
        ["Dataset", str(ds.get("name"))],
        ["Rows", str(ds.get("rows")) + (f" ({ds['evaluated_rows']} evaluated: rows the model did not "
                                          "train on)" if "evaluated_rows" in ds else "")],
        ["Target (positive class)", f"{ds.get('target')} ({ds.get('positive_label')})"],
        ["Sensitive columns", ", ".join(ds.get("sensitive", []))],
        ["Groups", f"{len(groups)}"],
        ["Arms", ", ".join(result.arm_names)],
        ["Seeds", ", ".join(str(s) for s in result.config.get("seeds", []))],
        ["Date", str(meta.get("created", "n/a"))],
        ["Configuration hash", str(meta.get("config_hash", "n/a"))],
        ["Versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())],
    ]
    group_rows = [[str(g), str(n)] for g, n in groups.items()]
    return Section(SECTION_TITLES[0], [
        Table(["", ""], rows),
        Table(["Group", "Rows"], group_rows, caption="Group sizes in the whole dataset."),
    ])


def _gap_row(result: AuditResult, arm: str) -> pd.Series | None:
    gaps = result.aggregate("gaps")
    sel = gaps[(gaps["arm"] == arm) & (gaps["metric"] == "error_rate") & (gaps["gap"] == "difference")]
    return None if sel.empty else sel.iloc[0]


def _accuracy(result: AuditResult, arm: str) -> float:
    ov = result.aggregate("overall")
    sel = ov[(ov["arm"] == arm) & (ov["metric"] == "error_rate")]
    return math.nan if sel.empty else 1.0 - float(sel["value"].iloc[0])


def _findings(result: AuditResult, violation: str | None) -> Section:
    blocks: list[Block] = []
    if violation:
        blocks.append(Paragraph(violation, "warning"))
    arms = result.arm_names
    gaps = {a: _gap_row(result, a) for a in arms}
    valid = {a: g for a, g in gaps.items() if g is not None and not pd.isna(g["value"])}
    if valid:
        best = min(valid, key=lambda a: float(valid[a]["value"]))
        g = valid[best]
        text = (f"Smallest error gap between groups: {best}, {fmt(g['value'])} "
                f"({level_text(result.ci_level)} CI {fmt(g['ci_low'])} to {fmt(g['ci_high'])}; "
                "highest error in "
                f"{g['max_group']}, lowest in {g['min_group']}).")
        if "baseline" in arms and best != "baseline":
            cost = _accuracy(result, "baseline") - _accuracy(result, best)
            side = "lower" if cost > 0 else "higher"
            text += f" Its accuracy is {fmt(abs(cost))} {side} than the baseline's."
        if pd.isna(g["exceeds_uncertainty"]):
            text += " No confidence interval was computed, so its uncertainty is unknown."
        elif not bool(g["exceeds_uncertainty"]):
            text += " This gap is within its uncertainty: it is not evidence of a difference."
        blocks.append(Paragraph(text, "finding"))
    private = [a for a in arms if epsilon_text(result, a) != "no guarantee"]
    others = [a for a in arms if a not in private]
    kinds = dict(zip(result.arms["arm"], result.arms["kind"], strict=True))
    if private:
        blocks.append(Paragraph(
            "Formal privacy guarantee: " + "; ".join(
                f"{a} (epsilon {epsilon_text(result, a)})" for a in private) + ".", "finding"))
    if others:
        why = []
        if any(kinds.get(a) in ("uniform_dropout", "group_dropout") for a in others):
            why.append("dropout, however strong, is not differential privacy (section 7)")
        if any(kinds.get(a) == "external" for a in others):
            why.append("a model trained elsewhere has no known training mechanism")
        blocks.append(Paragraph(
            f"No formal privacy guarantee: {', '.join(others)}"
            + (f"; {'; '.join(why)}" if why else "") + ".", "finding"))
    mia = result.mia
    if not mia.empty:
        sel = mia[mia["seed"].isna() & (mia["attack"] == "loss") & (mia["metric"] == "auc")
                  & (mia["group"] != "overall") & mia["available"].astype(bool)]
        if not sel.empty:
            top = sel.sort_values("value", kind="stable").iloc[-1]
            above = sel[sel["ci_low"] > 0.5]
            if above.empty:
                blocks.append(Paragraph(
                    "Membership inference: no group's attack AUC is above 0.5 (chance) beyond its "
                    f"uncertainty; the highest is {fmt(top['value'])} for group {top['group']} under "
                    f"{top['arm']}.", "finding"))
            else:
                worst = above.sort_values("value", kind="stable").iloc[-1]
                blocks.append(Paragraph(
                    f"Largest per-group privacy risk: membership-inference AUC {fmt(worst['value'])} "
                    f"(CI {fmt(worst['ci_low'])} to {fmt(worst['ci_high'])}) for group "
                    f"{worst['group']} under {worst['arm']}; 0.5 means the attack does no better "
                    "than chance.", "finding"))
    if not result.empirical.empty:
        largest = largest_bounds(result.privacy_bounds())
        leaking = [f"{r['arm']} ({fmt(r['epsilon_lower_bound'], 2)}, {_audit_label(r['audit'])})"
                   for _, r in largest.iterrows() if r["epsilon_lower_bound"] > 0]
        if leaking:
            blocks.append(Paragraph(
                "Measurable leakage (largest proven epsilon lower bound above 0, "
                f"{level_text(result.confidence)} confidence; the audit that gave it in brackets): "
                + ", ".join(leaking) + ". A lower bound shows leakage; it is never a guarantee.",
                "finding"))
    return Section(SECTION_TITLES[1], blocks)


def _fairness(result: AuditResult, arms: list[str]) -> Section:
    agg = result.aggregate("by_group")
    ci = level_text(result.ci_level)
    evaluated = "the rows evaluated" if "evaluated_rows" in result.dataset else \
        "the test rows, averaged over training seeds,"
    blocks: list[Block] = [Paragraph(
        f"Per-group metrics on {evaluated} with {ci} bootstrap "
        "confidence intervals (test rows resampled within each group). Error = share of "
        "wrong predictions; FPR/FNR = false positive/negative rate; selection = share "
        "predicted positive.")]
    header = ["Arm", "Group", "n", "Error", "FPR", "FNR", "Selection"]
    rows = []
    for arm in arms:
        sel = agg[agg["arm"] == arm]
        for group in sorted(sel["group"].unique()):
            g = sel[sel["group"] == group].set_index("metric")
            cells = []
            for m in ("error_rate", "fpr", "fnr", "selection_rate"):
                r = g.loc[m]
                reason = {"fpr": "no negatives", "fnr": "no positives"}.get(m, "")
                cells.append(_ci(r) if not pd.isna(r["value"]) else fmt(r["value"], reason=reason))
            rows.append([arm, str(group), str(int(g.loc["error_rate", "n"])), *cells])
    blocks.append(Table(header, rows, caption="Error, FPR, FNR and selection rate by arm and group."))
    blocks.append(Figure(_figures.group_error_figure(agg, arms, ci_level=result.ci_level),
                         f"Error rate by group for each arm (markers), with {ci} CIs."))
    gaps = result.aggregate("gaps")
    grows = []
    for arm in arms:
        for metric in ("error_rate", "fpr", "fnr", "equalized_odds", "demographic_parity"):
            sel = gaps[(gaps["arm"] == arm) & (gaps["metric"] == metric) & (gaps["gap"] == "difference")]
            if sel.empty:
                continue
            r = sel.iloc[0]
            within = "" if pd.isna(r["exceeds_uncertainty"]) else (
                "yes" if bool(r["exceeds_uncertainty"]) else "no (within noise)")
            grows.append([arm, metric.replace("_", " "), _ci(r), f"{r['max_group']} / {r['min_group']}",
                          within])
    blocks.append(Table(["Arm", "Gap", f"Difference [{ci} CI]", "Highest / lowest group",
                         "Exceeds uncertainty"], grows,
                        caption="Gaps between groups (max - min); equalized odds = larger of FPR and "
                                "FNR gaps; demographic parity = selection-rate gap."))
    changes = result.gap_changes
    if not changes.empty:
        crows = []
        for _, r in changes.iterrows():
            if pd.isna(r["ci_low"]):
                reading = "no interval"
            elif bool(r["beyond_uncertainty"]):
                reading = "wider" if r["change"] > 0 else "narrower"
            else:
                reading = "within uncertainty"
            crows.append([f"{r['arm']} vs {r['versus']}", str(r["metric"]).replace("_", " "),
                          fmt(r["gap"], 3), fmt(r["versus_gap"], 3),
                          f"{r['change']:+.3f} [{fmt(r['ci_low'], 3)}, {fmt(r['ci_high'], 3)}]", reading])
        blocks.append(Table(
            ["Comparison", "Gap", "Arm's gap", "Versus", f"Change [{ci} CI]", "Reading"], crows,
            caption="Does an arm widen or narrow a gap? Each arm against the baseline, and group "
                    "dropout against uniform dropout: the change in the gap (max - min over groups, "
                    "mean over seeds), with a paired bootstrap interval (the same resampled test "
                    "rows for both arms, so the test rows' luck cancels; training seeds' spread "
                    "is not in it)."))
    return Section(SECTION_TITLES[2], blocks)


def _group_dropout(result: AuditResult) -> Section:
    if not result.solutions:
        return Section(SECTION_TITLES[3], [Paragraph(
            "No group-dropout rates were solved in this audit (no group_dropout arm with "
            "automatic rates).", "note")])
    blocks: list[Block] = []
    for arm, sol in result.solutions.items():
        blocks.append(Paragraph(
            f"{arm}: rates chosen on {_selection_rows(sol)} to {sol['objective']} group error under the "
            f"budget {fmt(sol['budget'], 3)} (expected dropout rate over training rows; check "
            f"{fmt(sol['budget_check'], 6)}). {sol['verdict'][:1].upper() + sol['verdict'][1:]}"))
        rows = []
        for g, rate in sol["rates"].items():
            change = sol["error_change"][g]
            rows.append([str(g), fmt(sol["shares"][g]), fmt(rate), fmt(sol["uniform"]["errors"][g], 4),
                         fmt(sol["solved"]["errors"][g], 4), f"{change:+.4f}",
                         "yes" if g in sol["levelled_down"] else ""])
        blocks.append(Table(["Group", "Share", "Rate", "Uniform", "Solved", "Change",
                             "Levelled down (made worse)"],
                            rows, caption=f"Test {sol['metric']} per group, uniform dropout vs solved "
                                          f"rates; gap {fmt(sol['uniform']['gap'], 4)} -> "
                                          f"{fmt(sol['solved']['gap'], 4)}."))
        if has_group_errors(sol):
            blocks.append(Figure(solution_tradeoff_figure(sol), dropout_tradeoff_caption(sol)))
        elif sol.get("curve") and len(sol["rates"]) == 2:
            # A results.json written before the curve carried each group's error.
            blocks.append(Figure(_figures.gap_curve_figure(sol["curve"], sol["rates"],
                                                           sol["uniform"]["validation"]["gap"],
                                                           sol["budget"]),
                                 "Validation gap along the budget line."))
        elif sol.get("curve"):
            blocks.append(Paragraph(f"{len(sol['curve'])} candidate rate vectors were explored; "
                                    "they are listed in results.json (this file's curve has no "
                                    "per-group errors to plot).", "note"))
    return Section(SECTION_TITLES[3], blocks)


def has_group_errors(solution: dict[str, Any]) -> bool:
    """Whether a solution's curve carries each group's error (``val_error[g]``), which
    :func:`solution_tradeoff_figure` plots; results written before it did not."""
    curve = solution.get("curve") or []
    return bool(curve) and all(f"val_error[{g}]" in curve[0] for g in solution["rates"])


def solution_tradeoff_figure(solution: dict[str, Any]) -> bytes:
    """:func:`~reports.dropout_tradeoff_figure` of one of ``AuditResult.solutions``."""
    return _figures.dropout_tradeoff_figure(solution["curve"], solution["rates"], solution["budget"],
                                            objective=solution.get("objective", "equalize"),
                                            metric=solution.get("metric", "error_rate"))


def _selection_rows(solution: dict[str, Any]) -> str:
    if solution.get("selection") == "cross-fitted":
        return f"out-of-fold rows ({solution.get('folds')}-fold cross-fitting)"
    return "validation rows"


def dropout_tradeoff_caption(solution: dict[str, Any]) -> str:
    """The caption of :func:`solution_tradeoff_figure`: how to read it, levelling up vs
    levelling down, and which rows its errors are on."""
    groups = [str(g) for g in solution["rates"]]
    budget = float(solution["budget"])
    metric = {"mse": "MSE", "error_rate": "error"}.get(str(solution.get("metric")),
                                                          str(solution.get("metric", "error")))
    minimax = solution.get("objective") == "minimax"
    seeds = solution.get("seeds") or []
    cross_fitted = solution.get("selection") == "cross-fitted"
    if cross_fitted:
        rows = (f"out of fold: the training and validation rows in {solution.get('folds')} folds, each "
                "predicted by a model trained on the other folds")
    elif solution.get("route") == "empirical":
        rows = "validation rows, mean over " + (f"{len(seeds)} training seeds" if len(seeds) != 1
                                                else "one training seed")
    else:
        rows = "validation rows"
    selected_on = "cross-fitted" if cross_fitted else "validation"
    if len(groups) == 2:
        axis = (f"Bottom axis: the dropout rate of {groups[0]}; top axis: the rate of {groups[1]} "
                "at the same point (the budget fixes it).")
    else:
        axis = (f"Candidates run from the largest {selected_on} {'worst-group error' if minimax else 'gap'} "
                "(left) to the smallest (right); each tick lists the candidate's rates, uniform's and "
                "the chosen one's in bold.")
    text = (f"Levelling up or levelling down? Every candidate rate vector the solver tried on the "
            f"budget {budget:g}, with each group's {metric} (coloured lines) and the overall {metric} "
            f"(black dashed line). {axis} A smaller gap between groups can come from levelling up "
            "(the worse-off group's error falls) or from levelling down (a better-off group's error "
            "rises towards it, and usually the overall error with it): only levelling up leaves "
            f"anyone better off. Dotted line: uniform dropout (every group at {budget:g}); solid line: the "
            f"chosen rates. Lower panel: the {selected_on} {'worst-group error' if minimax else 'gap'} "
            "the solver minimised"
            + ((", ± 1 sd over folds shaded" if cross_fitted else ", ± 1 sd over seeds shaded")
               if solution.get("route") == "empirical" and len(seeds) > 1 else "")
            + f". All these errors are on the rows the rates were selected on ({rows}), not on test "
            "rows; the table above gives the test errors.")
    applied = solution.get("applied_rates")
    if applied and any(abs(float(applied[g]) - float(solution["rates"][g])) > 1e-9 for g in groups):
        text += (" The arm itself trains with uniform dropout: the chosen rates did not beat it on "
                 "test rows.")
    return text


def _audit_label(audit: str) -> str:
    info = CANARY_AUDITS.get(audit)
    return info.label if info is not None else audit


#: Attacks scored from shadow models.
_SHADOW_ATTACKS = frozenset({"lira", "rmia"})
#: Appended to the membership-inference table's caption when LiRA and RMIA ran.
_SHADOW_ATTACKS_NOTE = (
    " LiRA and RMIA (offline) attack the first seed's model with the same shadow models, "
    "trained with each arm's own mechanism on random halves of the members and non-members; "
    "rows that every shadow trained on are left out. RMIA compares each row's likelihood "
    "ratio with those of validation rows that no model trained on.")


def _privacy(result: AuditResult, arms: list[str]) -> Section:
    priv = result.aggregate("privacy")
    bounds = result.privacy_bounds()
    top = largest_bounds(bounds)
    rows = []
    for arm in arms:
        p = priv[priv["arm"] == arm].iloc[0]
        bound = "n/a"
        if arm in set(top["arm"]):
            t = top[top["arm"] == arm].iloc[0]
            bound = fmt(t["epsilon_lower_bound"], 2)
            if t["epsilon_lower_bound"] > 0:
                bound += f" ({_audit_label(t['audit'])})"
            bound += " VIOLATION" if t["dp_violation"] else ""
        delta_text = f"{float(p['delta']):.3g}" if not pd.isna(p["delta"]) else "-"
        rows.append([arm, epsilon_text(result, arm), delta_text,
                     fmt(p["noise_multiplier"], 3) if not pd.isna(p["noise_multiplier"]) else "-",
                     str(p["accountant"] or "-"), bound])
    blocks: list[Block] = [
        Paragraph("Formal guarantee (accountant) and empirical leakage per arm. Only DP-SGD has an "
                  "epsilon; every other arm has no guarantee."),
        Table(["Arm", "Epsilon", "Delta", "Noise multiplier", "Accountant",
               "Largest proven lower bound (audit)"],
              rows, caption="Epsilon from the accountant after training; lower bound: the largest "
                            "of the one-run canary audits (the audit that gave it in brackets), "
                            f"largest over seeds, {level_text(result.confidence)} confidence. A "
                            "lower bound shows leakage and is never a guarantee."),
    ]
    if not bounds.empty:
        blocks += _claimed_vs_proven(result, bounds, arms)
    mia = result.mia
    if not mia.empty:
        sel = mia[mia["seed"].isna()]
        mrows = []
        for arm in arms:
            for attack in _figures.attack_order(sel.loc[sel["arm"] == arm, "attack"].astype(str).tolist()):
                part = sel[(sel["arm"] == arm) & (sel["attack"] == attack)]
                for group in part["group"].unique():
                    g = part[part["group"] == group].set_index("metric")
                    cells = [_ci(g.loc[m]) if bool(g.loc[m, "available"]) else fmt(
                        None, reason=_short_reason(str(g.loc[m, "reason"])))
                        for m in ("auc", "advantage", "tpr_at_fpr_1pct", "tpr_at_fpr_0.1pct")]
                    mrows.append([arm, _figures.ATTACK_LABELS.get(attack, attack), str(group), *cells])
        blocks.append(Table(["Arm", "Attack", "Group", "AUC", "Advantage", "TPR @ FPR 1%",
                             "TPR @ FPR 0.1%"], mrows,
                            caption="Membership inference: can an attacker tell the rows a model "
                                    "trained on (members) from others? AUC 0.5 = no better than "
                                    "chance; advantage = best true-positive minus false-positive "
                                    "rate; TPR @ FPR = members found while wrongly flagging at most "
                                    "1% (0.1%) of non-members."
                                    + (_SHADOW_ATTACKS_NOTE if _SHADOW_ATTACKS & set(sel["attack"])
                                       else "")))
    if not result.roc.empty:
        blocks.append(Figure(_figures.roc_figure(result.roc, arms), _figures.roc_caption(result.roc)))
    if not result.dp_cost.empty:
        crow = [[r["arm"], str(r["group"]), _ci(pd.Series({"value": r["cost"], "ci_low": r["ci_low"],
                                                            "ci_high": r["ci_high"]})),
                 fmt(r["excess"]), "yes" if r["flagged"] else ""]
                for _, r in result.dp_cost.iterrows()]
        blocks.append(Table(["DP arm", "Group", f"Error cost vs baseline [{level_text(result.ci_level)} CI]",
                             "Excess over overall cost", "Flagged"], crow,
                            caption="DP's per-group cost, paired by seed."))
    return Section(SECTION_TITLES[4], blocks)


def _claimed_vs_proven(result: AuditResult, bounds: pd.DataFrame, arms: list[str]) -> list[Block]:
    """The figure of claimed vs proven epsilon, one verdict per arm and audit, and what
    each audit assumes."""
    labels = {name: info.label for name, info in CANARY_AUDITS.items()}
    blocks: list[Block] = [Paragraph(
        "Claimed vs proven, in plain words: for each arm and canary audit, what the audit proves "
        "about the arm's claim (the figure below shows the same numbers on one axis).")]
    for _, r in bounds.iterrows():
        blocks.append(Paragraph(f"{r['arm']}, {_audit_label(r['audit'])}: {r['verdict']}",
                                "warning" if r["dp_violation"] else "finding"))
    blocks.append(Figure(
        _figures.privacy_bounds_figure(bounds, arms, labels=labels, confidence=result.confidence),
        "Privacy: claimed vs proven. Per arm, the accountant's epsilon (grey bar; 'no guarantee' "
        "where there is none) and what each canary audit proves: its epsilon lower bound (filled "
        "marker) and the Gaussian-DP estimate (hollow marker, an estimate that assumes a Gaussian "
        "trade-off curve). A bound of 0 shows nothing."))
    emp = result.empirical
    first = emp.iloc[0]
    counts = []
    for audit, sel in emp.groupby("audit", sort=False):
        e = sel.iloc[0]
        kind = "" if e["canary_kind"] in ("crafted", "gradient") else f"{e['canary_kind']} "
        guesses = (f"{int(e['k_plus'])} 'in' guesses" if int(e['k_minus']) == 0 else
                   f"{int(e['k_plus'])} 'in' and {int(e['k_minus'])} 'out' guesses")
        if audit in ("white_box_gradient", "white_box_rows"):
            key = "gradient_guess_fractions" if audit == "white_box_gradient" else "row_guess_fractions"
            tries = result.config.get("privacy_audit", {}).get(key) or []
            if len(tries) > 1:
                guesses += (f" (the best of {len(tries)} guess counts fixed in advance, each at its "
                            "Bonferroni share of the confidence)")
        counts.append(f"{_audit_label(str(audit))}: {int(e['canaries'])} {kind}canaries, {guesses}")
    blocks.append(Paragraph(
        "How the one-run audits work (Steinke, Nasr, Jagielski 2023): canaries are each included "
        "in training with probability 1/2, the auditor's guesses are fixed in advance, and from "
        "the number of right guesses follows the largest epsilon still consistent with them: a "
        "lower bound valid for any (epsilon, delta)-DP algorithm, and a claim below it is "
        f"violated. {'; '.join(counts)}; delta {float(first['delta']):.3g}. The bound shown is "
        f"the largest over seeds at {level_text(result.confidence)} confidence for all seeds "
        f"together (each seed at {level_text(first['confidence'])}, Bonferroni).", "note"))
    for audit in dict.fromkeys(emp["audit"]):
        info = CANARY_AUDITS.get(str(audit))
        if info is not None:
            blocks.append(Paragraph(info.assumes, "note"))
    blocks.append(Paragraph(GAUSSIAN_DP_NOTE, "note"))
    return blocks


def _short_reason(reason: str) -> str:
    if "non-members" in reason and "needs" in reason:
        return "too few non-members"
    return reason.split(";")[0]


def tradeoff_points(result: AuditResult) -> pd.DataFrame:
    rows = []
    for arm in result.arm_names:
        g = _gap_row(result, arm)
        if g is None:
            continue
        rows.append({"arm": arm, "accuracy": _accuracy(result, arm), "gap": float(g["value"]),
                     "gap_low": float(g["ci_low"]) if not pd.isna(g["ci_low"]) else float(g["value"]),
                     "gap_high": float(g["ci_high"]) if not pd.isna(g["ci_high"]) else float(g["value"]),
                     "epsilon": epsilon_text(result, arm).replace("no guarantee", "none")})
    return pd.DataFrame(rows)


def _tradeoffs(result: AuditResult, arms: list[str]) -> Section:
    points = tradeoff_points(result)
    rows = [[r["arm"], fmt(r["accuracy"]), fmt(r["gap"]), r["epsilon"]] for _, r in points.iterrows()]
    return Section(SECTION_TITLES[5], [
        Figure(_figures.tradeoff_figure(points, arms, ci_level=result.ci_level),
               "Accuracy vs error gap between groups (bars: the gap's "
               f"{level_text(result.ci_level)} CI); each arm's epsilon in the legend (no guarantee = "
               "no formal privacy guarantee). Up and to the left is worse on both."),
        Table(["Arm", "Accuracy", "Error gap", "Epsilon"], rows),
    ])


def _mechanism(result: AuditResult, arms: list[str]) -> Section:
    blocks: list[Block] = [Paragraph(
        "Dropout multiplies activations by random masks, so the noise it adds to a row's "
        "gradient is proportional to that gradient: a row with a small gradient gets almost no "
        "noise, and nothing bounds how much one row can move the model. Differential privacy "
        "needs the opposite: each row's gradient clipped to a fixed norm C, and noise of a "
        "fixed size (sigma x C) that does not depend on the data. The figure measures this on "
        "your own model: each point is a training row, its gradient noise under many dropout "
        "masks against its gradient norm.")]
    if result.mechanism.empty:
        blocks.append(Paragraph("No dropout arm in this audit: no curve to show.", "note"))
    else:
        blocks.append(Figure(_figures.mechanism_figure(result.mechanism, result.mechanism_reference, arms),
                             "Dropout noise grows with the gradient; DP-SGD's noise level is fixed."))
    return Section(SECTION_TITLES[6], blocks)


def _limits(result: AuditResult) -> Section:
    blocks: list[Block] = [
        Paragraph("What the DP guarantee assumes: " + GUARANTEE_ASSUMPTIONS),
        Paragraph(NOT_COVERED),
        Paragraph("Empirical lower bounds and membership-inference results measure particular "
                  "attacks: a small value is not a proof of privacy."),
    ]
    gaps = result.aggregate("gaps")
    within = gaps[(gaps["gap"] == "difference") & (gaps["exceeds_uncertainty"] == False)]  # noqa: E712
    if not within.empty:
        items = sorted({f"{r['arm']}: {r['metric'].replace('_', ' ')}" for _, r in within.iterrows()})
        blocks.append(Paragraph("Gaps smaller than their uncertainty (not findings): " + "; ".join(items)
                                + ".", "note"))
    merged = result.dataset.get("splits", {}).get("merged_groups", [])
    if merged:
        blocks.append(Paragraph(f"Groups too small to audit were merged: {', '.join(merged)}.", "note"))
    return Section(SECTION_TITLES[7], blocks)


def _wrapped_json(data: Any, width: int = 120) -> str:
    """Compact JSON, one top-level key per line, wrapped to ``width`` characters."""
    import textwrap

    lines = []
    for key in sorted(data):
        text = f"{key}: {json.dumps(data[key], sort_keys=True, default=str, ensure_ascii=False)}"
        lines.extend(textwrap.wrap(text, width, subsequent_indent="    ") or [text])
    return "\n".join(lines)


def _appendix(result: AuditResult) -> Section:
    by_group = result.by_group
    per_seed = by_group[by_group["seed"].notna() & (by_group["metric"] == "error_rate")]
    rows = [[r["arm"], str(int(r["seed"])), str(r["group"]), fmt(r["value"], 4)]
            for _, r in per_seed.iterrows()]
    return Section(SECTION_TITLES[8], [
        Table(["Arm", "Seed", "Group", "Error"], rows, caption="Per-seed test error by group."),
        Paragraph(_wrapped_json(result.config), "code"),
    ])
