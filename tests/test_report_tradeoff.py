"""The group-dropout trade-off figure: each group's error and the overall error of every
candidate rate vector, for two groups (along the budget line) and for more (one tick per
candidate); in the report's group-dropout section for every solution."""

from __future__ import annotations

import dataclasses
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from audit import (
    AuditConfig,
    AuditResult,
    GroupDropoutArm,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
)
from reports import (
    SECTION_TITLES,
    build_report,
    dropout_tradeoff_caption,
    dropout_tradeoff_figure,
    render_html_text,
    solution_tradeoff_figure,
)
from reports._content import Figure

#: Group names that mathtext would read as maths ("a$\frac$" does not even parse as maths).
MONEY, FRAC = "$50k-$100k", "a$\\frac$"


def keep_figure(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Make the figure functions hand back their matplotlib figure instead of PNG bytes."""
    from reports import _figures

    kept: dict[str, Any] = {}
    monkeypatch.setattr(_figures, "_png", lambda fig: kept.setdefault("fig", fig) and b"png")
    return kept


def texts(labels: list[Any]) -> list[str]:
    return [t.get_text() for t in labels if t.get_text()]


def assert_plain(labels: list[str]) -> None:
    """Tick labels as a reader sees them: numbers, never mathtext markup."""
    assert labels, "no tick labels"
    for text in labels:
        assert "$" not in text and "mathdefault" not in text, text
        for number in text.split("\n"):
            float(number)  # raises on anything but a plain number


def line(ax: Any, label: str) -> Any:
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def vertical_at(ax: Any, label_start: str) -> float:
    found = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(label_start)]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    xs = np.asarray(found[0].get_xdata(), dtype=float)
    assert np.ptp(xs) == 0  # a vertical line
    return float(xs[0])


# ----------------------------------------------------------------------------- two groups

SHARES, BUDGET = {MONEY: 0.75, FRAC: 0.25}, 0.4


def two_group_curve() -> list[dict[str, float]]:
    """Candidates along 0.75 p1 + 0.25 p2 = 0.4, uniform (0.4, 0.4) among them, not in
    rate order (the figure sorts them); the minority's error falls with its rate."""
    rows = []
    for p1 in [*np.linspace(0.2, 0.5333333333, 9)[::-1], BUDGET]:
        p2 = (BUDGET - SHARES[MONEY] * p1) / SHARES[FRAC]
        e1, e2 = 0.10 + 0.05 * p1, 0.15 + 0.2 * p2
        rows.append({f"rate[{MONEY}]": p1, f"rate[{FRAC}]": p2, f"val_error[{MONEY}]": e1,
                     f"val_error[{FRAC}]": e2, "val_gap": abs(e2 - e1), "val_gap_std": 0.01,
                     "val_worst": max(e1, e2), "val_worst_std": 0.01,
                     "val_overall": SHARES[MONEY] * e1 + SHARES[FRAC] * e2})
    return rows


def test_two_groups_errors_along_the_budget_line(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = keep_figure(monkeypatch)
    curve = two_group_curve()
    best = min(curve, key=lambda r: r["val_gap"])
    rates = {MONEY: best[f"rate[{MONEY}]"], FRAC: best[f"rate[{FRAC}]"]}
    assert rates[MONEY] != pytest.approx(BUDGET)
    assert dropout_tradeoff_figure(curve, rates, BUDGET) == b"png"
    fig = kept["fig"]
    fig.canvas.draw()  # "a$\frac$" read as maths would raise here
    top, low = fig.axes[:2]
    # Legend: the group names as written, the overall error, uniform and chosen.
    legend = texts(fig.legends[0].get_texts())
    assert MONEY in legend and FRAC in legend and "overall" in legend, legend
    assert f"uniform dropout (every group at {BUDGET:g})" in legend
    assert f"chosen rates ({rates[MONEY]:.2f} / {rates[FRAC]:.2f})" in legend
    # One line per group, its errors in rate order; the overall error dashed.
    order = sorted(curve, key=lambda r: r[f"rate[{MONEY}]"])
    for g in (MONEY, FRAC):
        ln = line(top, g)
        assert np.allclose(ln.get_xdata(), [r[f"rate[{MONEY}]"] for r in order])
        assert np.allclose(ln.get_ydata(), [r[f"val_error[{g}]"] for r in order])
    overall = line(top, "overall")
    assert overall.get_linestyle() == "--" and overall.get_color() == "black"
    assert np.allclose(overall.get_ydata(), [r["val_overall"] for r in order])
    # Uniform at the budget, chosen at the first group's chosen rate, in both panels.
    assert vertical_at(top, "uniform dropout") == pytest.approx(BUDGET)
    assert vertical_at(top, "chosen rates") == pytest.approx(rates[MONEY])
    assert len([ln for ln in low.get_lines() if np.ptp(np.asarray(ln.get_xdata(), float)) == 0]) == 2
    # Lower panel: the selection rows' gap, +- 1 sd shaded.
    assert np.allclose(line(low, "lower panel: gap (max − min) on the selection rows").get_ydata(),
                       [r["val_gap"] for r in order])
    assert "± 1 sd over fits (seeds or folds)" in legend
    # Ticks: plain numbers; the top axis gives the second group's rate at each bottom tick.
    bottom = texts(low.get_xticklabels())
    assert_plain(bottom)
    assert_plain(texts(top.get_yticklabels()))
    assert_plain(texts(low.get_yticklabels()))
    assert low.get_xlabel() == f"dropout rate of '{MONEY}'"
    second = top.child_axes[0]
    assert second.get_xlabel() == f"dropout rate of '{FRAC}' (set by the budget 0.4)"
    upper = texts(second.get_xticklabels())
    assert_plain(upper)
    lo, hi = low.get_xlim()
    visible = [t for t, pos in zip(bottom, low.get_xticks(), strict=True) if lo <= pos <= hi]
    assert len(visible) >= 3
    assert upper == [f"{(BUDGET - 0.75 * float(t)) / 0.25:.2f}" for t in visible]
    plt.close(fig)


# ----------------------------------------------------------------------------- three groups

GROUPS3 = ["north", "south", FRAC]


def three_group_curve(n: int = 30, seed: int = 0) -> tuple[list[dict[str, float]], dict[str, float]]:
    """``n`` random candidates and uniform (every group at 0.5); the one with the smallest
    gap is the chosen one."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n + 1):
        rates = np.full(3, 0.5) if i == n // 2 else rng.uniform(0, 0.9, 3)
        errors = 0.1 + 0.2 * rng.uniform(size=3)
        rows.append({**{f"rate[{g}]": float(r) for g, r in zip(GROUPS3, rates, strict=True)},
                     **{f"val_error[{g}]": float(e) for g, e in zip(GROUPS3, errors, strict=True)},
                     "val_gap": float(np.ptp(errors)), "val_worst": float(errors.max()),
                     "val_overall": float(errors.mean())})
    best = min(rows, key=lambda r: r["val_gap"])
    return rows, {g: best[f"rate[{g}]"] for g in GROUPS3}


@pytest.mark.parametrize("limit", [8, 100])
def test_three_groups_one_tick_per_candidate(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    kept = keep_figure(monkeypatch)
    curve, rates = three_group_curve()
    dropout_tradeoff_figure(curve, rates, 0.5, max_candidates=limit)
    fig = kept["fig"]
    fig.canvas.draw()
    top, low = fig.axes[:2]
    legend = texts(fig.legends[0].get_texts())
    for g in GROUPS3:
        assert g in legend, legend
    assert "overall" in legend and "uniform dropout (every group at 0.5)" in legend
    ticks = low.get_xticklabels()
    labels = texts(ticks)
    assert_plain(labels)
    assert_plain(texts(top.get_yticklabels()))
    shown = len(curve) if limit > len(curve) else limit
    assert len(labels) == shown
    # Each tick: the candidate's rates, one group per line, in the legend's order.
    uniform_label = "0.50\n0.50\n0.50"
    chosen_label = "\n".join(f"{rates[g]:.2f}" for g in GROUPS3)
    assert uniform_label in labels and chosen_label in labels
    bold = [t.get_text() for t in ticks if t.get_fontweight() == "bold"]
    assert sorted(bold) == sorted([uniform_label, chosen_label])
    assert vertical_at(top, "uniform dropout") == labels.index(uniform_label)
    assert vertical_at(top, "chosen rates") == labels.index(chosen_label)
    # Left to right from the largest selection-row gap to the smallest; the group lines
    # carry each shown candidate's own errors.
    gaps = np.asarray(line(low, "lower panel: gap (max − min) on the selection rows").get_ydata(), dtype=float)
    assert np.all(np.diff(gaps) <= 0) and gaps[-1] == min(r["val_gap"] for r in curve)
    by_label = {"\n".join(f"{r[f'rate[{g}]']:.2f}" for g in GROUPS3): r for r in curve}
    for g in GROUPS3:
        assert np.allclose(line(top, g).get_ydata(), [by_label[t][f"val_error[{g}]"] for t in labels])
    xlabel = low.get_xlabel()
    assert "north / south / a$\\frac$, top to bottom" in xlabel
    assert (f"({shown} of {len(curve)}" in xlabel) == (shown < len(curve))
    plt.close(fig)


def test_the_figure_needs_each_groups_error() -> None:
    curve, rates = three_group_curve(5)
    for row in curve:
        del row["val_error[south]"]
    with pytest.raises(ValueError, match=r"val_error\[south\]"):
        dropout_tradeoff_figure(curve, rates, 0.5)


# ----------------------------------------------------------------------------- the report

FAST = dict(n_bootstrap=0, training=TrainingConfig(epochs=1, hidden=(4,)),
            privacy_audit=PrivacyAuditConfig(canaries=0, mia="none", mechanism_rows=0))


def three_group_frame(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + rng.normal(0, 1 + (g == "east"), n) > 0).astype(int)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "g": g, "y": y})


@pytest.fixture(scope="module", params=[2, 3], ids=["2 groups", "3 groups"])
def solved(request: pytest.FixtureRequest) -> AuditResult:
    arms = (UniformDropoutArm(p=0.5), GroupDropoutArm())
    if request.param == 2:
        return run_audit(load_dataset("synthetic", n_rows=1500),
                         AuditConfig(arms=arms, seeds=2, **FAST))  # type: ignore[arg-type]
    ds = load_dataset(three_group_frame(), target="y", sensitive="g")
    return run_audit(ds, AuditConfig(arms=arms, seeds=1, **FAST))  # type: ignore[arg-type]


def test_report_section_shows_the_tradeoff_for_every_solution(solved: AuditResult) -> None:
    sol = solved.solutions["group_dropout"]
    assert len(sol["rates"]) in (2, 3) and len(sol["curve"]) > 2
    report = build_report(solved)
    section = report.sections[3]
    assert section.title == SECTION_TITLES[3]
    figures = [b for b in section.blocks if isinstance(b, Figure)]
    assert len(figures) == 1
    caption = dropout_tradeoff_caption(sol)
    assert figures[0].caption == caption
    assert figures[0].png == solution_tradeoff_figure(sol)
    assert figures[0].png[:8] == b"\x89PNG\r\n\x1a\n"
    for words in ("levelling up (the worse-off group's error falls)",
                  "levelling down (a better-off group's error rises", "not on test rows",
                  "rows the rates were selected on (out of fold: the training and validation rows in 4 folds",
                  f"budget {sol['budget']:g}"):
        assert words in caption, words
    if len(sol["rates"]) == 2:
        first, second = sol["rates"]
        assert f"Bottom axis: the dropout rate of {first}; top axis: the rate of {second}" in caption
    else:
        assert "each tick lists the candidate's rates" in caption
    # Cross-fitted: four fits, whatever the seeds, so the spread shown is over folds.
    assert "± 1 sd over folds shaded" in caption and "seed" not in caption
    assert caption in render_html_text(report).replace("&#x27;", "'")


def test_an_older_curve_without_group_errors_keeps_the_gap_curve(solved: AuditResult) -> None:
    sol = solved.solutions["group_dropout"]
    old = {**sol, "curve": [{k: v for k, v in r.items() if not k.startswith("val_error[")}
                            for r in sol["curve"]]}
    section = build_report(dataclasses.replace(solved, solutions={"group_dropout": old})).sections[3]
    captions = [b.caption for b in section.blocks if isinstance(b, Figure)]
    if len(sol["rates"]) == 2:
        assert captions == ["Validation gap along the budget line."]
    else:
        assert captions == []
        assert any("no per-group errors" in getattr(b, "text", "") for b in section.blocks)
