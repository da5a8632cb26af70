"""The report's content model: sections of paragraphs, tables and figures, built once
from an :class:`audit.AuditResult`. Renderers only lay it out; every number is
formatted here, so the PDF and the HTML show the same text.

The sentences and tables that front ends show piece by piece (:func:`summary_table`,
:func:`findings`, :func:`reading_guide`, :func:`mia_table`, :data:`glossary`) come from
the same functions the report is built with.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from audit import (
    CANARY_AUDITS,
    GAUSSIAN_DP_NOTE,
    GUARANTEE_ASSUMPTIONS,
    NOT_COVERED,
    AuditResult,
    decimals_for,
    describe_intervals,
    format_interval,
    format_number,
    largest_bounds,
)

from . import _figures
from ._common import (
    SECTION_NAMES,
    Block,
    Figure,
    Paragraph,
    Report,
    Section,
    Table,
    accuracy,
    audit_label,
    ci_cell,
    epsilon_text,
    evaluated_rows,
    fmt,
    gap_row,
    has_kind,
    is_external,
    level_text,
    private_arms,
    section_titles,
    within_noise_text,
)
from ._missing import missing_section
from ._tables import dp_cost_caption, dp_cost_table, mia_table, summary_table
from ._words import GLOSSARY, finding_paragraphs, glossary_for, reading_guide, violation_text

__all__ = ["Figure", "Paragraph", "Report", "Section", "Table", "build_report", "dropout_tradeoff_caption",
           "epsilon_text", "fmt", "glossary", "has_group_errors", "solution_tradeoff_figure"]

#: The section titles of a full report (every arm kind), in order. A report leaves out
#: the sections that do not apply (:func:`reports._common.section_titles`) and numbers
#: the others in order.
SECTION_TITLES = tuple(f"{i}. {name}" for i, name in enumerate(SECTION_NAMES.values(), 1))

#: Term -> one-line explanation (arms, canaries, flipped labels, LiRA, RMIA, trainer,
#: delta, epsilon, membership inference, seeds, epochs, ...): the report's glossary, and
#: the app's help texts.
glossary: dict[str, str] = GLOSSARY


def _ci(row: pd.Series, digits: int = 3) -> str:
    return ci_cell(row, digits)


def _seeds_text(seeds: Any) -> str:
    """'3 (seeds 0, 1, 2)': how many, then which (a lone '0' read as 'no seeds')."""
    seeds = list(seeds) if isinstance(seeds, (list, tuple)) else list(range(int(seeds)))
    which = ", ".join(str(s) for s in seeds)
    return f"{len(seeds)} (seed{'s' if len(seeds) != 1 else ''} {which})"


def build_report(result: AuditResult) -> Report:
    """Assemble every section of the report that applies to ``result``."""
    arms = result.arm_names
    titles = section_titles(result)
    builders = {
        "overview": lambda: _overview(result),
        "findings": lambda: _findings(result),
        "fairness": lambda: _fairness(result, arms),
        "group_dropout": lambda: _group_dropout(result),
        "privacy": lambda: _privacy(result, arms),
        "tradeoffs": lambda: _tradeoffs(result, arms),
        "missing": lambda: missing_section(result, arms),
        "mechanism": lambda: _mechanism(result, arms),
        "limits": lambda: _limits(result),
        "appendix": lambda: _appendix(result),
    }
    sections = []
    for key, title in titles.items():
        blocks = builders[key]()
        sections.append(Section(title, blocks, key=key))
    name = str(result.dataset.get("name") or "dataset")
    return Report(title=f"fairpriv audit: {name}", violation=violation_text(result), sections=sections)


def _overview(result: AuditResult) -> list[Block]:
    ds, meta = result.dataset, result.meta
    groups = ds.get("groups", {})
    external = is_external(result)
    rows_text = str(ds.get("rows"))
    if "evaluated_rows" in ds:
        member = (ds.get("inputs") or {}).get("member")
        rows_text += (f" ({ds['evaluated_rows']} evaluated: rows the model did not train on)" if member
                      else " (all evaluated)")
    rows = [
        ["Dataset", str(ds.get("name"))],
        ["Rows", rows_text],
        ["Target (positive class)", f"{ds.get('target')} ({ds.get('positive_label')})"],
        ["Sensitive columns", ", ".join(ds.get("sensitive", []))],
        ["Groups", f"{len(groups)}"],
    ]
    if external:
        rows.append(["Model", "the uploaded predictions of a model trained elsewhere (no training here)"])
    else:
        rows += [["Arms", ", ".join(result.arm_names)],
                 ["Seeds", _seeds_text(result.config.get("seeds", []))]]
    rows += [
        ["Date", str(meta.get("created", "n/a"))],
        ["Configuration hash", str(meta.get("config_hash", "n/a"))],
        ["Versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())],
    ]
    group_rows = [[str(g), str(n)] for g, n in groups.items()]
    return [
        Table(["", ""], rows),
        Table(["Group", "Rows"], group_rows, caption="Group sizes in the whole dataset."),
    ]


def _frame_table(frame: pd.DataFrame, caption: str = "") -> Table:
    return Table([str(c) for c in frame.columns], frame.astype(str).to_numpy().tolist(), caption=caption)


def _findings(result: AuditResult) -> list[Block]:
    blocks: list[Block] = list(finding_paragraphs(result))
    table = summary_table(result)
    blocks.append(_frame_table(table, caption=(
        "At a glance: accuracy, the error gap between groups (max - min) and privacy per arm"
        if len(result.arm_names) > 1 else "At a glance: accuracy, the error gap between groups "
        "(max - min) and privacy") + "; the reading guide below says how to read them."))
    blocks.append(Paragraph("How to read these numbers", "body"))
    blocks += [Paragraph(text, "note") for text in reading_guide(result)]
    return blocks


def _fairness(result: AuditResult, arms: list[str]) -> list[Block]:
    agg = result.aggregate("by_group")
    ci = level_text(result.ci_level)
    blocks: list[Block] = [Paragraph(
        f"Per-group metrics on {evaluated_rows(result)}, with {ci} confidence intervals. "
        "Error = share of wrong predictions; FPR/FNR = false positive/negative rate; "
        "selection = share predicted positive."), Paragraph(describe_intervals(result), "note")]
    header = ["Group", "n", "Error", "FPR", "FNR", "Selection"]
    several = len(arms) > 1
    if several:
        header.insert(0, "Arm")
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
            rows.append([*([arm] if several else []), str(group), str(int(g.loc["error_rate", "n"])),
                         *cells])
    blocks.append(Table(header, rows, caption="Error, FPR, FNR and selection rate "
                        + ("by arm and group." if several else "by group.")))
    rows_label = "the uploaded predictions" if is_external(result) else None
    blocks.append(Figure(_figures.group_error_figure(agg, arms, ci_level=result.ci_level,
                                                     rows=rows_label),
                         "Error rate by group" + (" for each arm (markers)" if several else "")
                         + f", with {ci} CIs."))
    gaps = result.aggregate("gaps")
    grows = []
    for arm in arms:
        for metric in ("error_rate", "fpr", "fnr", "equalized_odds", "demographic_parity"):
            sel = gaps[(gaps["arm"] == arm) & (gaps["metric"] == metric) & (gaps["gap"] == "difference")]
            if sel.empty:
                continue
            r = sel.iloc[0]
            within = "" if pd.isna(r["exceeds_uncertainty"]) else within_noise_text(r["exceeds_uncertainty"])
            grows.append([*([arm] if several else []), metric.replace("_", " "), _ci(r),
                          f"{r['max_group']} / {r['min_group']}", within])
    blocks.append(Table([*(["Arm"] if several else []), "Gap", f"Difference [{ci} CI]",
                         "Highest / lowest group", "Exceeds uncertainty"], grows,
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
                          format_interval(r["change"], r["ci_low"], r["ci_high"], signed=True), reading])
        blocks.append(Table(
            ["Comparison", "Gap", "Arm's gap", "Versus", f"Change [{ci} CI]", "Reading"], crows,
            caption="Does an arm widen or narrow a gap? Each arm against the baseline, and group "
                    "dropout against uniform dropout: the change in the gap (max - min over groups, "
                    "mean over seeds), with a paired bootstrap interval (the same resampled test "
                    "rows for both arms, so the test rows' luck cancels; training seeds' spread "
                    "is not in it)."))
    return blocks


def _group_dropout(result: AuditResult) -> list[Block]:
    if not result.solutions:
        return [Paragraph("No group-dropout rates were solved in this audit: the group_dropout arm "
                          "uses fixed rates.", "note")]
    blocks: list[Block] = []
    for arm, sol in result.solutions.items():
        blocks.append(Paragraph(
            f"{arm}: rates chosen on {_selection_rows(sol)} to {sol['objective']} group error under the "
            f"budget {fmt(sol['budget'], 3)} (expected dropout rate over training rows; check "
            f"{fmt(sol['budget_check'], 6)}). {sol['verdict'][:1].upper() + sol['verdict'][1:]}"))
        values = [v for g in sol["rates"] for v in (sol["uniform"]["errors"][g], sol["solved"]["errors"][g],
                                                     sol["error_change"][g])]
        d = decimals_for(*values)
        rows = []
        for g, rate in sol["rates"].items():
            rows.append([str(g), fmt(sol["shares"][g]), fmt(rate), fmt(sol["uniform"]["errors"][g], d),
                         fmt(sol["solved"]["errors"][g], d),
                         format_number(sol["error_change"][g], d, signed=True),
                         "yes" if g in sol["levelled_down"] else ""])
        gd = decimals_for(sol["uniform"]["gap"], sol["solved"]["gap"])
        blocks.append(Table(["Group", "Share", "Rate", "Uniform", "Solved", "Change",
                             "Levelled down (made worse)"],
                            rows, caption=f"Test {sol['metric']} per group, uniform dropout vs solved "
                                          f"rates; gap {fmt(sol['uniform']['gap'], gd)} -> "
                                          f"{fmt(sol['solved']['gap'], gd)}."))
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
    return blocks


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
    return audit_label(audit)


#: Attacks scored from shadow models.
_SHADOW_ATTACKS = frozenset({"lira", "rmia"})
#: Appended to the membership-inference table's caption when LiRA and RMIA ran.
_SHADOW_ATTACKS_NOTE = (
    " LiRA and RMIA (offline) attack the first seed's model with the same shadow models, "
    "trained with each arm's own mechanism on random halves of the members and non-members; "
    "rows that every shadow trained on are left out. RMIA compares each row's likelihood "
    "ratio with those of validation rows that no model trained on.")


def _privacy(result: AuditResult, arms: list[str]) -> list[Block]:
    bounds = result.privacy_bounds()
    blocks: list[Block] = []
    if is_external(result):
        blocks.append(Paragraph(
            "No formal privacy guarantee: the model was trained elsewhere, by a mechanism this audit "
            "cannot see, so no epsilon can be stated, and no canary audit can run without retraining "
            "it. What the audit can measure is membership inference on the uploaded scores."))
    else:
        blocks += _privacy_table(result, arms)
    if not bounds.empty:
        blocks += _claimed_vs_proven(result, bounds, arms)
    table = mia_table(result)
    if not table.empty:
        attacks = set(result.mia["attack"].astype(str))
        members = ("trained on (members) from others" if not is_external(result) else
                   "trained on (members, from the member column) from the others")
        blocks.append(_frame_table(table, caption=(
            f"Membership inference: can an attacker tell the rows a model {members}? AUC 0.5 = no "
            "better than chance; advantage = best true-positive minus false-positive rate; TPR @ "
            "FPR = members found while wrongly flagging at most 1% (0.1%) of non-members; "
            "intervals: bootstrap over members and non-members."
            + (_SHADOW_ATTACKS_NOTE if _SHADOW_ATTACKS & attacks else ""))))
    elif is_external(result):
        blocks.append(Paragraph(
            "Membership inference was not run: it needs the model's scores (y_score) and which rows "
            "it trained on (member).", "note"))
    if not result.roc.empty:
        blocks.append(Figure(_figures.roc_figure(result.roc, arms), _figures.roc_caption(result.roc)))
    cost = dp_cost_table(result)
    if not cost.empty:
        blocks.append(_frame_table(cost, caption=dp_cost_caption(result)))
    if has_kind(result, "dp_sgd_f"):
        blocks += _adaptive_dp(result)
    return blocks


def guarantee_notes(result: AuditResult) -> list[str]:
    """What each DP arm's epsilon covers and assumes, as sentences (empty without a DP
    arm): the DP-SGD guarantee's assumptions, what group-adaptive DP-SGD releases and how
    it is paid for, and what no guarantee covers. The report's privacy section and its
    limits say the same; a results page shows these."""
    guarantee = _dp_guarantee(result)
    if guarantee is None:
        return []
    assumes, not_covered = guarantee
    adaptive = ([block.text for block in _adaptive_dp(result) if isinstance(block, Paragraph)]
                if has_kind(result, "dp_sgd_f") else [])
    return [assumes, *adaptive, not_covered]


def _dp_guarantee(result: AuditResult) -> tuple[str, str] | None:
    """What the DP guarantee assumes and what it does not cover (None without a DP arm)."""
    if not (has_kind(result, "dp_sgd") or private_arms(result)):
        return None
    return "What the DP guarantee assumes: " + GUARANTEE_ASSUMPTIONS, NOT_COVERED


def _adaptive_dp(result: AuditResult) -> list[Block]:
    """What the group-adaptive DP arm does and what its epsilon covers."""
    priv = result.aggregate("privacy")
    rows = priv[priv["kind"] == "dp_sgd_f"]
    blocks: list[Block] = [Paragraph(
        "Group-adaptive DP-SGD (dp_sgd_f; DPSGD-F, Xu, Du and Wu 2021): plain DP-SGD clips every "
        "row's gradient to one bound C, which cuts most from the groups whose gradients are larger "
        "(often the under-represented ones: Bagdasaryan et al. 2019). dp_sgd_f counts, each step and "
        "per group, the sampled rows and those whose gradient exceeds C, releases the counts with "
        "Gaussian noise, and gives each group a bound that grows with its share of clipped rows "
        "(C x (1 + that share over its share of the batch), capped); the noise on the gradient "
        "follows the largest bound. The counts are paid for inside the same epsilon.")]
    for _, r in rows.iterrows():
        blocks.append(Paragraph(
            f"{r['arm']}: effective noise multiplier {fmt(r['noise_multiplier'], 3)} (what the "
            f"accountant composes), of which the gradient gets {fmt(r['gradient_noise_multiplier'], 3)} "
            f"(relative to the step's largest bound) and each count noise of standard deviation "
            f"{fmt(r['statistics_noise_multiplier'], 2)}. {r['guarantee']}", "note"))
    return blocks


def _privacy_table(result: AuditResult, arms: list[str]) -> list[Block]:
    priv = result.aggregate("privacy")
    top = largest_bounds(result.privacy_bounds())
    rows = []
    for arm in arms:
        p = priv[priv["arm"] == arm].iloc[0]
        bound = "n/a"
        if arm in set(top["arm"]):
            t = top[top["arm"] == arm].iloc[0]
            bound = fmt(t["epsilon_lower_bound"], 2)
            if t["epsilon_lower_bound"] > 0:
                bound += f" ({audit_label(t['audit'])})"
            bound += " VIOLATION" if t["dp_violation"] else ""
        delta_text = f"{float(p['delta']):.3g}" if not pd.isna(p["delta"]) else "-"
        rows.append([arm, epsilon_text(result, arm), delta_text,
                     fmt(p["noise_multiplier"], 3) if not pd.isna(p["noise_multiplier"]) else "-",
                     str(p["accountant"] or "-"), bound])
    private = private_arms(result)
    intro = ("Formal guarantee (accountant) and empirical leakage per arm. Only DP-SGD (and its "
             "group-adaptive variant) has an epsilon; every other arm has no guarantee." if private else
             "Empirical leakage per arm. No arm of this audit has a formal guarantee (an epsilon): "
             "only DP-SGD provides one.")
    return [
        Paragraph(intro),
        Table(["Arm", "Epsilon", "Delta", "Noise multiplier", "Accountant",
               "Largest proven lower bound (audit)"],
              rows, caption="Epsilon from the accountant after training; lower bound: the largest "
                            "of the one-run canary audits (the audit that gave it in brackets), "
                            f"largest over seeds, {level_text(result.confidence)} confidence. A "
                            "lower bound shows leakage and is never a guarantee."),
    ]


def _claimed_vs_proven(result: AuditResult, bounds: pd.DataFrame, arms: list[str]) -> list[Block]:
    """The figure of claimed vs proven epsilon, one verdict per arm and audit, and what
    each audit assumes."""
    labels = {name: info.label for name, info in CANARY_AUDITS.items()}
    blocks: list[Block] = [Paragraph(
        "Claimed vs proven, in plain words: for each arm and canary audit, what the audit proves "
        "about the arm's claim (the figure below shows the same numbers on one axis).")]
    for _, r in bounds.iterrows():
        blocks.append(Paragraph(f"{r['arm']}, {audit_label(r['audit'])}: {r['verdict']}",
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
        counts.append(f"{audit_label(str(audit))}: {int(e['canaries'])} {kind}canaries, {guesses}")
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


def tradeoff_points(result: AuditResult) -> pd.DataFrame:
    """Per arm: accuracy, the error gap and its interval, and the epsilon ("none" where
    there is no guarantee): the points of :func:`reports.tradeoff_figure`."""
    rows = []
    for arm in result.arm_names:
        g = gap_row(result, arm)
        if g is None:
            continue
        rows.append({"arm": arm, "accuracy": accuracy(result, arm), "gap": float(g["value"]),
                     "gap_low": float(g["ci_low"]) if not pd.isna(g["ci_low"]) else float(g["value"]),
                     "gap_high": float(g["ci_high"]) if not pd.isna(g["ci_high"]) else float(g["value"]),
                     "epsilon": epsilon_text(result, arm).replace("no guarantee", "none")})
    return pd.DataFrame(rows)


def _tradeoffs(result: AuditResult, arms: list[str]) -> list[Block]:
    points = tradeoff_points(result)
    findings_title = section_titles(result)["findings"]
    return [Figure(_figures.tradeoff_figure(points, arms, ci_level=result.ci_level),
                   "Accuracy vs error gap between groups (bars: the gap's "
                   f"{level_text(result.ci_level)} CI); each arm's epsilon in the legend (no "
                   "guarantee = no formal privacy guarantee). Up and to the left is worse on both. "
                   f"The numbers are in the table of section {findings_title.split('.')[0]}.")]


def _mechanism(result: AuditResult, arms: list[str]) -> list[Block]:
    blocks: list[Block] = [Paragraph(
        "Dropout multiplies activations by random masks, so the noise it adds to a row's "
        "gradient is proportional to that gradient: a row with a small gradient gets almost no "
        "noise, and nothing bounds how much one row can move the model. Differential privacy "
        "needs the opposite: each row's gradient clipped to a fixed norm C, and noise of a "
        "fixed size (sigma x C) that does not depend on the data. The figure measures this on "
        "your own model: each point is a training row, its gradient noise under many dropout "
        "masks against its gradient norm.")]
    if result.mechanism.empty:
        blocks.append(Paragraph("The dropout-noise curve was not measured in this audit "
                                "(mechanism_rows=0).", "note"))
    else:
        blocks.append(Figure(_figures.mechanism_figure(result.mechanism, result.mechanism_reference, arms),
                             "Dropout noise grows with the gradient; DP-SGD's noise level is fixed."))
    return blocks


def _limits(result: AuditResult) -> list[Block]:
    blocks: list[Block] = []
    if is_external(result):
        blocks.append(Paragraph(
            "The audit takes the uploaded predictions as given: it measures them on these rows only, "
            "and cannot check how the model was trained, on which data, or whether these rows "
            "represent the people it will be used on."))
        if not result.mia.empty:
            blocks.append(Paragraph("Membership inference measures one attack (the loss threshold): "
                                    "a small value is not a proof of privacy."))
    else:
        blocks += [Paragraph(text) for text in _dp_guarantee(result) or ()]
        blocks.append(Paragraph("Empirical lower bounds and membership-inference results measure "
                                "particular attacks: a small value is not a proof of privacy."))
    gaps = result.aggregate("gaps")
    within = gaps[(gaps["gap"] == "difference") & (gaps["exceeds_uncertainty"] == False)]  # noqa: E712
    if not within.empty:
        several = len(result.arm_names) > 1
        items = sorted({(f"{r['arm']}: " if several else "") + r["metric"].replace("_", " ")
                        for _, r in within.iterrows()})
        blocks.append(Paragraph("Gaps smaller than their uncertainty (not findings): " + "; ".join(items)
                                + ".", "note"))
    merged = result.dataset.get("splits", {}).get("merged_groups", [])
    if merged:
        blocks.append(Paragraph(f"Groups too small to audit were merged: {', '.join(merged)}.", "note"))
    return blocks


def _wrapped_json(data: Any, width: int = 120) -> str:
    """Compact JSON, one top-level key per line, wrapped to ``width`` characters."""
    import textwrap

    lines = []
    for key in sorted(data):
        text = f"{key}: {json.dumps(data[key], sort_keys=True, default=str, ensure_ascii=False)}"
        lines.extend(textwrap.wrap(text, width, subsequent_indent="    ") or [text])
    return "\n".join(lines)


def _appendix(result: AuditResult) -> list[Block]:
    blocks: list[Block] = [Table(["Term", "Meaning"], [[t, m] for t, m in glossary_for(result).items()],
                                 caption="Glossary.")]
    if not is_external(result):
        by_group = result.by_group
        per_seed = by_group[by_group["seed"].notna() & (by_group["metric"] == "error_rate")]
        rows = [[r["arm"], str(int(r["seed"])), str(r["group"]), fmt(r["value"])]
                for _, r in per_seed.iterrows()]
        blocks.append(Table(["Arm", "Seed", "Group", "Error"], rows, caption="Per-seed test error by group."))
    config = dict(result.config)
    if is_external(result):
        config.pop("seeds", None)  # the engine's placeholder: nothing was trained
    blocks.append(Paragraph(_wrapped_json(config), "code"))
    return blocks
