"""TabularPreprocessor: every statistic comes from the fit frame, never the transform frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit import TabularPreprocessor
from audit.data._preprocess import MAX_CATEGORIES, MISSING_CATEGORY


def _standardise(values: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """What StandardScaler does with statistics of ``fitted`` (population std, ddof=0)."""
    return (values - fitted.mean()) / fitted.std()


def test_numeric_statistics_come_from_fit_frame_only() -> None:
    # Fit and transform frames have very different medians, means and scales, so a
    # transform that refitted (or mixed in) its own statistics would give other numbers.
    fit = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 100.0]})
    other = pd.DataFrame({"x": [np.nan, 1000.0, 2000.0, 3000.0]})
    pre = TabularPreprocessor().fit(fit)
    out = pre.transform(other)

    fit_median = 3.0  # median of the observed fit values [1, 2, 4, 100]
    imputed_fit = np.array([1.0, 2.0, fit_median, 4.0, 100.0])
    expected_x = _standardise(np.array([fit_median, 1000.0, 2000.0, 3000.0]), imputed_fit)
    assert pre.feature_names == ["x", "missing_x"]
    np.testing.assert_allclose(out[:, 0], expected_x, rtol=1e-5)
    # The indicator is standardised with the fit frame's missing share (1 of 5) too.
    fit_indicator = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(
        out[:, 1], _standardise(np.array([1.0, 0.0, 0.0, 0.0]), fit_indicator), rtol=1e-5
    )


def test_transform_is_stateless_between_calls() -> None:
    fit = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "b"]})
    pre = TabularPreprocessor().fit(fit)
    first = pre.transform(fit)
    pre.transform(pd.DataFrame({"x": [1e6, -1e6], "c": ["zzz", "yyy"]}))
    np.testing.assert_array_equal(pre.transform(fit), first)
    assert pre.feature_names == ["x", "c_a", "c_b"]


def test_transform_does_not_mutate_input() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["a", None, "b"]})
    before = frame.copy()
    pre = TabularPreprocessor().fit(frame)
    pre.transform(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_missing_numeric_gets_median_and_indicator() -> None:
    fit = pd.DataFrame({"x": [1.0, 2.0, np.nan, 10.0], "z": [1.0, 2.0, 3.0, 4.0]})
    pre = TabularPreprocessor().fit(fit)
    out = pre.transform(fit)
    # Indicator only for the column with gaps in the training rows.
    assert pre.feature_names == ["x", "z", "missing_x"]
    imputed = np.array([1.0, 2.0, 2.0, 10.0])  # NaN -> median of [1, 2, 10] = 2
    np.testing.assert_allclose(out[:, 0], _standardise(imputed, imputed), rtol=1e-5)
    # The missing row and the row whose value equals the median encode identically ...
    assert out[2, 0] == out[1, 0]
    # ... and only the indicator tells them apart.
    indicator = out[:, 2]
    assert indicator[2] > indicator[1]
    assert np.unique(indicator[[0, 1, 3]]).size == 1


def test_gap_only_at_transform_time_is_imputed_without_new_column() -> None:
    fit = pd.DataFrame({"z": [1.0, 2.0, 3.0, 4.0]})
    pre = TabularPreprocessor().fit(fit)
    out = pre.transform(pd.DataFrame({"z": [np.nan, 4.0]}))
    assert out.shape == (2, 1)
    assert np.isfinite(out).all()
    # median 2.5 == mean 2.5, so the imputed value standardises to exactly 0
    assert out[0, 0] == pytest.approx(0.0, abs=1e-7)


def test_missing_categorical_is_its_own_category() -> None:
    fit = pd.DataFrame({"c": ["a", None, "b", np.nan, "a"]})
    pre = TabularPreprocessor().fit(fit)
    out = pre.transform(fit)
    assert pre.feature_names == [f"c_{MISSING_CATEGORY}", "c_a", "c_b"]
    np.testing.assert_array_equal(
        out,
        np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float32),
    )


def test_unseen_category_encodes_to_all_zero() -> None:
    fit = pd.DataFrame({"c": ["a", "b", "a"], "x": [0.0, 1.0, 2.0]})
    pre = TabularPreprocessor().fit(fit)
    # 'zzz' never seen; None is unseen too, because the fit frame had no gaps in 'c'.
    out = pre.transform(pd.DataFrame({"c": ["zzz", None, "b"], "x": [1.0, 1.0, 1.0]}))
    onehot = out[:, [pre.feature_names.index("c_a"), pre.feature_names.index("c_b")]]
    np.testing.assert_array_equal(onehot, [[0, 0], [0, 0], [0, 1]])
    assert out.shape[1] == len(pre.feature_names) == 3


def test_many_categories_are_pooled_to_bounded_width() -> None:
    # 100 categories with distinct frequencies: category k appears k + 1 times.
    values = [f"v{k}" for k in range(100) for _ in range(k + 1)]
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": values}))
    assert len(pre.feature_names) == MAX_CATEGORIES
    out = pre.transform(pd.DataFrame({"c": ["v99", "v0"]}))
    assert out.shape == (2, MAX_CATEGORIES)
    # each known row still lights up exactly one column (rare ones share the pooled one)
    np.testing.assert_array_equal(out.sum(axis=1), [1.0, 1.0])


def test_boolean_columns_are_numeric() -> None:
    fit = pd.DataFrame({
        "flag": [True, False, True, True],
        "nullable": pd.array([True, None, False, True], dtype="boolean"),
        "c": ["a", "b", "a", "b"],
    })
    pre = TabularPreprocessor().fit(fit)
    assert pre.numeric_columns == ["flag", "nullable"]
    assert pre.categorical_columns == ["c"]
    assert "flag" in pre.feature_names and "flag_True" not in pre.feature_names
    out = pre.transform(fit)
    flag = np.array([1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(out[:, 0], _standardise(flag, flag), rtol=1e-5)
    # nullable boolean with a gap: median of [1, 0, 1] = 1, plus an indicator
    assert "missing_nullable" in pre.feature_names
    nullable = np.array([1.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(out[:, 1], _standardise(nullable, nullable), rtol=1e-5)


def test_output_is_float32_and_names_match_width() -> None:
    rng = np.random.default_rng(0)
    n = 50
    frame = pd.DataFrame({
        "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float)),
        "hours": rng.integers(1, 60, n),
        "job": rng.choice(np.array(["a", "b", "c", None], dtype=object), n),
        "flag": rng.random(n) < 0.5,
    })
    pre = TabularPreprocessor().fit(frame)
    out = pre.transform(frame)
    assert out.dtype == np.float32
    assert out.shape == (n, len(pre.feature_names))
    assert len(set(pre.feature_names)) == len(pre.feature_names)
    assert np.isfinite(out).all()


def test_transform_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        TabularPreprocessor().transform(pd.DataFrame({"x": [1.0]}))
