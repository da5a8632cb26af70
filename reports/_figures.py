"""Report figures (matplotlib, Agg), returned as PNG bytes.

Every arm keeps one colour, marker and line style across all figures, chosen so
that arms stay distinguishable in greyscale (markers and dashes differ, not only hue).
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from audit import decimals_for, format_number, level_text  # noqa: E402

from ._fonts import cjk_font_file  # noqa: E402

__all__ = ["ATTACK_LABELS", "ArmStyle", "arm_styles", "attack_order", "level_text", "privacy_bounds_figure"]

#: Membership-inference attacks in report order, with the names a report shows.
ATTACK_LABELS: dict[str, str] = {"loss": "loss", "lira": "LiRA", "rmia": "RMIA"}

_COLORS = ["#1b4f9c", "#d1495b", "#2e8b57", "#e69f00", "#6a3d9a", "#555555", "#00a6b4", "#a0522d"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_LINES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]


class ArmStyle:
    def __init__(self, color: str, marker: str, line: object) -> None:
        self.color, self.marker, self.line = color, marker, line


def attack_order(attacks: Sequence[str]) -> list[str]:
    """The attacks present, in :data:`ATTACK_LABELS` order, unknown ones after (sorted)."""
    present = set(attacks)
    return [a for a in ATTACK_LABELS if a in present] + sorted(present - set(ATTACK_LABELS))


def arm_styles(arms: Sequence[str]) -> dict[str, ArmStyle]:
    """One fixed style per arm, by position in the audit."""
    return {a: ArmStyle(_COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)], _LINES[i % len(_LINES)])
            for i, a in enumerate(arms)}


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@contextmanager
def figure_style() -> Iterator[None]:
    """The style every report figure is built, drawn and saved in (data-driven labels
    never parsed as maths; a CJK-capable font where one is installed). The ``*_plot``
    functions return a matplotlib Figure that must be drawn inside it: matplotlib creates
    tick labels when it draws, with the settings then in force."""
    with plt.rc_context(_font()):
        yield


def _font() -> Any:
    # Group names are data: never read "$...$" in them as maths. They may be Chinese
    # etc.: use a CJK-capable font when one is installed.
    from matplotlib import font_manager

    params: dict[str, Any] = {"text.parse_math": False}
    names = {f.name for f in font_manager.fontManager.ttflist}
    found = cjk_font_file()
    if found is not None:
        # The font the PDF embeds, so that figures and text match. matplotlib's font list
        # is a cache built once: it lacks fonts installed after it was made.
        if found.family not in names:
            font_manager.fontManager.addfont(found.path)
        params["font.family"] = ["DejaVu Sans", found.family]
        return params
    for cand in ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback"):
        if cand in names:
            params["font.family"] = ["DejaVu Sans", cand]
            break
    return params


def group_error_figure(by_group: pd.DataFrame, arms: Sequence[str], metric: str = "error_rate", *,
                       ci_level: float = 0.95, rows: str | None = None) -> bytes:
    """Dot plot: one row per group, one marker per arm, horizontal CI bars (PNG bytes).

    ``ci_level`` is the level of the intervals in ``by_group`` (``AuditResult.ci_level``),
    named in the axis label; ``rows`` names the rows evaluated there (default: "test
    rows (mean over seeds)"; e.g. "the uploaded predictions").
    """
    with figure_style():
        return _png(group_error_plot(by_group, arms, metric, ci_level=ci_level, rows=rows))


def group_error_plot(by_group: pd.DataFrame, arms: Sequence[str], metric: str = "error_rate", *,
                     ci_level: float = 0.95, rows: str | None = None) -> Figure:
    """The Figure of :func:`group_error_figure` (draw it inside :func:`figure_style`)."""
    styles = arm_styles(arms)
    groups = sorted(by_group["group"].unique())
    height = min(11.0, 1.2 + 0.32 * len(groups) * max(1, len(arms)) ** 0.5)
    fig, ax = plt.subplots(figsize=(7.0, height))
    offsets = np.linspace(-0.3, 0.3, len(arms)) if len(arms) > 1 else [0.0]
    for off, arm in zip(offsets, arms, strict=True):
        sel = by_group[(by_group["arm"] == arm) & (by_group["metric"] == metric)].set_index("group")
        ys = np.arange(len(groups)) + off
        vals = sel["value"].reindex(groups).to_numpy(dtype=float)
        lo = vals - sel["ci_low"].reindex(groups).to_numpy(dtype=float)
        hi = sel["ci_high"].reindex(groups).to_numpy(dtype=float) - vals
        st = styles[arm]
        ax.errorbar(vals, ys, xerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt=st.marker,
                    color=st.color, ecolor=st.color, capsize=2, label=arm, markersize=5,
                    linestyle="none")
    ax.set_yticks(np.arange(len(groups)), [_short(g) for g in groups])
    ax.invert_yaxis()
    where = f"{rows}, " if rows else "test rows (mean over seeds, "
    ax.set_xlabel(f"{metric.replace('_', ' ')} on {where}{level_text(ci_level)} CI"
                  + ("" if rows else ")"))
    ax.grid(axis="x", alpha=0.3)
    if len(arms) > 1:  # one arm needs no legend
        ax.legend(loc="best", fontsize=8)
    return fig


def gap_curve_figure(curve: Sequence[dict[str, object]], rates: dict[str, float], uniform_gap: float,
                     budget: float) -> bytes:
    """Validation gap of every explored rate vector, against the first group's rate (PNG bytes)."""
    with figure_style():
        return _png(gap_curve_plot(curve, rates, uniform_gap, budget))


def gap_curve_plot(curve: Sequence[dict[str, object]], rates: dict[str, float], uniform_gap: float,
                   budget: float) -> Figure:
    """The Figure of :func:`gap_curve_figure`: every line it draws is in its legend."""
    df = pd.DataFrame(curve)
    first = next(iter(rates))
    col = f"rate[{first}]"
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    df = df.sort_values(col)
    ax.plot(df[col], df["val_gap"], "o-", color="#1b4f9c", markersize=3, label="candidates")
    if "val_gap_std" in df and df["val_gap_std"].notna().any():
        ax.fill_between(df[col], df["val_gap"] - df["val_gap_std"], df["val_gap"] + df["val_gap_std"],
                        color="#1b4f9c", alpha=0.15, label="± 1 sd over seeds")
    ax.axvline(budget, color="#555555", linestyle="--", label=f"uniform rate ({budget:g})")
    ax.axvline(rates[first], color="#d1495b", linestyle="-.", label="solved rate")
    ax.axhline(uniform_gap, color="#555555", linestyle=":", linewidth=1,
               label=f"uniform dropout's validation gap ({format_number(uniform_gap)})")
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis)
    ax.set_xlabel(f"dropout rate of group '{_short(first)}' (others set by the budget)")
    ax.set_ylabel("validation gap")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _legend_below(fig, [ax], ax, ncol=2)
    return fig


#: How the trade-off figure draws the two reference candidates (neutral, so that no
#: group's colour is reused).
_UNIFORM_STYLE = {"color": "#555555", "linestyle": ":", "linewidth": 1.6}
_CHOSEN_STYLE = {"color": "black", "linestyle": "-", "linewidth": 1.0, "alpha": 0.7}
_OVERALL_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.8}
_SCORE_COLOR = "#444444"
#: Up to this many groups, a candidate's tick lists its rates one per line.
_STACKED_RATES = 5
#: Rates closer than this count as the same candidate.
_SAME_RATES = 1e-6


def _matching_row(df: pd.DataFrame, cols: list[str], target: Sequence[float]) -> int | None:
    """Position (in ``df``'s order) of the candidate whose rates are ``target``, if any."""
    dist = np.abs(df[cols].to_numpy(dtype=float) - np.asarray(target, dtype=float)).max(axis=1)
    if dist.size == 0 or not np.nanmin(dist) <= _SAME_RATES:
        return None
    return int(np.nanargmin(dist))


def dropout_tradeoff_figure(curve: Sequence[dict[str, object]], rates: dict[str, float], budget: float, *,
                            objective: str = "equalize", metric: str = "error_rate",
                            max_candidates: int = 16) -> bytes:
    """:func:`dropout_tradeoff_plot` as PNG bytes."""
    with figure_style():
        return _png(dropout_tradeoff_plot(curve, rates, budget, objective=objective, metric=metric,
                                          max_candidates=max_candidates))


def dropout_tradeoff_plot(curve: Sequence[dict[str, object]], rates: dict[str, float], budget: float, *,
                          objective: str = "equalize", metric: str = "error_rate",
                          max_candidates: int = 16) -> Figure:
    """Each group's error and the overall error of every candidate rate vector the
    group-dropout solver explored: does a smaller gap come from levelling up (the worse
    group's error falls) or levelling down (the better group's error rises)?

    ``curve``, ``rates`` and ``budget`` are a solution's (``AuditResult.solutions[arm]``),
    and so are ``objective`` and ``metric``. The errors are the curve's: on the rows the
    rates were selected on, never test rows. Upper panel: one line per group
    (``val_error[g]``) and the overall error (black dashed); lower panel: what the
    solver minimised (``val_gap`` for ``"equalize"``, ``val_worst`` for ``"minimax"``),
    with ± 1 sd over fits (seeds or folds) where the curve has it. Uniform dropout (every group at the
    budget) is a dotted vertical line, the chosen rates a solid one.

    Two groups: x is the first group's rate along the budget line (bottom axis), the
    top axis the second group's rate at the same point. More groups: one tick per
    candidate, from the largest objective to the smallest (left to right, the way the
    solver moves), labelled with its rates; at most ``max_candidates`` are shown,
    spread evenly over the objective's range, uniform and the chosen rates always
    among them.
    """
    groups = [str(g) for g in rates]
    df = pd.DataFrame(list(curve))
    rate_cols = [f"rate[{g}]" for g in groups]
    err_cols = [f"val_error[{g}]" for g in groups]
    score = "val_gap" if objective == "equalize" else "val_worst"
    missing = [c for c in [*rate_cols, *err_cols, "val_overall", score] if c not in df]
    if len(groups) < 2 or df.empty or missing:
        raise ValueError("dropout_tradeoff_figure needs two or more groups and a curve with "
                         f"rate[g], val_error[g], val_overall and {score} (missing: {missing})")
    df = df.apply(pd.to_numeric, errors="coerce")
    uniform_rates, chosen_rates = [float(budget)] * len(groups), [float(rates[g]) for g in groups]
    two = len(groups) == 2
    if two:
        shown = df.sort_values(rate_cols[0], kind="stable").reset_index(drop=True)
        x = shown[rate_cols[0]].to_numpy(dtype=float)
    else:
        shown = _shown_candidates(df, rate_cols, score, [uniform_rates, chosen_rates], max_candidates)
        x = np.arange(len(shown), dtype=float)
    uniform = _matching_row(shown, rate_cols, uniform_rates)
    chosen = _matching_row(shown, rate_cols, chosen_rates)
    every = max(1, len(shown) // 25)  # at most ~25 markers per line
    score_label = "gap (max − min)" if score == "val_gap" else "worst group"
    # Wide and low: a report page gives a figure its full width but under half its height.
    fig, (ax, low) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 4.3),
                                  gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08})
    for i, (g, col) in enumerate(zip(groups, err_cols, strict=True)):
        ax.plot(x, shown[col], color=_COLORS[i % len(_COLORS)], marker=_MARKERS[i % len(_MARKERS)],
                linestyle=_LINES[(i // len(_COLORS)) % len(_LINES)], markersize=4, markevery=every,
                linewidth=1.4, label=_short(g, 24))
    ax.plot(x, shown["val_overall"], label="overall", **_OVERALL_STYLE)  # type: ignore[arg-type]
    low.plot(x, shown[score], color=_SCORE_COLOR, marker="d", markersize=3.5, markevery=every,
             linewidth=1.2, label=f"lower panel: {score_label} on the selection rows")
    std = f"{score}_std"
    if std in shown and shown[std].notna().any():
        sd = shown[std].fillna(0.0)
        low.fill_between(x, shown[score] - sd, shown[score] + sd, color=_SCORE_COLOR, alpha=0.15,
                         label="± 1 sd over fits (seeds or folds)")
    chosen_text = "chosen rates" + (" (" + " / ".join(f"{r:.2f}" for r in chosen_rates) + ")"
                                    if len(groups) <= 6 else "")
    for pos, style, label in ((uniform, _UNIFORM_STYLE, f"uniform dropout (every group at {budget:g})"),
                              (chosen, _CHOSEN_STYLE, chosen_text)):
        if pos is not None:
            ax.axvline(x[pos], label=label, **style)  # type: ignore[arg-type]
            low.axvline(x[pos], **style)  # type: ignore[arg-type]
    ax.set_ylabel(f"{'MSE' if metric == 'mse' else metric.replace('_', ' ')} on selection rows")
    low.set_ylabel(score_label)
    for a in (ax, low):
        a.grid(alpha=0.3)
        _plain_ticks(a.yaxis)
    if two:
        low.xaxis.set_major_formatter(_rate_format())
        low.set_xlabel(f"dropout rate of '{_short(groups[0])}'")
        _second_rate_axis(ax, x, shown[rate_cols[1]].to_numpy(dtype=float),
                          f"dropout rate of '{_short(groups[1])}' (set by the budget {budget:g})")
    else:
        _candidate_ticks(low, shown[rate_cols].to_numpy(dtype=float), [uniform, chosen])
        low.set_xlabel(_candidates_label(groups, score, len(shown), len(df)))
    _legend_below(fig, [ax, low], low)
    return fig


def _shown_candidates(df: pd.DataFrame, rate_cols: list[str], score: str, marked: Sequence[Sequence[float]],
                      limit: int) -> pd.DataFrame:
    """The candidates a many-group trade-off figure shows, from the largest ``score`` to
    the smallest: at most ``limit``, those with ``marked`` rates (uniform, chosen) always,
    and never two whose rates print alike (equal to 2 decimals), the marked ones kept."""
    is_marked = np.zeros(len(df), dtype=bool)
    for target in marked:
        i = _matching_row(df, rate_cols, target)
        if i is not None:
            is_marked[i] = True
    label = df[rate_cols].round(2).astype(str).agg("/".join, axis=1)
    df = df.assign(_label=label, _other=~is_marked).sort_values("_other", kind="stable")
    df = df.drop_duplicates("_label").drop(columns=["_label", "_other"])
    df = df.sort_values(score, ascending=False, kind="stable").reset_index(drop=True)
    keep = {i for i in (_matching_row(df, rate_cols, t) for t in marked) if i is not None}
    keep |= _spread(df[score].to_numpy(dtype=float), limit - len(keep), taken=keep)
    return df.iloc[sorted(keep)].reset_index(drop=True)


def _candidates_label(groups: Sequence[str], score: str, shown: int, total: int) -> str:
    """The x label of a many-group trade-off figure: the order, and how to read a tick."""
    names = " / ".join(_short(g, 12) for g in groups) if len(groups) <= 6 else "the legend's groups"
    names += ", top to bottom" if len(groups) <= _STACKED_RATES else ", in that order"
    subset = f" ({shown} of {total}, spread evenly over that range)" if shown < total else ""
    return (f"candidates, from the largest selection-row {'gap' if score == 'val_gap' else 'worst error'} "
            f"to the smallest{subset}\neach tick: the candidate's rates of {names}")


def _legend_below(fig: Any, axes: Sequence[Any], lowest: Any, *, handles: Sequence[Any] | None = None,
                  labels: Sequence[str] | None = None, ncol: int = 3) -> None:
    """One legend of every entry of ``axes`` (or of ``handles`` and ``labels``), below all
    that ``axes`` and ``lowest`` draw (tick labels may be several lines tall): it never
    covers the data."""
    if handles is None or labels is None:
        handles, labels = [], []
        for a in axes:
            h, lab = a.get_legend_handles_labels()
            handles += h
            labels += lab
    fig.draw_without_rendering()
    to_fig = fig.transFigure.inverted()
    bottom = min(a.get_tightbbox().transformed(to_fig).y0 for a in [*axes, lowest])
    fig.legend(list(handles), list(labels), loc="upper center", bbox_to_anchor=(0.5, bottom - 0.01),
               ncol=max(1, min(ncol, len(labels))), fontsize=8, frameon=False)


def _spread(scores: np.ndarray, n: int, taken: Collection[int] = ()) -> set[int]:
    """Up to ``n`` positions not in ``taken`` whose scores are nearest to ``n`` evenly
    spaced values from the largest score to the smallest: a solver's many near-optimal
    candidates do not crowd out the rest of the range."""
    chosen: set[int] = set()
    finite = np.flatnonzero(np.isfinite(scores))
    if n <= 0 or finite.size == 0:
        return chosen
    for target in np.linspace(scores[finite].max(), scores[finite].min(), n):
        free = [i for i in finite if i not in chosen and i not in taken]
        if not free:
            break
        chosen.add(int(min(free, key=lambda i: abs(scores[i] - target))))
    return chosen


def _rate_format() -> Any:
    """Tick labels of a dropout rate: plain text (never mathtext), two decimals, no "-0.00"."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{0.0 if abs(v) < 0.005 else v:.2f}")


def _second_rate_axis(ax: Any, first: np.ndarray, second: np.ndarray, label: str) -> None:
    """A top axis with the second group's rate at each of the bottom axis's ticks.

    Along the budget line the second rate is linear in the first; the line is fitted to
    the curve's own points (no shares needed). Skipped when the curve has one point.
    """
    from matplotlib.ticker import FixedLocator

    if np.ptp(first) <= _SAME_RATES:
        return
    slope, intercept = np.polyfit(first, second, 1)
    if abs(slope) <= 1e-12:
        return
    top = ax.secondary_xaxis("top", functions=(lambda p: intercept + slope * p,
                                               lambda q: (q - intercept) / slope))
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo - 1e-12 <= t <= hi + 1e-12]
    top.xaxis.set_major_locator(FixedLocator([intercept + slope * t for t in ticks]))
    top.xaxis.set_major_formatter(_rate_format())
    top.set_xlabel(label)


def _candidate_ticks(ax: Any, rate_rows: np.ndarray, marked: Sequence[int | None]) -> None:
    """One categorical tick per candidate: its rates, one per line (or on one rotated
    line with more than :data:`_STACKED_RATES` groups); uniform's and the chosen one's in bold."""
    k = rate_rows.shape[1]
    if k <= _STACKED_RATES:
        labels = ["\n".join(f"{r:.2f}" for r in row) for row in rate_rows]
        ax.set_xticks(np.arange(len(rate_rows)), labels, fontsize=7)
    else:
        labels = ["/".join(f"{r:.2f}" for r in row) for row in rate_rows]
        ax.set_xticks(np.arange(len(rate_rows)), labels, fontsize=7, rotation=90)
    ticks = ax.get_xticklabels()
    for i in marked:
        if i is not None:
            ticks[i].set_fontweight("bold")


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, which: str = "major") -> Figure:
    """Axis labels, a light grid and the legend every line figure shares."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which=which)
    ax.legend(fontsize=8)
    return fig


def roc_figure(roc: pd.DataFrame, arms: Sequence[str]) -> bytes:
    """:func:`roc_plot` as PNG bytes; :func:`roc_caption` says how to read it."""
    with figure_style():
        return _png(roc_plot(roc, arms))


#: The log axes of the ROC figure never reach below this (a million non-members).
_LOG_FLOOR_MIN = 1e-6
#: A curve whose first positive TPR is at this FPR or above is named in the caption: the
#: attack found no member in the low-FPR range that matters.
_LATE_START = 0.01
#: Above this many decades, the ROC figure labels every other one.
_LABELLED_DECADES = 5


def roc_points(roc: pd.DataFrame) -> pd.DataFrame:
    """The ROC points a log-log figure can draw: those the non-member count resolves
    (``resolvable``) with a false and a true positive rate above 0. A TPR of 0 (no
    member found at that FPR) has no place on a log axis: drawn at the axis floor it
    would read as a vertical drop, so each curve starts at its first positive TPR."""
    keep = roc["resolvable"].astype(bool) & (roc["fpr"] > 0) & (roc["tpr"] > 0)
    return roc[keep]


def _log_floor(points: pd.DataFrame) -> float:
    """The decade at or below every drawn FPR and TPR (at least 1e-6, at most 0.01)."""
    values = pd.concat([points["fpr"], points["tpr"]]).to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return 1e-4
    decade = 10.0 ** np.floor(np.log10(values.min()) + 1e-9)
    return float(min(max(decade, _LOG_FLOOR_MIN), 1e-2))


def roc_plot(roc: pd.DataFrame, arms: Sequence[str]) -> Figure:
    """Membership-inference ROC curves on log-log axes, with the chance diagonal.

    The loss-threshold attack alone gives one panel; with shadow models (LiRA and RMIA)
    there is one panel per attack, on shared axes, and one legend of the arms below. Only
    :func:`roc_points` are drawn: each curve starts at its first positive TPR. Both axes
    run from the decade below the smallest point drawn to 1, ticks labelled as plain
    numbers (0.001, 0.01, ...).
    """
    styles = arm_styles(arms)
    attacks = attack_order(roc["attack"].astype(str).unique().tolist()) or ["loss"]
    points = roc_points(roc)
    floor = _log_floor(points)
    xlabel, ylabel = "false positive rate (non-members flagged)", "true positive rate (members found)"
    wide = len(attacks) > 1
    fig, axes = plt.subplots(1, len(attacks), figsize=(3.0 * len(attacks), 3.6) if wide else (5.5, 4.2),
                             sharex=True, sharey=True, squeeze=False)
    for ax, attack in zip(axes[0], attacks, strict=True):
        for arm in arms:
            sel = points[(points["arm"] == arm) & (points["attack"] == attack)].sort_values("fpr")
            if sel.empty:
                continue
            st = styles[arm]
            ax.plot(sel["fpr"], sel["tpr"], color=st.color, linestyle=st.line, marker=st.marker,
                    markersize=3, markevery=5, label=arm)
        grid = np.logspace(np.log10(floor), 0, 50)
        ax.plot(grid, grid, color="#999999", linewidth=1, label="chance")
        if wide:
            ax.set_title(f"{ATTACK_LABELS.get(attack, attack)} attack", fontsize=10)
    # Scales first, on every panel (setting a shared axis' scale resets its siblings'
    # formatters), then the plain-number ticks.
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in axes[0]:
        _log_axes(ax, floor, fontsize=8 if wide else 9)
        ax.grid(alpha=0.3, which="both")
    if not wide:
        return _finish(fig, axes[0][0], xlabel, ylabel, which="both")
    axes[0][0].set_ylabel(ylabel)
    axes[0][len(attacks) // 2].set_xlabel(xlabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout(w_pad=1.5)
    _legend_below(fig, list(axes[0]), axes[0][len(attacks) // 2], handles=handles, labels=labels,
                  ncol=min(5, len(labels)))
    return fig


def _plain_decimal(value: float) -> str:
    """0.0001 -> '0.0001', 1.0 -> '1': a tick label a reader reads as a number."""
    return str(np.format_float_positional(float(value), trim="-"))


def _log_axes(ax: Any, floor: float = 1e-4, *, fontsize: float = 9) -> None:
    """Log axes from ``floor`` to 1, ticks labelled as plain numbers (0.001, 0.01, ...).

    The default log labels are mathtext (``10^{-3}``), which :func:`_font` turns off so
    that group names are never read as maths: they would print as raw markup. Every
    decade gets a tick; with more than :data:`_LABELLED_DECADES` decades only every
    other one (counting down from 1) is labelled, so the labels never touch.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    n = int(round(-np.log10(floor)))
    decades = [10.0 ** -k for k in range(n, -1, -1)]
    step = 2 if len(decades) > _LABELLED_DECADES else 1
    labelled = [10.0 ** -k for k in range(0, n + 1, step)][::-1]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(labelled))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: _plain_decimal(v)))
        axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10)), numticks=len(decades) + 2))
        axis.set_minor_formatter(NullFormatter())
    ax.tick_params(which="major", labelsize=fontsize)


def roc_caption(roc: pd.DataFrame) -> str:
    """How to read :func:`roc_figure` of ``roc`` (``AuditResult.roc``): what is drawn,
    which points are left out, and which curves start late because the attack found no
    member at smaller false positive rates."""
    shadow = bool({"lira", "rmia"} & set(roc["attack"].astype(str)))
    text = ("Membership-inference ROC curves, one panel per attack (log axes; the first seed, whose "
            "shadow models LiRA and RMIA use)." if shadow else
            "Loss-threshold attack ROC curves (log axes; first seed).")
    text += (" Grey line: chance, an attacker who guesses; a curve above it finds members, and "
             "what matters most is its left end (false positive rates of 1% and 0.1%). Each curve "
             "starts at its first point with a true positive rate above 0: a rate of 0 (no member "
             "found) cannot be drawn on a log axis. False positive rates below one non-member are "
             "left out.")
    late = []
    for (arm, attack), sel in roc_points(roc).groupby(["arm", "attack"], sort=False):
        start = float(sel["fpr"].min())
        if start >= _LATE_START:
            who = f"{arm} ({ATTACK_LABELS.get(str(attack), attack)})" if shadow else str(arm)
            late.append(f"{who} finds no member below a false positive rate of "
                        f"{format_number(start, decimals_for(start))}")
    if late:
        text += " Curves that start late: " + "; ".join(late) + "."
    return text


def tradeoff_figure(points: pd.DataFrame, arms: Sequence[str], *, ci_level: float = 0.95) -> bytes:
    """:func:`tradeoff_plot` as PNG bytes."""
    with figure_style():
        return _png(tradeoff_plot(points, arms, ci_level=ci_level))


def tradeoff_plot(points: pd.DataFrame, arms: Sequence[str], *, ci_level: float = 0.95) -> Figure:
    """Accuracy (x) vs error gap (y), one marker per arm with the gap's interval.

    ``points`` is :func:`reports.tradeoff_points`. Each arm's epsilon ("no guarantee"
    where there is none) is in its legend entry, and the legend sits below the axes:
    labels next to the markers overlapped whenever two arms were close.
    """
    styles = arm_styles(arms)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for _, r in points.iterrows():
        st = styles[r["arm"]]
        eps = str(r["epsilon"])
        claim = "no guarantee" if eps in ("none", "no guarantee") else f"ε = {eps}"
        ax.errorbar(r["accuracy"], r["gap"], yerr=[[max(r["gap"] - r["gap_low"], 0)],
                                                   [max(r["gap_high"] - r["gap"], 0)]],
                    fmt=st.marker, color=st.color, capsize=3, markersize=8,
                    label=f"{_short(str(r['arm']), 24)} ({claim})")
    return finish_tradeoff(fig, ax, "accuracy on the evaluated rows", ci_level, ncol=2, margin=0.12)


def finish_tradeoff(fig: Any, ax: Any, xlabel: str, ci_level: float, *, ncol: int, margin: float) -> Figure:
    """The axes of an accuracy (x) against error gap (y) figure, its legend below."""
    ax.margins(x=margin, y=0.1)
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"error gap (max − min)\nbars: {level_text(ci_level)} CI")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _legend_below(fig, [ax], ax, ncol=ncol)
    return fig


def mechanism_figure(mechanism: pd.DataFrame, reference: dict[str, object], arms: Sequence[str]) -> bytes:
    """:func:`mechanism_plot` as PNG bytes."""
    with figure_style():
        return _png(mechanism_plot(mechanism, reference, arms))


def mechanism_plot(mechanism: pd.DataFrame, reference: dict[str, object], arms: Sequence[str]) -> Figure:
    """Per-row dropout gradient noise vs gradient norm; DP-SGD's data-independent noise level."""
    styles = arm_styles(arms)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for arm in arms:
        sel = mechanism[mechanism["arm"] == arm]
        if sel.empty:
            continue
        st = styles[arm]
        ax.scatter(sel["grad_norm"], sel["noise_norm"], s=10, color=st.color, marker=st.marker,
                   alpha=0.7, label=f"{arm}: dropout noise")
    if reference:
        level = float(reference["noise_std_sum"])  # type: ignore[arg-type]
        ax.axhline(level, color="black", linestyle="--",
                   label=f"DP-SGD noise std per coordinate (σC = {level:.3g})")
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis)
    return _finish(fig, ax, "row's gradient norm (mean over dropout masks)",
                   "row's gradient noise from dropout (RMS over masks)")


#: Colour and marker of each canary audit in the privacy-bounds figure (distinct from each
#: other in greyscale too: the markers differ).
AUDIT_STYLES = {
    "black_box": ("#1b4f9c", "o"),
    "white_box_rows": ("#e69f00", "s"),
    "white_box_gradient": ("#2e8b57", "^"),
}
_VIOLATION = "#b00020"


def _plain_ticks(axis: Any) -> None:
    """Tick labels as plain numbers: with ``text.parse_math`` off, mathtext formatters
    would print their ``$\\mathdefault{...}$`` markup literally."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))


def privacy_bounds_figure(bounds: pd.DataFrame, arms: Sequence[str], *,
                          labels: dict[str, str] | None = None, confidence: float = 0.95) -> bytes:
    """:func:`privacy_bounds_plot` as PNG bytes."""
    with figure_style():
        return _png(privacy_bounds_plot(bounds, arms, labels=labels, confidence=confidence))


def privacy_bounds_plot(bounds: pd.DataFrame, arms: Sequence[str], *,
                        labels: dict[str, str] | None = None, confidence: float = 0.95) -> Figure:
    """Claimed vs proven privacy on one epsilon axis: one row per arm.

    ``bounds`` is ``AuditResult.privacy_bounds()``. Per arm: the accountant's epsilon
    (a grey bar from 0 and a black tick; "no guarantee" in the arm's label otherwise),
    each audit's proven lower bound (filled marker, one colour and marker per audit)
    and its Gaussian-DP estimate (hollow marker of the same audit, joined by a thin
    line). A violated claim is ringed in red. Linear axis, so that 0 is on it.
    ``labels`` maps an audit to its legend name.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = labels or {}
    shown = [a for a in arms if a in set(bounds["arm"])]
    audits = [a for a in AUDIT_STYLES if a in set(bounds["audit"])]
    audits += [a for a in dict.fromkeys(bounds["audit"]) if a not in audits]
    offsets = dict(zip(audits, np.linspace(-0.25, 0.25, len(audits)) if len(audits) > 1 else [0.0],
                       strict=True))
    values = pd.concat([bounds["accountant_epsilon"], bounds["epsilon_lower_bound"],
                        bounds["epsilon_lower_bound_gdp"]]).astype(float)
    top = float(np.nanmax(values.to_numpy())) if values.notna().any() else 0.0
    right = max(top * 1.3, 0.5)  # room for the value labels right of the markers
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.62 * max(1, len(shown))))
    ticks = []
    for y, arm in enumerate(shown):
        sel = bounds[bounds["arm"] == arm]
        claim = sel["accountant_epsilon"].iloc[0]
        if pd.notna(claim):
            ax.barh(y, float(claim), height=0.8, color="#dddddd", zorder=1)
            ax.plot([claim, claim], [y - 0.4, y + 0.4], color="black", linewidth=2.2, zorder=3)
            ax.annotate(f"ε = {float(claim):.2f}", (float(claim), y - 0.4), fontsize=7.5,
                        xytext=(3, 1), textcoords="offset points", va="bottom", zorder=5)
            ticks.append(f"{_short(arm, 22)}\nclaims ε = {float(claim):.2f}")
        else:
            ticks.append(f"{_short(arm, 22)}\nno guarantee")
        for _, r in sel.iterrows():
            audit = str(r["audit"])
            color, marker = AUDIT_STYLES.get(audit, ("#555555", "D"))
            yy = y + offsets[audit]
            bound, gdp = float(r["epsilon_lower_bound"]), float(r["epsilon_lower_bound_gdp"])
            if np.isfinite(gdp):
                ax.plot([bound, gdp], [yy, yy], color=color, linewidth=1, alpha=0.7, zorder=2)
                ax.plot(gdp, yy, marker=marker, markersize=7, markerfacecolor="white",
                        markeredgecolor=color, markeredgewidth=1.4, linestyle="none", zorder=4)
            ax.plot(bound, yy, marker=marker, markersize=7, color=color, linestyle="none", zorder=4,
                    markeredgecolor=_VIOLATION if r["dp_violation"] else color,
                    markeredgewidth=2.5 if r["dp_violation"] else 1.0)
            if bound > 0 or (np.isfinite(gdp) and gdp > 0):
                text = f"{bound:.2f}" + (f" (est. {gdp:.2f})" if np.isfinite(gdp) and gdp > 0 else "")
                ax.annotate(text, (max(bound, gdp if np.isfinite(gdp) else bound), yy), fontsize=7,
                            color=color, xytext=(7, 0), textcoords="offset points", ha="left",
                            va="center", zorder=5)
            if r["dp_violation"]:
                ax.annotate("violates its claim", (bound, yy), fontsize=7.5, color=_VIOLATION,
                            xytext=(0, -7), textcoords="offset points", ha="center", va="top",
                            fontweight="bold", zorder=5)
    ax.set_yticks(np.arange(len(shown)), ticks, fontsize=8)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlim(-0.02 * right, right)
    ax.axvline(0, color="#888888", linewidth=0.8, zorder=0)
    _plain_ticks(ax.xaxis)
    ax.set_xlabel(f"epsilon (lower bounds: largest over seeds, {level_text(confidence)} confidence)")
    ax.grid(axis="x", alpha=0.3)
    handles: list[Any] = []
    if bounds["accountant_epsilon"].notna().any():
        handles.append(Patch(facecolor="#dddddd", edgecolor="black", linewidth=0.8,
                             label="accountant epsilon (the claim)"))
    for audit in audits:
        color, marker = AUDIT_STYLES.get(audit, ("#555555", "D"))
        handles.append(Line2D([], [], marker=marker, color=color, linestyle="none", markersize=7,
                              label=f"{labels.get(audit, audit)}: proven lower bound"))
    handles.append(Line2D([], [], marker="o", markerfacecolor="white", markeredgecolor="#555555",
                          linestyle="none", markersize=7,
                          label="hollow: Gaussian-DP estimate (assumes a Gaussian trade-off curve)"))
    # Below the x label: a fixed distance in inches, as a fraction of the axes' height.
    axes_height = fig.get_figheight() * ax.get_position().height
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.5 / axes_height),
              ncol=2, fontsize=7.5, frameon=False)
    return fig


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
