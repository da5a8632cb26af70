"""Small statistics shared by the solver and the privacy audit (pure numpy/scipy)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["sample_std", "t_half_width", "t_interval"]


def sample_std(values: np.ndarray) -> float:
    """Standard deviation with ddof=1; NaN for fewer than two values."""
    values = np.asarray(values, dtype=float)
    return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def t_half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """Half width of the t-interval for the mean of ``values``; NaN for fewer than two."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan
    quantile = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1))
    return quantile * sample_std(values) / math.sqrt(values.size)


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t-interval for the mean of ``values``; NaNs for fewer than two values."""
    half = t_half_width(values, confidence)
    if math.isnan(half):
        return math.nan, math.nan
    mean = float(np.mean(values))
    return mean - half, mean + half
