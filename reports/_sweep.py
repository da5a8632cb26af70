"""A sweep's report: the privacy-fairness frontier, with the same renderers as an audit's.

Three figures: the error gap against epsilon (DP-SGD) and against the dropout budget
(the dropout arms), each with the baseline's gap as a reference band; each group's error
against epsilon (DP's disparate cost as the guarantee tightens); accuracy against gap for
every point, the frontier joined. A table lists every point with its intervals, its
accountant epsilon and its empirical lower bound.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from audit import NOT_COVERED, SweepResult, format_interval, format_number, level_text

from ._common import Figure, Paragraph, Report, Section, Table
from ._figures import _legend_below, _plain_ticks, _png, arm_styles, figure_style, finish_tradeoff
from ._html import write_html
from ._pdf import write_pdf

__all__ = ["build_sweep_report", "render_sweep_html", "render_sweep_pdf", "sweep_frontier_figure",
           "sweep_gap_figure", "sweep_group_error_figure"]

_POINT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_KIND_LABELS = {"baseline": "baseline", "uniform_dropout": "uniform dropout",
                "group_dropout": "group dropout", "dp_sgd": "DP-SGD"}


def _level(sweep: SweepResult) -> float:
    return float(sweep.config.get("audit", {}).get("ci_level", 0.95))


def _bars(rows: pd.DataFrame) -> np.ndarray:
    low = (rows["value"] - rows["ci_low"]).clip(lower=0).fillna(0)
    high = (rows["ci_high"] - rows["value"]).clip(lower=0).fillna(0)
    return np.vstack([low.to_numpy(), high.to_numpy()])


def _baseline_band(ax: object, rows: pd.DataFrame, label: str) -> None:
    if rows.empty:
        return
    row = rows.iloc[0]
    ax.axhline(row["value"], color="#555555", linestyle=":", label=label)  # type: ignore[attr-defined]
    if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
        ax.axhspan(row["ci_low"], row["ci_high"], color="#555555", alpha=0.12)  # type: ignore[attr-defined]


def sweep_gap_plot(sweep: SweepResult, metric: str = "error_rate") -> MplFigure:
    """Gap of ``metric`` vs epsilon (DP-SGD, log axis) and vs budget (dropout arms)."""
    gaps = sweep.metric(metric, "gap")
    dp = gaps[gaps["kind"] == "dp_sgd"]
    dropout = gaps[gaps["kind"].isin(["uniform_dropout", "group_dropout"])]
    base = gaps[gaps["kind"] == "baseline"]
    panels = [p for p, rows in (("epsilon", dp), ("budget", dropout)) if not rows.empty]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6.4 if len(panels) > 1 else 5.2, 3.4),
                             squeeze=False, sharey=True)
    styles = arm_styles(list(_KIND_LABELS.values()))
    for ax, panel in zip(axes[0], panels or ["epsilon"], strict=False):
        rows = dp if panel == "epsilon" else dropout
        for kind, part in rows.groupby("kind", sort=False):
            part = part.sort_values(panel)
            st = styles[_KIND_LABELS[str(kind)]]
            ax.errorbar(part[panel], part["value"], yerr=_bars(part), marker=st.marker, color=st.color,
                        linestyle=st.line, capsize=3, label=_KIND_LABELS[str(kind)])
        _baseline_band(ax, base, "baseline (band: its CI)")
        if panel == "epsilon":
            ax.set_xscale("log")
            ax.set_xticks(sorted(rows["epsilon"].unique()))
            ax.set_xticklabels([f"{v:g}" for v in sorted(rows["epsilon"].unique())])
            ax.minorticks_off()
            ax.set_xlabel("target epsilon (log scale)")
        else:
            ax.set_xticks(sorted(rows["budget"].unique()))
            ax.set_xlabel("dropout budget (expected rate)")
            _plain_ticks(ax.xaxis)
        _plain_ticks(ax.yaxis)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric.replace('_', ' ')} gap (max − min)\nbars: {level_text(_level(sweep))} CI")
    fig.tight_layout()
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    _legend_below(fig, list(axes[0]), axes[0][0], handles=handles, labels=labels, ncol=3)
    return fig


def sweep_gap_figure(sweep: SweepResult, metric: str = "error_rate") -> bytes:
    """:func:`sweep_gap_plot` as PNG bytes."""
    with figure_style():
        return _png(sweep_gap_plot(sweep, metric))


def sweep_group_error_plot(sweep: SweepResult, metric: str = "error_rate") -> MplFigure:
    """Each group's ``metric`` vs epsilon under DP-SGD; the baseline's as dotted lines."""
    rows = sweep.metric(metric, "group")
    dp = rows[rows["kind"] == "dp_sgd"]
    base = rows[rows["kind"] == "baseline"]
    groups = list(dict.fromkeys(rows["group"]))
    styles = arm_styles(groups)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for group in groups:
        st = styles[group]
        part = dp[dp["group"] == group].sort_values("epsilon")
        if not part.empty:
            ax.errorbar(part["epsilon"], part["value"], yerr=_bars(part), marker=st.marker, color=st.color,
                        linestyle=st.line, capsize=3, label=f"{group} (DP-SGD)")
        ref = base[base["group"] == group]
        if not ref.empty:
            ax.axhline(ref["value"].iloc[0], color=st.color, linestyle=":", alpha=0.8,
                       label=f"{group} (baseline)")
    eps = sorted(dp["epsilon"].unique())
    if eps:
        ax.set_xscale("log")
        ax.set_xticks(eps)
        ax.set_xticklabels([f"{v:g}" for v in eps])
        ax.minorticks_off()
    ax.set_xlabel("target epsilon (log scale)")
    ax.set_ylabel(f"{metric.replace('_', ' ')} by group\nbars: {level_text(_level(sweep))} CI")
    _plain_ticks(ax.yaxis)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _legend_below(fig, [ax], ax, ncol=2)
    return fig


def sweep_group_error_figure(sweep: SweepResult, metric: str = "error_rate") -> bytes:
    """:func:`sweep_group_error_plot` as PNG bytes."""
    with figure_style():
        return _png(sweep_group_error_plot(sweep, metric))


def sweep_frontier_plot(sweep: SweepResult) -> MplFigure:
    """Accuracy (x) vs error gap (y) for every point; the frontier (no point is both more
    accurate and fairer) joined by a line."""
    table = sweep.frontier()
    kinds = arm_styles(list(_KIND_LABELS.values()))  # each arm kind's colour, as in the other figures
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    seen: dict[str, int] = {}
    for _, r in table.iterrows():
        kind = _KIND_LABELS[str(r["kind"])]
        nth = seen[kind] = seen.get(kind, -1) + 1  # the kind's points differ by marker
        ax.errorbar(r["accuracy"], r["gap"], yerr=[[max(r["gap"] - r["gap_low"], 0)],
                                                   [max(r["gap_high"] - r["gap"], 0)]],
                    fmt=_POINT_MARKERS[nth % len(_POINT_MARKERS)], color=kinds[kind].color, capsize=2,
                    markersize=7, alpha=0.85, label=_point_label(r),
                    zorder=4 if r["kind"] == "baseline" else 3)  # the reference stays visible
    front = table[table["on_frontier"]].sort_values("accuracy")
    ax.plot(front["accuracy"], front["gap"], color="#333333", linewidth=1, alpha=0.6, label="frontier")
    return finish_tradeoff(fig, ax, "accuracy on the test rows", _level(sweep), ncol=3, margin=0.1)


def sweep_frontier_figure(sweep: SweepResult) -> bytes:
    """:func:`sweep_frontier_plot` as PNG bytes."""
    with figure_style():
        return _png(sweep_frontier_plot(sweep))


def _point_label(row: pd.Series) -> str:
    kind = _KIND_LABELS[str(row["kind"])]
    if pd.notna(row["epsilon"]):
        return f"{kind} ε = {row['epsilon']:g}"
    if pd.notna(row["budget"]):
        return f"{kind} p = {row['budget']:g}"
    return kind


# --------------------------------------------------------------------------- content


def build_sweep_report(sweep: SweepResult) -> Report:
    """Every section of a sweep's report (rendered by the audit report's renderers)."""
    name = str(sweep.dataset.get("name") or "dataset")
    sections = [Section("Overview", _overview(sweep), key="overview"),
                Section("The frontier", _frontier(sweep), key="frontier"),
                Section("Fairness as the knobs turn", _curves(sweep), key="curves"),
                Section("What this does not cover", _limits(sweep), key="limits")]
    return Report(title=f"fairpriv sweep: {name}", violation=_violation(sweep), sections=sections)


def _overview(sweep: SweepResult) -> list[Paragraph | Table | Figure]:
    cfg, audit = sweep.config, sweep.config.get("audit", {})
    seeds = audit.get("seeds")
    n_seeds = len(seeds) if isinstance(seeds, list) else seeds
    groups = ", ".join(str(g) for g in (sweep.dataset.get("groups") or {}))
    text = (f"{len(sweep.points)} audits of '{sweep.dataset.get('name')}' ({sweep.dataset.get('rows')} rows; "
            f"groups: {groups}) on the same splits and {n_seeds} seed(s) each: ")
    parts = []
    for kind in cfg.get("arms", []):
        if kind == "dp_sgd":
            parts.append("DP-SGD at epsilon " + ", ".join(format_number(e, 2) for e in cfg["epsilons"]))
        elif kind in ("uniform_dropout", "group_dropout"):
            budgets = ", ".join(format_number(b, 2) for b in cfg["budgets"])
            parts.append(f"{_KIND_LABELS[kind]} at budget {budgets}")
        else:
            parts.append(_KIND_LABELS.get(kind, kind))
    meta = sweep.meta
    ran = (f" Computed with the '{meta.get('backend')}' backend in {meta.get('elapsed_s', 0):.0f} s"
           + (f"; {len(meta['points_reused'])} point(s) read back from an earlier, interrupted run."
              if meta.get("points_reused") else ".") if meta else "")
    return [Paragraph(text + "; ".join(parts) + "." + ran),
            Paragraph("Each arm is audited once per value of its own knob only (baseline once, the dropout "
                      "arms once per budget, DP-SGD once per epsilon): at a point an arm has no knob for, "
                      "the same seeds would train the same model again.", "note")]


def _frontier(sweep: SweepResult) -> list[Paragraph | Table | Figure]:
    table = sweep.frontier()
    rows = []
    for _, r in table.iterrows():
        eps = format_number(r["accountant_epsilon"], 2, missing="no guarantee")
        bound = format_number(r["epsilon_lower_bound"], 2)
        accuracy = format_interval(r["accuracy"], r["accuracy_low"], r["accuracy_high"], 3)
        gap = format_interval(r["gap"], r["gap_low"], r["gap_high"], 3)
        rows.append([_point_label(r), accuracy, gap, eps, bound, "yes" if r["on_frontier"] else ""])
    level = level_text(_level(sweep))
    best = table[table["on_frontier"]]
    words = ", ".join(_point_label(r) for _, r in best.iterrows())
    return [Table(["point", f"accuracy [{level} CI]", f"error gap [{level} CI]", "accountant ε",
                   "ε lower bound", "frontier"], rows,
                  "Accountant ε: the formal guarantee (DP-SGD only; 'no guarantee' elsewhere). ε lower "
                  "bound: what the canary audit proved about the training run, at the audit's confidence."),
            Paragraph(f"On the frontier (no other point is both more accurate and has a smaller error gap): "
                      f"{words}. Points off it are dominated on these two measures; their intervals "
                      "overlap often, so read the frontier as a shortlist, not a ranking."),
            Figure(sweep_frontier_figure(sweep), "Accuracy against error gap for every point; the "
                   "frontier is joined by a line. Bars: each gap's interval.")]


def _curves(sweep: SweepResult) -> list[Paragraph | Table | Figure]:
    kinds = set(sweep.frame["kind"])
    panels = []
    if "dp_sgd" in kinds:
        panels.append("DP-SGD's epsilon (log scale)")
    if kinds & {"uniform_dropout", "group_dropout"}:
        panels.append("the dropout budget")
    where = " (left) and against ".join(panels) + (" (right)" if len(panels) > 1 else "")
    band = "; the dotted line and band are the baseline's gap and its interval" if "baseline" in kinds else ""
    blocks: list[Paragraph | Table | Figure] = [
        Figure(sweep_gap_figure(sweep), f"The error gap against {where}{band}.")]
    groups = sweep.metric("error_rate", "group")
    if (groups["kind"] == "dp_sgd").any():
        blocks.append(Figure(sweep_group_error_figure(sweep), "Each group's error rate under DP-SGD as "
                             "epsilon grows (solid), and under the baseline (dotted): DP's cost to a group "
                             "is the distance between its two lines."))
        blocks.append(Paragraph(_dp_cost_sentence(groups)))
    return blocks


def _dp_cost_sentence(groups: pd.DataFrame) -> str:
    dp = groups[groups["kind"] == "dp_sgd"]
    base = groups[groups["kind"] == "baseline"].set_index("group")["value"]
    smallest = dp[dp["epsilon"] == dp["epsilon"].min()].set_index("group")
    if base.empty or smallest.empty:
        return "Without a baseline point, DP-SGD's cost per group is not shown."
    costs = []
    for group, row in smallest.iterrows():
        if group in base.index:
            costs.append(f"{group} {format_number(row['value'] - base[group], 3, signed=True)}")
    eps = format_number(float(dp['epsilon'].min()), 2)
    return (f"At the smallest epsilon ({eps}), DP-SGD changes each group's error rate against the baseline "
            f"by: {'; '.join(costs)} (point estimates; each rate's interval is in sweep.json).")


def _limits(sweep: SweepResult) -> list[Paragraph | Table | Figure]:
    return [Paragraph("Every interval holds for its own point; the intervals of different points are not "
                      "simultaneous, and picking the best of many points favours the lucky ones."),
            Paragraph("Only DP-SGD points carry a formal guarantee, for add/remove-one neighbours and "
                      "Poisson sampling. The dropout arms have no guarantee at any budget: dropout's noise "
                      "is multiplicative and unbounded."),
            Paragraph(NOT_COVERED, "note"),
            Paragraph("Each point is a full audit: a sweep written to a folder (fairpriv sweep --out, or "
                      "run_sweep(out=...)) keeps each one in points/ as a results.json of its own, which "
                      "fairpriv report renders with every table and figure of a single audit.")]


def _violation(sweep: SweepResult) -> str | None:
    table = sweep.frontier()
    bad = table[(table["epsilon_lower_bound"] > table["accountant_epsilon"])]
    if bad.empty:
        return None
    names = ", ".join(_point_label(r) for _, r in bad.iterrows())
    return (f"DP VIOLATION at {names}: the empirical lower bound exceeds the accountant's epsilon; the "
            "DP implementation or its accounting is wrong.")


def render_sweep_pdf(sweep: SweepResult, path: str | Path) -> int:
    """Write the sweep's PDF report; returns the number of pages."""
    return write_pdf(build_sweep_report(sweep), path)


def render_sweep_html(sweep: SweepResult, path: str | Path) -> None:
    """Write the sweep's self-contained HTML report."""
    write_html(build_sweep_report(sweep), path)

