"""Score intervals against the published values of Newcombe (1998), and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from audit.fairness._intervals import (
    bonferroni_level,
    difference_interval,
    rate_interval,
    ratio_interval,
    wilson_interval,
)

# Newcombe (1998), "Two-sided confidence intervals for the single proportion" (Stat Med
# 17:857), Table I: methods 3 (Wilson) and 4 (with continuity correction), 4 decimals.
SINGLE = [
    ((81, 263), (0.2553, 0.3662), (0.2535, 0.3682)),
    ((15, 148), None, (0.0598, 0.1644)),
    ((0, 20), (0.0, 0.1611), (0.0, 0.2005)),
    ((1, 29), (0.0061, 0.1718), (0.0018, 0.1963)),
]
# Newcombe (1998), "Interval estimation for the difference between independent
# proportions" (Stat Med 17:873), Table II: methods 10 (hybrid score) and 11 (with CC).
DIFFERENCE = [
    ((56, 70, 48, 80), (0.0524, 0.3339), None),
    ((9, 10, 3, 10), (0.1705, 0.8090), (0.1013, 0.8387)),
    ((6, 7, 2, 7), (0.0381, 0.8094), (-0.0290, 0.8423)),
    ((5, 56, 0, 29), (-0.0381, 0.1926), (-0.0667, 0.2037)),
]


@pytest.mark.parametrize(("counts", "plain", "corrected"), SINGLE)
def test_wilson_matches_newcombe_table_1(counts, plain, corrected) -> None:
    for continuity, expected in ((False, plain), (True, corrected)):
        if expected is not None:
            got = wilson_interval(*counts, 0.95, continuity=continuity)
            assert tuple(float(x) for x in got) == pytest.approx(expected, abs=6e-5)


def test_difference_matches_newcombe_table_2() -> None:
    for counts, plain, corrected in DIFFERENCE:
        lo, hi, method = difference_interval(*counts, 0.95)
        small = min(counts[1], counts[3]) < 40
        expected = corrected if small else plain
        assert str(method) == ("newcombe-cc" if small else "newcombe")
        if expected is not None:
            assert (float(lo), float(hi)) == pytest.approx(expected, abs=6e-5)


def test_difference_is_antisymmetric_and_contains_the_estimate() -> None:
    rng = np.random.default_rng(0)
    n1, n2 = rng.integers(1, 300, 500), rng.integers(1, 300, 500)
    k1, k2 = rng.binomial(n1, 0.3), rng.binomial(n2, 0.4)
    lo, hi, _ = difference_interval(k1, n1, k2, n2, 0.95)
    rlo, rhi, _ = difference_interval(k2, n2, k1, n1, 0.95)
    np.testing.assert_allclose(lo, -rhi, atol=1e-12)
    np.testing.assert_allclose(hi, -rlo, atol=1e-12)
    d = k1 / n1 - k2 / n2
    assert np.all((lo <= d + 1e-12) & (d <= hi + 1e-12)) and np.all((lo >= -1) & (hi <= 1))


def test_ratio_contains_the_estimate_and_handles_zero_rates() -> None:
    rng = np.random.default_rng(1)
    n1, n2 = rng.integers(5, 300, 500), rng.integers(5, 300, 500)
    k1, k2 = rng.binomial(n1, 0.2), np.maximum(rng.binomial(n2, 0.3), 1)
    lo, hi, _ = ratio_interval(k1, n1, k2, n2, 0.95)
    r = (k1 / n1) / (k2 / n2)
    assert np.all((lo <= r + 1e-12) & (r <= hi + 1e-12))
    lo0, hi0, _ = ratio_interval(0, 50, 5, 50, 0.95)  # numerator rate 0: lower limit 0
    assert float(lo0) == 0.0 and 0.0 < float(hi0) < np.inf
    assert np.isnan(ratio_interval(5, 50, 0, 50, 0.95)[0])  # denominator rate 0: no ratio


def test_empty_denominator_and_fractional_counts() -> None:
    lo, hi, _ = rate_interval(0, 0, 0.95)
    assert np.isnan(lo) and np.isnan(hi)
    # Seed-averaged counts are fractional; the interval is monotone in them.
    los = [float(rate_interval(k, 50, 0.95)[0]) for k in (4.0, 4.5, 5.0)]
    assert los == sorted(los) and los[0] < los[2]


def test_higher_level_gives_wider_intervals_and_bonferroni() -> None:
    narrow = rate_interval(30, 120, 0.90)
    wide = rate_interval(30, 120, bonferroni_level(0.90, 4))
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    assert bonferroni_level(0.95, 10) == pytest.approx(0.995)
