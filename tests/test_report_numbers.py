"""One number format everywhere: rates and gaps with 3 decimals, epsilons with 2, a value
and its interval alike (issue 13: a verdict read "0.01067 (95% CI 0.005235 to 0.01581)")."""

from __future__ import annotations

import re

import numpy as np
import pytest

from audit import EPSILON_DIGITS, RATE_DIGITS, bound_verdict, decimals_for, format_interval, format_number

NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.(\d+)")


def decimals(text: str) -> set[int]:
    """The decimals of every number with a decimal point in ``text``."""
    return {len(m.group(1)) for m in NUMBER.finditer(text)}


def test_format_number() -> None:
    assert (RATE_DIGITS, EPSILON_DIGITS) == (3, 2)
    assert format_number(0.010671) == "0.011"
    assert format_number(2.99071, EPSILON_DIGITS) == "2.99"
    assert format_number(-0.0001) == "0.000"  # never "-0.000"
    assert format_number(0.0125, signed=True) == "+0.013"
    assert format_number(-0.0125, signed=True) == "-0.013"
    assert format_number(0.0, signed=True) == "0.000"
    assert format_number(None) == format_number(float("nan")) == "n/a"
    assert format_number(float("nan"), missing="-") == "-"
    assert format_number(float("inf")) == "inf"


def test_format_interval() -> None:
    assert format_interval(0.010671, 0.005235, 0.01581, level=0.95) == "0.011 (95% CI 0.005 to 0.016)"
    assert format_interval(0.5041, 0.493, 0.518) == "0.504 [0.493, 0.518]"
    assert format_interval(0.5041, float("nan"), 0.518) == "0.504"
    assert format_interval(0.2, 0.1, 0.3, level=0.9) == "0.200 (90% CI 0.100 to 0.300)"


def test_decimals_for_shows_two_significant_digits_of_the_largest() -> None:
    assert decimals_for(0.01067, 0.005235, 0.01581) == 3
    assert decimals_for(0.00028, 0.0001) == 5
    assert decimals_for(12.5, 0.001) == 3
    assert decimals_for(float("nan"), 0.0) == 3
    assert decimals_for(1e-12) == 6  # capped


@pytest.mark.parametrize("scale", [1.0, 0.01], ids=["error rates", "a small-scale metric"])
def test_solver_verdict_numbers_share_their_decimals(scale: float) -> None:
    from audit.solver._solver import _heldout_verdict

    rng = np.random.default_rng(3)
    groups = np.array(["a"] * 1000 + ["b"] * 300)
    uniform = (rng.random(1300) < np.where(groups == "a", 0.10, 0.16)) * scale
    solved = (rng.random(1300) < 0.11) * scale
    fits = np.array([0.05, 0.03, 0.06, 0.04]) * scale
    for seed_diffs in (fits, None, fits[:1]):
        _, text = _heldout_verdict(uniform.astype(float), solved.astype(float), groups, ("a", "b"),
                                   "equalize", seed_diffs=seed_diffs)
        found = decimals(text)
        assert len(found) == 1, text
        assert found == ({3} if scale == 1.0 else {5}), text
        assert "95% CI" in text and "+-" not in text


def test_bound_verdict_epsilons_have_two_decimals() -> None:
    text = bound_verdict("white_box_gradient", epsilon_lower_bound=0.761529, accountant_epsilon=2.990712,
                         dp_violation=False, epsilon_lower_bound_gdp=0.917562)
    assert "epsilon 0.76" in text and "epsilon 2.99" in text and "epsilon 0.92" in text
    assert decimals(text) == {2}
