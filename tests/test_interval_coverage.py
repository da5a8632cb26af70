"""Coverage of the rate, gap and ratio intervals, simulated against known population rates.

Each setting draws ``TRIALS`` test sets: a majority group A of 2,000 rows and a second
group B of 3000 / 800 / 200 / 60 / 40 / 20 rows (20 is the default minimum group size),
with known population error rates (A 0.15, B 0.25: a gap of 0.10; and a setting with
no gap), and known false-positive rates on about half the rows (A 0.10, B 0.20: the
40-row group has about 20 negatives, the 20-row group about 10). Every trial's counts go
through the same functions ``evaluate_predictions`` uses for its intervals
(``tests/test_metrics.py`` checks that its rows equal them on real scores), and we
count how often the interval contains the true value.

Monte-Carlo error: with 20,000 trials the standard error of a coverage near 0.95 is
``sqrt(0.95 * 0.05 / 20000) = 0.0015``, so the floor of 0.94 sits 6.5 standard errors
below the nominal 0.95: a method whose true coverage is 0.95 fails it with probability
below 1e-9, and one at 0.935 passes it with probability below 0.001. The seeds are
fixed, so the outcome is the same on every run.

The same harness rejects the percentile bootstrap these intervals replaced (for a
proportion, resampling a group's rows is drawing its count from Binomial(n, k / n)):
at 40 and 20 rows its FPR-gap coverage is far below 0.94, so the check can fail.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from audit.fairness._intervals import (
    SMALL_GAP_ROWS,
    SMALL_RATE_ROWS,
    difference_interval,
    rate_interval,
    ratio_interval,
)

TRIALS = 20_000
LEVEL = 0.95
FLOOR = 0.94
MC_SE = float(np.sqrt(LEVEL * (1 - LEVEL) / TRIALS))
MAJORITY_ROWS = 2_000
SECOND_GROUP_ROWS = (3000, 800, 200, 60, 40, 20)
NEGATIVE_SHARE = 0.5

Interval = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], tuple[np.ndarray, ...]]

# (name, rate of A, rate of B, denominator: "rows" or "negatives")
SETTINGS = (
    ("error_rate gap 0.10", 0.15, 0.25, "rows"),
    ("error_rate no gap", 0.20, 0.20, "rows"),
    ("fpr gap 0.10", 0.10, 0.20, "negatives"),
)


def _counts(rng: np.random.Generator, rows: int, rate: float, kind: str,
            trials: int = TRIALS) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: the count and its denominator (the group's rows or its negatives)."""
    if kind == "rows":
        n = np.full(trials, rows, dtype=np.int64)
    else:
        # The test set's negatives are themselves random; a group with none has no FPR.
        n = np.maximum(rng.binomial(rows, NEGATIVE_SHARE, trials), 1)
    return rng.binomial(n, rate), n


def _oriented(k_a: np.ndarray, n_a: np.ndarray, k_b: np.ndarray, n_b: np.ndarray,
              p_a: float, p_b: float) -> tuple[np.ndarray, ...]:
    """Highest and lowest observed group per trial, as the gaps table orients them."""
    b_high = k_b / n_b >= k_a / n_a
    k_hi, n_hi = np.where(b_high, k_b, k_a), np.where(b_high, n_b, n_a)
    k_lo, n_lo = np.where(b_high, k_a, k_b), np.where(b_high, n_a, n_b)
    p_hi, p_lo = np.where(b_high, p_b, p_a), np.where(b_high, p_a, p_b)
    return k_hi, n_hi, k_lo, n_lo, p_hi, p_lo


def _gap_coverage(method: Interval, rows_b: int, p_a: float, p_b: float, kind: str, seed: int,
                  trials: int = TRIALS) -> float:
    rng = np.random.default_rng(seed)
    k_a, n_a = _counts(rng, MAJORITY_ROWS, p_a, kind, trials)
    k_b, n_b = _counts(rng, rows_b, p_b, kind, trials)
    k_hi, n_hi, k_lo, n_lo, p_hi, p_lo = _oriented(k_a, n_a, k_b, n_b, p_a, p_b)
    lo, hi = method(k_hi, n_hi, k_lo, n_lo, LEVEL)[:2]
    truth = p_hi - p_lo
    return float(np.mean((lo <= truth) & (truth <= hi)))


def _percentile_bootstrap_difference(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray,
                                     level: float) -> tuple[np.ndarray, np.ndarray]:
    """The replaced method: percentile interval of 400 within-group resamples per trial."""
    rng = np.random.default_rng(99)
    draws = rng.binomial(n1[:, None], (k1 / n1)[:, None], (k1.size, 400)) / n1[:, None] \
        - rng.binomial(n2[:, None], (k2 / n2)[:, None], (k2.size, 400)) / n2[:, None]
    alpha = (1 - level) / 2
    return np.quantile(draws, alpha, axis=1), np.quantile(draws, 1 - alpha, axis=1)


@pytest.mark.parametrize("rows_b", SECOND_GROUP_ROWS)
@pytest.mark.parametrize(("name", "p_a", "p_b", "kind"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_gap_interval_covers_the_true_gap(name: str, p_a: float, p_b: float, kind: str, rows_b: int) -> None:
    coverage = _gap_coverage(difference_interval, rows_b, p_a, p_b, kind, seed=rows_b)
    assert coverage >= FLOOR, f"{name}, second group {rows_b} rows: coverage {coverage:.4f} " \
                              f"(Monte-Carlo s.e. {MC_SE:.4f})"


@pytest.mark.parametrize("rows_b", SECOND_GROUP_ROWS)
@pytest.mark.parametrize(("name", "p_a", "p_b", "kind"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_rate_interval_covers_each_groups_rate(name: str, p_a: float, p_b: float, kind: str,
                                               rows_b: int) -> None:
    rng = np.random.default_rng(1000 + rows_b)
    k, n = _counts(rng, rows_b, p_b, kind)
    lo, hi, _ = rate_interval(k, n, LEVEL)
    coverage = float(np.mean((lo <= p_b) & (p_b <= hi)))
    assert coverage >= FLOOR, f"{name}, group of {rows_b} rows: coverage {coverage:.4f} (s.e. {MC_SE:.4f})"


@pytest.mark.parametrize("rows_b", SECOND_GROUP_ROWS)
def test_ratio_interval_covers_the_true_ratio(rows_b: int) -> None:
    rng = np.random.default_rng(2000 + rows_b)
    p_a, p_b = 0.15, 0.25
    k_a, n_a = _counts(rng, MAJORITY_ROWS, p_a, "rows")
    k_b, n_b = _counts(rng, rows_b, p_b, "rows")
    k_hi, n_hi, k_lo, n_lo, p_hi, p_lo = _oriented(k_a, n_a, k_b, n_b, p_a, p_b)
    lo, hi, _ = ratio_interval(k_lo, n_lo, k_hi, n_hi, LEVEL)
    truth = p_lo / p_hi
    coverage = float(np.mean((lo <= truth) & (truth <= hi)))
    assert coverage >= FLOOR, f"ratio, second group {rows_b} rows: coverage {coverage:.4f} (s.e. {MC_SE:.4f})"


@pytest.mark.parametrize("rows_b", (200, 40, 20))
def test_seed_averaged_counts_keep_their_level(rows_b: int) -> None:
    """Three seeds whose errors are correlated through each row's own difficulty."""
    rng = np.random.default_rng(3000 + rows_b)
    seeds, trials = 3, 4_000  # s.e. 0.0034 at 0.95: the floor is 2.9 s.e. below nominal
    # Row difficulty ~ Beta(1, 3): population error rate 0.25, seeds agree on hard rows.
    difficulty = rng.beta(1.0, 3.0, (trials, rows_b, 1))
    mean_errors = (rng.random((trials, rows_b, seeds)) < difficulty).mean(axis=2).sum(axis=1)
    lo, hi, _ = rate_interval(mean_errors, np.full(trials, rows_b), LEVEL)
    coverage = float(np.mean((lo <= 0.25) & (hi >= 0.25)))
    assert coverage >= FLOOR, f"{rows_b} rows, 3 seeds: coverage {coverage:.4f}"


@pytest.mark.parametrize("rows_b", (40, 20))
def test_harness_rejects_the_percentile_bootstrap(rows_b: int) -> None:
    """The check can fail: the bootstrap the score intervals replaced does not pass it."""
    # 4,000 trials: s.e. 0.0034, a tenth of the bootstrap's shortfall.
    coverage = _gap_coverage(_percentile_bootstrap_difference, rows_b, 0.10, 0.20, "negatives",
                             seed=rows_b, trials=4_000)
    assert coverage < FLOOR - 0.02, f"bootstrap FPR gap coverage {coverage:.4f} at {rows_b} rows"


def test_method_thresholds_are_the_documented_ones() -> None:
    # The module docstring's coverage figures were computed for these thresholds.
    assert (SMALL_RATE_ROWS, SMALL_GAP_ROWS) == (100, 40)
    assert rate_interval(1, 99, LEVEL)[2] == "wilson-cc" and rate_interval(1, 100, LEVEL)[2] == "wilson"
    assert difference_interval(1, 39, 5, 2000, LEVEL)[2] == "newcombe-cc"
    assert difference_interval(1, 40, 5, 2000, LEVEL)[2] == "newcombe"
