"""The report's section on missing features at test time: figures, tables and words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from audit import AuditResult, format_interval, format_number, level_text

from ._common import Block, Figure, Paragraph, Table
from ._figures import _COLORS, _LINES, _MARKERS, _legend_below, _png, _short, figure_style

__all__ = ["MATCH_CAPTION", "MATCH_TEXT", "missing_error_figure", "missing_error_plot",
           "missing_match_figure", "missing_match_plot", "missing_section", "missing_tables"]

#: Panels per row of the error-vs-p_test figure.
_PANELS_PER_ROW = 3


def _group_styles(groups: Sequence[str]) -> dict[str, tuple[str, str, Any]]:
    return {g: (_COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)], _LINES[i % len(_LINES)])
            for i, g in enumerate(groups)}


def missing_error_figure(missing: pd.DataFrame, arms: Sequence[str], *, grid: Sequence[float],
                         ci_level: float = 0.95) -> bytes:
    """:func:`missing_error_plot` as PNG bytes."""
    with figure_style():
        return _png(missing_error_plot(missing, arms, grid=grid, ci_level=ci_level))


def missing_error_plot(missing: pd.DataFrame, arms: Sequence[str], *, grid: Sequence[float],
                       ci_level: float = 0.95) -> MplFigure:
    """One panel per arm: each group's error against the test-time missing rate, with its
    interval as a band; a star marks each group's own rate (the scenario)."""
    groups = sorted(missing["group"].unique())
    styles = _group_styles(groups)
    cols = min(_PANELS_PER_ROW, len(arms))
    rows = -(-len(arms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.8, 2.4 * rows + 0.6), sharex=True,
                             sharey=True, squeeze=False)
    on_grid = np.isin(missing["p_test"].to_numpy(dtype=float), np.asarray(grid, dtype=float))
    for ax, arm in zip(axes.flat, arms, strict=False):
        sel = missing[missing["arm"] == arm]
        for group in groups:
            color, marker, line = styles[group]
            g = sel[(sel["group"] == group) & on_grid[sel.index]].sort_values("p_test")
            ax.plot(g["p_test"], g["value"], color=color, marker=marker, linestyle=line, markersize=4,
                    label=_short(group, 24))
            ax.fill_between(g["p_test"].to_numpy(dtype=float), g["ci_low"].to_numpy(dtype=float),
                            g["ci_high"].to_numpy(dtype=float), color=color, alpha=0.15, linewidth=0)
            own = sel[(sel["group"] == group) & sel["scenario"].astype(bool)]
            ax.plot(own["p_test"], own["value"], linestyle="none", marker="*", markersize=11,
                    markerfacecolor="white", markeredgecolor=color)
        ax.set_title(_short(arm, 30), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(arms):]:
        ax.set_visible(False)
    for col in range(cols):
        # The lowest panel drawn in each column carries the x axis (a short last row
        # leaves the panel above an empty slot to do so).
        drawn = [axes[row, col] for row in range(rows) if axes[row, col].get_visible()]
        drawn[-1].xaxis.set_tick_params(labelbottom=True)
        drawn[-1].set_xlabel("test-time missing rate p_test")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"error rate\nband: {level_text(ci_level)} CI")
    handles = [Line2D([], [], color=styles[g][0], marker=styles[g][1], linestyle=styles[g][2])
               for g in groups]
    labels = [_short(g, 24) for g in groups]
    if missing["scenario"].astype(bool).any():
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=11, markerfacecolor="white",
                              markeredgecolor="black"))
        labels.append("the group's own missing rate")
    fig.tight_layout()
    visible = [ax for ax in axes.flat if ax.get_visible()]
    _legend_below(fig, visible, visible[-1], handles=handles, labels=labels, ncol=4)
    return fig


def missing_match_figure(match: pd.DataFrame, group: str = "overall") -> bytes:
    """:func:`missing_match_plot` as PNG bytes."""
    with figure_style():
        return _png(missing_match_plot(match, group))


def missing_match_plot(match: pd.DataFrame, group: str = "overall") -> MplFigure:
    """Error of each uniform dropout rate p_train against p_test, less the error without
    dropout at the same p_test (differences are small next to the error's rise); a ring
    marks the best p_train at each p_test."""
    sel = match[match["group"] == group].copy()
    plain = sel[sel["p_train"] == 0].set_index("p_test")["value"]
    if not plain.empty:
        sel["value"] = sel["value"] - sel["p_test"].map(plain)
    p_trains = sorted(sel["p_train"].unique())
    cmap = plt.get_cmap("viridis")  # stopped at 0.85: its last yellows are hard to see on white
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for i, p_train in enumerate(p_trains):
        line = sel[sel["p_train"] == p_train].sort_values("p_test")
        ax.plot(line["p_test"], line["value"], marker=_MARKERS[i % len(_MARKERS)], markersize=4,
                color=cmap(0.85 * i / max(1, len(p_trains) - 1)), linestyle=_LINES[i % len(_LINES)],
                label=f"p_train = {p_train:g}")
    best = sel.sort_values("value", kind="stable").drop_duplicates("p_test")
    ax.plot(best["p_test"], best["value"], linestyle="none", marker="o", markersize=10,
            markerfacecolor="none", markeredgecolor="black", label="lowest at this p_test")
    ax.set_xlabel("test-time missing rate p_test")
    rows = "all test rows" if group == "overall" else _short(group, 20)
    ax.set_ylabel(f"error ({rows})\nminus error at p_train = 0" if not plain.empty else f"error ({rows})")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _legend_below(fig, [ax], ax, ncol=4)
    return fig


def missing_section(result: AuditResult, arms: list[str]) -> list[Block]:
    """The section's blocks: what was measured and how, the findings, the figures, tables."""
    setup = result.missing_setup
    level = result.ci_level
    grid = [float(p) for p in setup.get("grid", sorted(result.missing["p_test"].unique()))]
    rates = setup.get("rates") or {}
    rate_text = (", ".join(f"{g} {r:g}" for g, r in rates.items()) if rates
                 else "none given (the grid only)")
    blocks: list[Block] = [
        Paragraph(
            "How each arm's error grows when features are missing at prediction time, group by "
            "group. Dropout on the inputs trains a model to predict from a random subset of its "
            "features, so it should degrade less when features go missing, best when its rate "
            "p_train matches the missing rate p_test; but missingness often differs by group, and "
            "a model can be robust for one group and brittle for another."),
        Paragraph(str(setup.get("treatment", "")), "note"),
        Paragraph(
            f"Measured at p_test = {', '.join(f'{p:g}' for p in grid)} for every group, and at each "
            f"group's own rate ({rate_text}); {setup.get('draws', 'n/a')} masks per test row and rate, "
            f"over {setup.get('features', 'n/a')} features and every seed. Intervals: "
            f"{level_text(level)} score intervals of the error; the change from no missing feature "
            "has a normal interval over the group's test rows (paired per row).", "note"),
    ]
    blocks += [Paragraph(line, "body") for line in result.missing_findings()]
    blocks.append(Figure(
        missing_error_figure(result.missing, arms, grid=grid, ci_level=level),
        "Each group's error as features go missing (every group at the same rate p_test); a star "
        "marks the group's error at its own missing rate."))
    tables, captions = missing_tables(result), missing_captions(result)
    blocks += [_table(tables[key], captions[key]) for key in ("degradation", "scenario") if key in tables]
    blocks += _match_blocks(result, tables, captions)
    return blocks


def missing_tables(result: AuditResult) -> dict[str, pd.DataFrame]:
    """The section's tables as display frames (every cell formatted), keyed ``"degradation"``
    (each arm's fastest and slowest rising group), ``"scenario"`` (each group at its own
    rate) and ``"best_p_train"`` (the best training rate per p_test and group); a table
    that does not apply is left out. The report and the app show the same cells."""
    level = level_text(result.ci_level)
    tables: dict[str, pd.DataFrame] = {}
    degradation = result.missing_degradation()
    if not degradation.empty:
        tables["degradation"] = pd.DataFrame({
            "Arm": degradation["arm"],
            "Fastest rise": [f"{r['fastest']} ({format_number(r['fastest_change'], signed=True)})"
                             for _, r in degradation.iterrows()],
            "Slowest rise": [f"{r['slowest']} ({format_number(r['slowest_change'], signed=True)})"
                             for _, r in degradation.iterrows()],
            f"Difference [{level} CI]": [
                format_interval(r["difference"], r["ci_low"], r["ci_high"], signed=True)
                for _, r in degradation.iterrows()],
            "Beyond uncertainty": ["yes" if b else "no" for b in degradation["beyond_uncertainty"]],
        })
    scenario = result.missing_scenario()
    if not scenario.empty:
        tables["scenario"] = pd.DataFrame({
            "Arm": scenario["arm"], "Group": scenario["group"],
            "Its missing rate": [f"{p:g}" for p in scenario["p_test"]],
            "Error, nothing missing": [format_number(v) for v in scenario["clean"]],
            f"Error at its rate [{level} CI]": [format_interval(r["value"], r["ci_low"], r["ci_high"])
                                                for _, r in scenario.iterrows()],
            "Change [CI]": [format_interval(r["change"], r["change_ci_low"], r["change_ci_high"],
                                            signed=True) for _, r in scenario.iterrows()],
        })
    match = result.missing_match
    if not match.empty:
        groups = ["overall", *(g for g in match["group"].unique() if g != "overall")]
        best = {g: result.best_p_train(g).set_index("p_test")["best_p_train"] for g in groups}
        p_tests = list(best["overall"].index)
        tables["best_p_train"] = pd.DataFrame({
            "p_test": [f"{p:g}" for p in p_tests],
            **{("Best p_train: all rows" if g == "overall" else f"Best p_train: {g}"):
               [f"{best[g].get(p, float('nan')):g}" for p in p_tests] for g in groups},
        })
    return tables


def _table(frame: pd.DataFrame, caption: str) -> Table:
    return Table([str(c) for c in frame.columns], frame.astype(str).to_numpy().tolist(), caption=caption)


def missing_captions(result: AuditResult) -> dict[str, str]:
    """The caption of each of :func:`missing_tables`, by the same keys (the report and
    the app say the same)."""
    captions = {"scenario": "Each group at its own missing rate: the scenario given to the audit.",
                "best_p_train": ("The p_train with the lowest error at each p_test (differences "
                                 "between neighbouring rates can be within noise: see the figure).")}
    degradation = result.missing_degradation()
    if not degradation.empty:
        top = float(degradation["p_test"].iloc[0])
        pairs = int(degradation["pairs"].max())
        simultaneous = (f" With {pairs} pairs of groups, the intervals are Bonferroni-adjusted so "
                        "that they hold for every pair at once (the two groups shown are picked by "
                        "their estimates)." if pairs > 1 else "")
        captions["degradation"] = (f"How much each group's error rises from p_test = 0 to {top:g}."
                                   + simultaneous)
    return captions


def _match_blocks(result: AuditResult, tables: dict[str, pd.DataFrame],
                  captions: dict[str, str]) -> list[Block]:
    if "best_p_train" not in tables:
        return []
    return [
        Paragraph(MATCH_TEXT, "body"),
        Figure(missing_match_figure(result.missing_match), MATCH_CAPTION),
        _table(tables["best_p_train"], captions["best_p_train"]),
    ]


#: What the p_train grid is, and its figure's caption (the report and the app).
MATCH_TEXT = (
    "Which training dropout rate copes best with a given missing rate: extra models were trained "
    "with uniform dropout at each p_train of the grid (every seed) and measured like the arms. "
    "With a missing feature treated as dropout treats a dropped input, a model trained at "
    "p_train = p_test sees inputs missing at the rate it was trained with (exactly its training "
    "inputs for one-column features; dropout drops a one-hot block's columns one at a time, a "
    "missing feature all at once).")
MATCH_CAPTION = (
    "Error on all test rows for each training dropout rate p_train, less the error without "
    "dropout at the same p_test (below 0: dropout helps); a ring marks the lowest at each p_test.")
