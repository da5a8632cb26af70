"""Report figures as a reader sees them (issue 13): tick labels are plain numbers, never
mathtext markup such as ``$\\mathdefault{10^{-2}}$``; no two texts overlap; every line
drawn is in the legend; log axes draw no point at a TPR of 0.

Each figure is built by its ``*_plot`` function and drawn inside ``figure_style()``, as
the PNG functions do, then the texts matplotlib actually drew are checked by their
bounding boxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axis import Axis
from matplotlib.text import Text

from reports import _figures
from reports._figures import (
    dropout_tradeoff_plot,
    figure_style,
    gap_curve_plot,
    mechanism_plot,
    privacy_bounds_plot,
    roc_caption,
    roc_plot,
    roc_points,
    tradeoff_plot,
)

ARMS = ["baseline", "uniform_dropout", "group_dropout", "dp_sgd"]


@contextmanager
def drawn(build: Any, *args: Any, **kwargs: Any) -> Iterator[tuple[Any, list[tuple[Text, Any]]]]:
    """Build a figure in the report style and draw it; yields it with every text drawn
    (non-empty, visible) and its bounding box in pixels."""
    seen: list[tuple[Text, Any]] = []
    original = Text.draw

    def record(self: Text, renderer: Any) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            seen.append((self, self.get_window_extent(renderer)))

    with figure_style():
        fig = build(*args, **kwargs)
        with mock.patch.object(Text, "draw", record):
            fig.canvas.draw()
        try:
            yield fig, seen
        finally:
            plt.close(fig)


def tick_labels(fig: Any) -> set[int]:
    """ids of every tick label Text of every axis (secondary axes included)."""
    ids: set[int] = set()
    for axis in fig.findobj(Axis):
        for tick in [*axis.majorTicks, *axis.minorTicks]:
            ids |= {id(tick.label1), id(tick.label2)}
    return ids


def drawn_tick_texts(fig: Any, seen: list[tuple[Text, Any]]) -> list[str]:
    ids = tick_labels(fig)
    return [t.get_text() for t, _ in seen if id(t) in ids]


def assert_plain_numbers(texts: list[str]) -> None:
    assert texts, "no tick labels drawn"
    for text in texts:
        assert "$" not in text and "mathdefault" not in text, text
        for number in text.split("\n"):
            float(number.replace("\u2212", "-"))  # raises on anything but a plain number


def overlaps(seen: list[tuple[Text, Any]], tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap by more than ``tolerance`` pixels both ways."""
    found = []
    for i, (a, box_a) in enumerate(seen):
        for b, box_b in seen[i + 1:]:
            w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if w > tolerance and h > tolerance:
                found.append((a.get_text(), b.get_text()))
    return found


def test_the_overlap_check_sees_an_overlap() -> None:
    def two_labels() -> Any:
        fig, ax = plt.subplots()
        ax.annotate("ε = none", (0.5, 0.5))
        ax.annotate("ε = 2.99", (0.5, 0.5), xytext=(2, 1), textcoords="offset points")
        return fig

    with drawn(two_labels) as (_, seen):
        assert ("ε = none", "ε = 2.99") in overlaps(seen)


def test_the_plain_number_check_sees_mathtext() -> None:
    with pytest.raises(AssertionError):
        assert_plain_numbers(["$\\mathdefault{10^{-2}}$"])
    with pytest.raises(ValueError):
        assert_plain_numbers(["10^{-2}"])


# ----------------------------------------------------------------------------- ROC

def roc_frame(attacks: tuple[str, ...] = ("loss",), n_nonmembers: int = 4000, arms: list[str] = ARMS) -> pd.DataFrame:
    """ROC points like the engine's: a log grid of FPRs, those below one non-member not
    resolvable; the last arm finds no member below FPR 0.03 (TPR 0 there)."""
    fpr = np.logspace(-4, 0, 41)
    rows = []
    for attack in attacks:
        for i, arm in enumerate(arms):
            tpr = np.minimum(1.0, fpr * (1.1 + 0.1 * i))
            tpr[fpr < (0.03 if i == len(arms) - 1 else 3e-4)] = 0.0
            for f, t in zip(fpr, tpr, strict=True):
                rows.append({"arm": arm, "kind": arm, "seed": 0, "attack": attack, "fpr": f, "tpr": t,
                             "resolvable": bool(f >= 1 / n_nonmembers)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("attacks", [("loss",), ("loss", "lira"), ("loss", "lira", "rmia")],
                         ids=["one panel", "two panels", "three panels"])
def test_roc_ticks_are_plain_numbers_that_do_not_overlap(attacks: tuple[str, ...]) -> None:
    with drawn(roc_plot, roc_frame(attacks), ARMS) as (fig, seen):
        for ax in fig.axes:
            xs = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            assert xs == ["0.0001", "0.001", "0.01", "0.1", "1"], xs
        assert_plain_numbers(drawn_tick_texts(fig, seen))
        assert not overlaps(seen), overlaps(seen)


def test_roc_draws_no_point_at_tpr_zero() -> None:
    roc = roc_frame()
    with drawn(roc_plot, roc, ARMS) as (fig, _):
        ax = fig.axes[0]
        floor = ax.get_ylim()[0]
        curves = [ln for ln in ax.get_lines() if ln.get_label() in ARMS]
        assert len(curves) == len(ARMS)
        for ln in curves:
            ys = np.asarray(ln.get_ydata(), dtype=float)
            xs = np.asarray(ln.get_xdata(), dtype=float)
            assert (ys > 0).all() and (ys >= floor).all() and (xs > 0).all()
        late = next(ln for ln in curves if ln.get_label() == "dp_sgd")
        assert np.asarray(late.get_xdata(), dtype=float).min() >= 0.03  # starts where it finds members
    assert (roc_points(roc)["tpr"] > 0).all()
    caption = roc_caption(roc)
    assert "first point with a true positive rate above 0" in caption
    assert "dp_sgd finds no member below a false positive rate of 0.032" in caption
    assert "baseline finds" not in caption


def test_roc_axes_follow_the_data_and_label_every_other_decade_when_many() -> None:
    few = roc_frame(n_nonmembers=100)  # nothing below FPR 0.01 resolvable
    with drawn(roc_plot, few, ARMS) as (fig, seen):
        assert fig.axes[0].get_xlim()[0] == pytest.approx(1e-2)
        assert [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()] == ["0.01", "0.1", "1"]
        assert_plain_numbers(drawn_tick_texts(fig, seen))
    many = roc_frame(n_nonmembers=10**6)
    many.loc[many["fpr"] == many["fpr"].min(), "tpr"] = 2e-6  # a TPR far below 1e-4
    with drawn(roc_plot, many, ARMS) as (fig, seen):
        ax = fig.axes[0]
        assert ax.get_ylim()[0] == pytest.approx(1e-6)
        assert [t.get_text() for t in ax.get_yticklabels() if t.get_text()] == [
            "0.000001", "0.0001", "0.01", "1"]
        assert_plain_numbers(drawn_tick_texts(fig, seen))
        assert not overlaps(seen), overlaps(seen)


# ----------------------------------------------------------------------------- trade-off

def close_points() -> pd.DataFrame:
    """Two arms almost on top of each other: their labels once overlapped."""
    return pd.DataFrame({
        "arm": ARMS, "accuracy": [0.934, 0.920, 0.9305, 0.930], "gap": [0.007, 0.057, 0.0205, 0.020],
        "gap_low": [-0.012, 0.030, -0.001, -0.002], "gap_high": [0.029, 0.082, 0.040, 0.041],
        "epsilon": ["none", "none", "none", "2.99"]})


def test_tradeoff_labels_never_overlap_and_the_legend_covers_no_point() -> None:
    with drawn(tradeoff_plot, close_points(), ARMS) as (fig, seen):
        assert not overlaps(seen), overlaps(seen)
        assert_plain_numbers(drawn_tick_texts(fig, seen))
        legend = fig.legends[0]
        names = [t.get_text() for t in legend.get_texts()]
        assert "dp_sgd (ε = 2.99)" in names and "baseline (no guarantee)" in names
        renderer = fig.canvas.get_renderer()
        box = legend.get_window_extent(renderer)
        ax = fig.axes[0]
        assert box.y1 < ax.get_window_extent(renderer).y0  # below the axes
        pts = ax.transData.transform(close_points()[["accuracy", "gap"]].to_numpy())
        assert not any(box.contains(x, y) for x, y in pts)


def test_gap_curve_puts_every_line_in_its_legend() -> None:
    curve = [{"rate[a]": r, "rate[b]": 0.8 - r, "val_gap": abs(0.5 - r) / 5, "val_gap_std": 0.01}
             for r in np.linspace(0.2, 0.6, 9)]
    with drawn(gap_curve_plot, curve, {"a": 0.5, "b": 0.3}, 0.04, 0.4) as (fig, seen):
        ax = fig.axes[0]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        for ln in ax.get_lines():
            assert ln.get_label() in legend, (ln.get_label(), ln.get_linestyle(), legend)
        assert "uniform dropout's validation gap (0.040)" in legend
        assert any(ln.get_linestyle() == ":" for ln in ax.get_lines())
        assert not overlaps(seen), overlaps(seen)
        assert_plain_numbers(drawn_tick_texts(fig, seen))


@pytest.mark.parametrize("n_groups", [2, 3])
def test_dropout_tradeoff_texts_do_not_overlap(n_groups: int) -> None:
    rng = np.random.default_rng(0)
    groups = [f"g{i}" for i in range(n_groups)]
    curve = []
    for _ in range(20):
        rates = rng.uniform(0.1, 0.7, n_groups)
        row: dict[str, float] = {f"rate[{g}]": float(r) for g, r in zip(groups, rates, strict=True)}
        errs = 0.1 + 0.1 * rates
        row |= {f"val_error[{g}]": float(e) for g, e in zip(groups, errs, strict=True)}
        row |= {"val_overall": float(errs.mean()), "val_gap": float(np.ptp(errs)), "val_worst": float(errs.max())}
        curve.append(row)
    if n_groups == 2:  # on a budget line, as the solver explores them
        for row in curve:
            row["rate[g1]"] = 0.8 - row["rate[g0]"]
    rates = {g: curve[0][f"rate[{g}]"] for g in groups}
    with drawn(dropout_tradeoff_plot, curve, rates, 0.4) as (fig, seen):
        assert not overlaps(seen), overlaps(seen)
        assert_plain_numbers(drawn_tick_texts(fig, seen))


# ----------------------------------------------------------------------------- the others

def test_mechanism_figure_ticks_and_texts() -> None:
    rng = np.random.default_rng(1)
    grad = rng.uniform(0, 6, 200)
    mech = pd.DataFrame({"arm": ["uniform_dropout"] * 100 + ["group_dropout"] * 100, "grad_norm": grad,
                         "noise_norm": grad * rng.uniform(0.5, 2.5, 200)})
    with drawn(mechanism_plot, mech, {"noise_std_sum": 0.778}, ARMS) as (fig, seen):
        assert_plain_numbers(drawn_tick_texts(fig, seen))
        assert not overlaps(seen), overlaps(seen)


def test_privacy_bounds_figure_ticks_and_texts() -> None:
    bounds = pd.DataFrame({
        "arm": ["baseline", "baseline", "dp_sgd", "dp_sgd", "dp_sgd"],
        "kind": ["baseline", "baseline", "dp_sgd", "dp_sgd", "dp_sgd"],
        "audit": ["black_box", "white_box_rows", "black_box", "white_box_rows", "white_box_gradient"],
        "accountant_epsilon": [np.nan, np.nan, 2.99, 2.99, 2.99],
        "epsilon_lower_bound": [0.0, 3.04, 0.0, 0.0, 0.76],
        "epsilon_lower_bound_gdp": [0.0, 5.19, 0.0, 0.0, 0.92],
        "dp_violation": [False, False, False, False, False]})
    with drawn(privacy_bounds_plot, bounds, ["baseline", "dp_sgd"]) as (fig, seen):
        ids = tick_labels(fig)
        xs = [t.get_text() for t, _ in seen if id(t) in ids and t in fig.axes[0].get_xticklabels()]
        assert_plain_numbers(xs)
        assert not overlaps(seen), overlaps(seen)


def test_figure_functions_return_png_bytes() -> None:
    png = _figures.roc_figure(roc_frame(("loss", "lira")), ARMS)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert _figures.tradeoff_figure(close_points(), ARMS, ci_level=0.9)[:4] == b"\x89PNG"
