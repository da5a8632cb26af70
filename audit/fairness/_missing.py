"""Missing features at test time, by group: how each model's error grows as features go
missing, and which training dropout rate copes best with a given missing rate.

Input dropout at rate ``p_train`` trains a model to predict from a random subset of its
inputs, so it should degrade less when features go missing at test time at rate
``p_test``, best when the two match (the reference text's section on missing data).
Missingness often differs by group (records are sparser for some), so a model can be
robust for one group and brittle for another. This module measures that.

How a missing feature is treated
--------------------------------
Exactly as inverted dropout treats a dropped input while training: all the encoded
columns of a missing feature are set to zero (the training mean of a standardised
numeric column and its missing-value indicator; no category at all for a one-hot block),
and the row's observed columns are scaled by ``1 / (1 - p)``, ``p`` being the row's
missing rate. At ``p_train = p_test`` a dropout model then sees inputs missing at the rate
it was trained with. For a feature encoded in one column (a numeric feature with no
missing values) that is exactly the input distribution it was trained on; for one whose
encoding spans several columns (a one-hot block, a value with its missing-value
indicator) it is not quite: dropout drops encoded columns one at a time, a missing
feature loses all of its columns together. Features go missing completely at random (MCAR):
each feature of each row independently with its row's rate, which is the group's rate.
A deployment that imputes the mean without rescaling sees somewhat different inputs;
:data:`MISSING_TREATMENT` says this in every report.

Randomness
----------
Each (seed, draw) uses one uniform number per (test row, feature), the same for every
arm and every rate: a feature missing at rate 0.2 is also missing at 0.3, and arms are
compared on identical masks, so curves are smooth and differences between arms are
paired.

Intervals
---------
``ci_low``/``ci_high`` of an error are the score interval of the seed- and draw-averaged
rate (:func:`audit.fairness._intervals.rate_interval`, conservative for averaged 0/1
outcomes, as for the audit's group rates). ``change`` is the group's error at ``p_test``
minus its error without missing features, averaged per row over seeds and draws; its
interval is the normal one over the group's test rows (the rows are independent, each
row's two errors are not), ``change_se`` its standard error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._exceptions import ConfigError, InternalError
from .._stats import sample_std
from .._validation import INVALID, Interval, check_param, validate_params
from ..defaults import (
    DEFAULT_MISSING_DRAWS,
    DEFAULT_MISSING_GRID,
    DEFAULT_MISSING_TRAIN_GRID,
    MAX_DROPOUT,
)
from ..result._schema import MISSING_COLUMNS, MISSING_MATCH_COLUMNS
from ._intervals import rate_interval

__all__ = [
    "MISSING_TREATMENT",
    "MissingFeaturesConfig",
    "mask_features",
    "missing_errors",
    "missing_rows",
    "parse_missing_rates",
]

MISSING_TREATMENT = (
    "A missing feature is treated exactly as inverted dropout treats a dropped input in "
    "training: its encoded columns are set to zero (the training mean after "
    "standardisation; no category for a one-hot feature) and the row's observed columns are "
    "scaled by 1/(1 - p), p being the row's missing rate. Features go missing completely at "
    "random, each feature of each row independently at its group's rate. A deployment that "
    "imputes the mean without rescaling may see different errors."
)

_RATE = Interval(float, 0, MAX_DROPOUT)


@dataclass(frozen=True, kw_only=True)
class MissingFeaturesConfig:
    """Options of the missing-feature measurement (off unless an audit is given one).

    Attributes
    ----------
    rates
        The missing rate of each group's features in the scenario to report, e.g.
        ``{"Female": 0.3, "Male": 0.1}``; one number for every group; or ``None`` (the
        grid only). Each group's error is also measured at its own rate.
    grid
        The test-time missing rates ``p_test`` at which every group's error is measured
        (every group at the same rate); 0 is always included.
    train_grid
        Uniform dropout rates ``p_train`` of the extra models trained (every seed) to
        find which training rate copes best with each ``p_test``; empty: none.
    draws
        Independent masks per test row and rate (more draws, less masking noise).
    """

    rates: Mapping[str, float] | float | None = None
    grid: tuple[float, ...] = DEFAULT_MISSING_GRID
    train_grid: tuple[float, ...] = DEFAULT_MISSING_TRAIN_GRID
    draws: int = DEFAULT_MISSING_DRAWS

    def __post_init__(self) -> None:
        # The errors name the public parameters (missing_grid, ...): what the CLI's flags
        # and the app's labels are looked up by.
        for field, param, what in (("grid", "missing_grid", "the test-time missing rates p_test"),
                                   ("train_grid", "missing_train_grid",
                                    "the training dropout rates p_train")):
            object.__setattr__(self, field, _rates(getattr(self, field), what, param))
        validate_params("missing features", self, {"draws": Interval(int, 1, None)})
        if not any(p > 0 for p in self.grid):
            given = ", ".join(f"{p:g}" for p in self.grid) or "none"
            raise ConfigError(
                f"the test-time missing rates p_test ({given}) hold no rate above 0, so nothing "
                "would go missing; give rates such as 0.1,0.2,0.3 (0 is always added)",
                param="missing_grid")
        object.__setattr__(self, "grid", tuple(sorted({0.0, *map(float, self.grid)})))
        object.__setattr__(self, "train_grid", tuple(sorted(set(map(float, self.train_grid)))))
        if isinstance(self.rates, Mapping):
            if not self.rates:
                raise ConfigError("missing-feature rates must name at least one group, e.g. "
                                  "{'Female': 0.3, 'Male': 0.1}", param="missing_rates")
            object.__setattr__(self, "rates", {
                str(g): check_param("", f"the missing-feature rate of '{g}'", r, _RATE,
                                    param="missing_rates")
                for g, r in self.rates.items()})
        elif self.rates is not None:
            object.__setattr__(self, "rates", check_param(
                "", "the missing-feature rate", self.rates, _RATE, param="missing_rates",
                note="one rate for every group, or one per group"))

    def group_rates(self, group_labels: Sequence[str]) -> dict[str, float]:
        """Each group's scenario rate (empty without ``rates``); raises on unknown or
        missing group names, naming them and the audit's groups."""
        if self.rates is None:
            return {}
        if not isinstance(self.rates, Mapping):
            return {str(g): float(self.rates) for g in group_labels}
        unknown = [g for g in self.rates if g not in group_labels]
        absent = [g for g in group_labels if g not in self.rates]
        if unknown or absent:
            parts = [f"unknown group(s) {unknown}"] if unknown else []
            parts += [f"no rate for group(s) {absent}"] if absent else []
            example = ",".join(f"{g}=0.2" for g in group_labels)
            raise ConfigError(
                f"missing-feature rates: {'; '.join(parts)}. Give one rate per group; the groups "
                f"are {list(group_labels)} (e.g. {example}).", param="missing_rates")
        return {str(g): float(self.rates[g]) for g in group_labels}

    def to_dict(self) -> dict[str, Any]:
        rates = dict(self.rates) if isinstance(self.rates, Mapping) else self.rates
        return {"rates": rates, "grid": list(self.grid), "train_grid": list(self.train_grid),
                "draws": self.draws}


def parse_missing_rates(text: str) -> dict[str, float] | float:
    """Missing rates from text: ``"Female=0.3,Male=0.1"`` per group, ``"0.2"`` for all, or a
    JSON object.

    Examples
    --------
    >>> parse_missing_rates("Female=0.3, Male=0.1")
    {'Female': 0.3, 'Male': 0.1}
    >>> parse_missing_rates("0.2")
    0.2

    Group names holding ',' or '=' are given as a JSON object:

    >>> parse_missing_rates('{"Black, Hispanic": 0.3, "White": 0.1}')
    {'Black, Hispanic': 0.3, 'White': 0.1}
    """
    text = str(text).strip()
    if not text:
        raise ConfigError("missing rates are empty; give e.g. 'Female=0.3,Male=0.1' or '0.2'",
                          param="missing_rates")
    if text.startswith("{"):
        return _json_rates(text)
    if "=" not in text:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"missing rates must be 'group=rate,...' or one number, not {text!r}",
                              param="missing_rates") from None
    out: dict[str, float] = {}
    for piece in text.split(","):
        group, sep, value = piece.rpartition("=")
        group = group.strip()
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not sep or not group or math.isnan(rate):
            raise ConfigError(f"cannot read {piece.strip()!r} in missing rates {text!r}: write "
                              "group=rate pairs separated by commas, e.g. 'Female=0.3,Male=0.1'",
                              param="missing_rates")
        if group in out:
            raise ConfigError(f"group {group!r} appears twice in missing rates {text!r}",
                              param="missing_rates")
        out[group] = rate
    return out


def _rates(values: Any, what: str, param: str) -> tuple[float, ...]:
    """``values`` as a tuple of rates; an error names the first value that is not one."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ConfigError(f"{what} must be a list of rates such as 0.1,0.2,0.3, not {values!r}", param=param)
    rates = []
    for value in values:
        rate = _RATE.convert(value)
        if rate is INVALID:
            raise ConfigError(f"{what}: {value!r} is not a rate; each must be a number from 0 to "
                              f"{MAX_DROPOUT:g}", param=param)
        rates.append(float(rate))
    return tuple(rates)


def _json_rates(text: str) -> dict[str, float]:
    """Rates as a JSON object, for group names that hold ',' or '='."""
    try:
        rates = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"missing rates {text!r} are not valid JSON ({exc.msg}); write e.g. "
                          '{"Black, Hispanic": 0.3, "White": 0.1}', param="missing_rates") from None
    if not isinstance(rates, dict) or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) for r in rates.values()):
        raise ConfigError(f"missing rates {text!r} must map each group to a number, e.g. "
                          '{"Black, Hispanic": 0.3, "White": 0.1}', param="missing_rates")
    return {str(g): float(r) for g, r in rates.items()}


def mask_features(X: np.ndarray, column_feature: np.ndarray, row_rates: np.ndarray,
                  uniforms: np.ndarray) -> np.ndarray:
    """``X`` with features missing as inverted dropout drops inputs (module docstring).

    Parameters
    ----------
    X
        Encoded rows ``(n, columns)``.
    column_feature
        The feature (index into ``uniforms``' columns) each encoded column comes from.
    row_rates
        Each row's missing rate ``(n,)``, below 1.
    uniforms
        Uniform numbers ``(n, features)``: feature ``j`` of row ``i`` is missing when
        ``uniforms[i, j] < row_rates[i]``.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 3.0]])
    >>> mask_features(X, np.array([0, 1, 1]), np.array([0.5]), np.array([[0.9, 0.1]]))
    array([[2., 0., 0.]])
    """
    rates = np.asarray(row_rates, dtype=float)
    if np.any(rates >= 1) or np.any(rates < 0):
        raise InternalError("missing rates must lie in [0, 1)")
    missing = uniforms < rates[:, None]
    keep = ~missing[:, column_feature]
    return np.asarray(X * keep / (1.0 - rates)[:, None], dtype=X.dtype)


Predict = Callable[[np.ndarray], np.ndarray]


def missing_errors(predict: Predict, X: np.ndarray, y: np.ndarray, column_feature: np.ndarray,
                   points: Sequence[float], *, draws: int, seed: int, threshold: float) -> np.ndarray:
    """Each test row's error at each missing rate, averaged over ``draws`` masks.

    Returns ``(len(points), n)``: the share of draws in which row ``i``'s prediction at
    rate ``points[p]`` (every row at that rate) was wrong. A rate of 0 needs no draws.
    """
    n_features = int(column_feature.max()) + 1 if column_feature.size else 0
    out = np.zeros((len(points), X.shape[0]))
    clean = None
    for draw in range(draws):
        uniforms = np.random.default_rng([seed, 0x3155, draw]).random((X.shape[0], n_features))
        for p, rate in enumerate(points):
            if rate == 0:
                if clean is None:
                    clean = _wrong(predict(X), y, threshold)
                out[p] += clean
                continue
            masked = mask_features(X, column_feature, np.full(X.shape[0], rate), uniforms)
            out[p] += _wrong(predict(masked), y, threshold)
    return out / draws


def _wrong(scores: np.ndarray, y: np.ndarray, threshold: float) -> np.ndarray:
    return ((scores >= threshold).astype(int) != y).astype(float)


def missing_rows(errors: np.ndarray, groups: np.ndarray, points: Sequence[float],
                 wanted: Mapping[str, Sequence[float]], *, level: float,
                 scenario: Mapping[str, float] | None = None, overall: bool = False,
                 ) -> list[dict[str, Any]]:
    """Tidy rows (one per group x ``p_test``) from per-seed errors ``(seeds, points, n)``.

    ``wanted[group]`` lists the rates reported for that group (the grid and the group's
    scenario rate); ``scenario[group]`` marks its scenario rate; ``overall`` adds rows for
    all test rows together (group ``"overall"``).
    """
    if errors.ndim != 3 or errors.shape[1] != len(points):
        raise InternalError(f"errors must be (seeds, {len(points)}, rows), not {errors.shape}")
    base = list(points).index(0.0)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    selections = [(str(g), groups == g) for g in wanted]
    if overall:
        selections.append(("overall", np.ones(groups.shape[0], dtype=bool)))
    rows = []
    for group, sel in selections:
        n = int(sel.sum())
        rates = wanted.get(group, points)
        for p, rate in enumerate(points):
            if rate not in rates or n == 0:
                continue
            per_seed = errors[:, p, sel].mean(axis=1)
            value = float(per_seed.mean())
            lo, hi, method = rate_interval(value * n, n, level)
            change = (errors[:, p, sel] - errors[:, base, sel]).mean(axis=0)
            se = float(np.std(change, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            mean_change = float(change.mean())
            rows.append({
                "p_test": float(rate), "group": group, "metric": "error_rate", "value": value,
                "std": sample_std(per_seed), "ci_low": float(lo), "ci_high": float(hi),
                "ci_method": str(method), "change": mean_change,
                "change_ci_low": mean_change - z * se, "change_ci_high": mean_change + z * se,
                "change_se": se, "n": n, "seeds": int(errors.shape[0]),
                "scenario": bool(scenario is not None and scenario.get(group) == rate),
            })
    return rows


def missing_frame(rows: list[dict[str, Any]], *, match: bool = False) -> pd.DataFrame:
    """The ``missing`` (or with ``match``, the ``missing_match``) frame from its rows, in its
    canonical columns and order."""
    columns = MISSING_MATCH_COLUMNS if match else MISSING_COLUMNS
    if not rows:
        return pd.DataFrame(columns=list(columns))
    return pd.DataFrame(rows).reindex(columns=list(columns)).reset_index(drop=True)
