"""Tests for the vectorised group-stratified bootstrap in ``audit.fairness._bootstrap``."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score, zero_one_loss

from audit import METRICS
from audit.fairness._bootstrap import (
    BootstrapDraws,
    _build_plan,
    _draw_counts,
    _metrics_from_counts,
    bootstrap_group_metrics,
    group_gaps,
    percentile_interval,
    point_group_metrics,
)

ATOL = 1e-12


def _make_data(
    n: int = 240, n_seeds: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three unequal groups; scores rounded to 0.05 so ties are frequent."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["b", "a", "c"]), size=n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 0.4).astype(int)
    raw = rng.random((n_seeds, n)) * 0.6 + 0.35 * y
    scores = np.round(raw / 0.05) * 0.05
    scores = np.clip(scores, 0.0, 1.0)
    scores[:, :3] = [0.0, 1.0, 0.5]  # exact edges and the threshold itself
    return y, scores, groups


def _reference_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Obviously-correct sklearn metrics on explicitly resampled rows."""
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    nan = float("nan")
    # AUC is undefined with one class (sklearn warns or raises, by version).
    auc = nan if np.unique(y).size < 2 else roc_auc_score(y, p)
    return {
        "error_rate": (fp + fn) / len(y),
        "fpr": fp / (fp + tn) if fp + tn else nan,
        "fnr": fn / (fn + tp) if fn + tp else nan,
        "selection_rate": (tp + fp) / len(y),
        "log_loss": log_loss(y, p, labels=[0, 1]),
        "roc_auc": auc,
    }


# --------------------------------------------------------------------------
# point estimates vs fairlearn / sklearn


def test_point_metrics_match_fairlearn_metricframe() -> None:
    y, scores, groups = _make_data()
    point = point_group_metrics(y, scores, groups)
    assert point.group_labels == ("a", "b", "c")
    assert point.n_resamples == 1
    for s in range(scores.shape[0]):
        pred = (scores[s] >= 0.5).astype(int)
        mf_pred = MetricFrame(
            metrics={
                "error_rate": zero_one_loss,
                "fpr": false_positive_rate,
                "fnr": false_negative_rate,
                "selection_rate": selection_rate,
            },
            y_true=y,
            y_pred=pred,
            sensitive_features=groups,
        )
        mf_score = MetricFrame(
            metrics={
                "log_loss": lambda yt, yp: log_loss(yt, yp, labels=[0, 1]),
                "roc_auc": roc_auc_score,
            },
            y_true=y,
            y_pred=scores[s],
            sensitive_features=groups,
        )
        for name in METRICS:
            mf = mf_score if name in ("log_loss", "roc_auc") else mf_pred
            expected = mf.by_group[name].loc[list(point.group_labels)].to_numpy(dtype=float)
            np.testing.assert_allclose(point.by_group[name][0, s], expected, rtol=0, atol=ATOL)
            np.testing.assert_allclose(point.overall[name][0, s], mf.overall[name], atol=ATOL)


def test_point_metrics_threshold_and_subset() -> None:
    y, scores, groups = _make_data(n_seeds=1)
    point = point_group_metrics(y, scores[0], groups, threshold=0.3, metrics=["fpr", "roc_auc"])
    assert point.metrics == ("fpr", "roc_auc")
    assert set(point.by_group) == {"fpr", "roc_auc"}
    neg = y == 0
    expected = np.mean(scores[0][neg] >= 0.3)
    np.testing.assert_allclose(point.overall["fpr"][0, 0], expected, atol=ATOL)


# --------------------------------------------------------------------------
# vectorised count-matrix metrics vs a slow loop over explicit indices


def _explicit_draws(
    groups: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> list[list[np.ndarray]]:
    """Per resample, per sorted group: explicit within-group row indices."""
    labels = np.unique(groups)
    rows = [np.flatnonzero(groups == g) for g in labels]
    return [[rng.choice(r, size=r.size, replace=True) for r in rows] for _ in range(n_resamples)]


def test_count_matrix_helper_matches_reference_loop() -> None:
    y, scores, groups = _make_data(n=150, n_seeds=2, seed=3)
    # A 4-row group with a single positive: ~32% of its resamples contain no
    # positive, so FNR and AUC must come out NaN there.
    y = np.concatenate([y, [1, 0, 0, 0]])
    scores = np.concatenate([scores, [[0.7, 0.2, 0.7, 0.1], [0.4, 0.4, 0.6, 0.4]]], axis=1)
    groups = np.concatenate([groups, ["d"] * 4])
    n = y.size
    draws = _explicit_draws(groups, n_resamples=30, rng=np.random.default_rng(11))

    plan = _build_plan(y, scores, groups, 0.5, METRICS)
    counts = np.stack([np.bincount(np.concatenate(d), minlength=n) for d in draws])
    by_group, overall = _metrics_from_counts(plan, counts[:, plan.order])

    n_groups = len(plan.group_labels)
    ref_group = {m: np.empty((len(draws), 2, n_groups)) for m in METRICS}
    ref_all = {m: np.empty((len(draws), 2)) for m in METRICS}
    for b, per_group in enumerate(draws):
        pooled = np.concatenate(per_group)
        for s in range(2):
            for k, idx in enumerate(per_group):
                for m, v in _reference_metrics(y[idx], scores[s, idx]).items():
                    ref_group[m][b, s, k] = v
            for m, v in _reference_metrics(y[pooled], scores[s, pooled]).items():
                ref_all[m][b, s] = v

    assert np.isnan(ref_group["roc_auc"][:, :, 3]).any(), "test data must exercise NaN"
    assert np.isnan(ref_group["fnr"][:, :, 3]).any()
    for m in METRICS:
        np.testing.assert_allclose(by_group[m], ref_group[m], rtol=0, atol=ATOL, equal_nan=True)
        np.testing.assert_allclose(overall[m], ref_all[m], rtol=0, atol=ATOL, equal_nan=True)


def test_bootstrap_is_helper_applied_to_within_group_counts() -> None:
    y, scores, groups = _make_data(n=120)
    plan = _build_plan(y, scores, groups, 0.5, METRICS)
    rngs = np.random.default_rng(5).spawn(len(plan.group_labels))
    counts = _draw_counts(rngs, plan.bounds, 25)
    assert counts.shape == (25, y.size)
    for k in range(len(plan.group_labels)):
        lo, hi = plan.bounds[k], plan.bounds[k + 1]
        # Within-group resampling: every resample keeps each group's size.
        assert np.all(counts[:, lo:hi].sum(axis=1) == hi - lo)
    by_group, overall = _metrics_from_counts(plan, counts)
    draws = bootstrap_group_metrics(y, scores, groups, n_resamples=25, seed=5)
    for m in METRICS:
        np.testing.assert_array_equal(draws.by_group[m], by_group[m])
        np.testing.assert_array_equal(draws.overall[m], overall[m])


# --------------------------------------------------------------------------
# structure, determinism, chunking, seeds


def test_shapes_labels_and_dtypes() -> None:
    y, scores, groups = _make_data(n=90)
    groups = np.where(groups == "a", 10, np.where(groups == "b", 2, 7))  # non-str labels
    draws = bootstrap_group_metrics(y, scores, groups, n_resamples=17)
    assert isinstance(draws, BootstrapDraws)
    assert draws.metrics == METRICS
    assert draws.n_resamples == 17
    assert draws.group_labels == ("10", "2", "7")  # np.unique order of the strings
    for m in METRICS:
        assert draws.by_group[m].shape == (17, 3, 3)
        assert draws.overall[m].shape == (17, 3)
        assert draws.by_group[m].dtype == np.float64
        assert draws.overall[m].dtype == np.float64


def test_determinism_and_seed_sensitivity() -> None:
    y, scores, groups = _make_data(n=100)
    a = bootstrap_group_metrics(y, scores, groups, n_resamples=50, seed=7)
    b = bootstrap_group_metrics(y, scores, groups, n_resamples=50, seed=7)
    c = bootstrap_group_metrics(y, scores, groups, n_resamples=50, seed=8)
    for m in METRICS:
        np.testing.assert_array_equal(a.by_group[m], b.by_group[m])
        np.testing.assert_array_equal(a.overall[m], b.overall[m])
        assert not np.array_equal(a.by_group[m], c.by_group[m], equal_nan=True)


@pytest.mark.parametrize("max_chunk_elements", [1, 150, 1_000])
def test_chunking_does_not_change_draws(max_chunk_elements: int) -> None:
    y, scores, groups = _make_data(n=100)
    ref = bootstrap_group_metrics(y, scores, groups, n_resamples=23, seed=1)
    chunked = bootstrap_group_metrics(
        y, scores, groups, n_resamples=23, seed=1, max_chunk_elements=max_chunk_elements
    )
    for m in METRICS:
        np.testing.assert_array_equal(chunked.by_group[m], ref.by_group[m])
        np.testing.assert_array_equal(chunked.overall[m], ref.overall[m])


def test_single_group_overall_equals_group() -> None:
    y, scores, _ = _make_data(n=80)
    draws = bootstrap_group_metrics(y, scores, np.zeros(80), n_resamples=30)
    assert draws.group_labels == ("0.0",)
    for m in METRICS:
        np.testing.assert_allclose(draws.overall[m], draws.by_group[m][:, :, 0], atol=ATOL)


def test_multi_seed_shares_resampled_rows() -> None:
    y, scores, groups = _make_data(n=120, n_seeds=3)
    joint = bootstrap_group_metrics(y, scores, groups, n_resamples=40, seed=4)
    singles = [
        bootstrap_group_metrics(y, scores[s], groups, n_resamples=40, seed=4) for s in range(3)
    ]
    for m in METRICS:
        for s in range(3):
            # Same seed => same rows, whichever other score vectors ride along.
            np.testing.assert_allclose(
                joint.by_group[m][:, s], singles[s].by_group[m][:, 0], atol=ATOL
            )
            np.testing.assert_allclose(joint.overall[m][:, s], singles[s].overall[m][:, 0])
        # Seed-averaged draws are the per-resample mean of the per-seed draws.
        per_seed_mean = np.mean([single.by_group[m][:, 0] for single in singles], axis=0)
        np.testing.assert_allclose(joint.by_group[m].mean(axis=1), per_seed_mean, atol=ATOL)


def test_bootstrap_std_matches_binomial_theory() -> None:
    # One group of n rows with exactly k = p*n errors: each resample's error
    # count is Binomial(n, p), so the error rate's bootstrap std is exactly
    # sqrt(p(1-p)/n).  With B = 2000 draws the sample std has relative
    # standard error ~ 1/sqrt(2(B-1)) ~ 1.6% (binomial kurtosis is ~normal
    # here), so a 10% tolerance is > 6 standard errors: no flakiness, yet a
    # wrong resampling scheme (e.g. pooled across groups) fails clearly.
    n, p = 400, 0.2
    y = np.zeros(n, dtype=int)
    scores = np.full(n, 0.1)
    scores[: int(p * n)] = 0.9  # predicted positive, truly negative: errors
    other_y = np.ones(300, dtype=int)  # second group with a different error
    other_scores = np.where(np.arange(300) < 150, 0.1, 0.9)
    draws = bootstrap_group_metrics(
        np.concatenate([y, other_y]),
        np.concatenate([scores, other_scores]),
        np.array(["g"] * n + ["h"] * 300),
        n_resamples=2000,
        seed=0,
        metrics=["error_rate"],
    )
    err = draws.by_group["error_rate"][:, 0, 0]
    expected_sd = np.sqrt(p * (1 - p) / n)
    assert abs(err.std(ddof=1) / expected_sd - 1) < 0.10
    # Mean of draws within 5 Monte-Carlo standard errors of the observed p.
    assert abs(err.mean() - p) < 5 * expected_sd / np.sqrt(2000)
    lo, hi = percentile_interval(err)
    assert lo < p < hi


# --------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 1, 1]}, r"length mismatch: scores has 4 rows"),
        ({"groups": ["a", "b", "a"]}, r"length mismatch: groups has 3 rows"),
        ({"y_true": [0, 1, 2, 1]}, r"y_true must be binary 0/1 or bool; found values \[2\]"),
        ({"y_true": ["x", "y", "x", "y"]}, r"y_true must be binary 0/1 or bool, got dtype"),
        ({"y_true": [[0, 1, 0, 1]]}, r"y_true must be 1-dimensional"),
        ({"y_true": [], "scores": [], "groups": []}, r"y_true is empty"),
        ({"scores": [0.1, 1.2, 0.3, 0.4]}, r"scores must lie in \[0, 1\]; found min 0.1, max 1.2"),
        ({"scores": [0.1, -0.2, 0.3, 0.4]}, r"scores must lie in \[0, 1\]"),
        ({"scores": [0.1, np.nan, 0.3, 0.4]}, r"scores contain NaN"),
        ({"scores": ["a", "b", "c", "d"]}, r"scores must be numeric probabilities"),
        ({"scores": np.zeros((1, 1, 4))}, r"scores must have shape \(n,\) or \(S, n\)"),
        ({"scores": np.zeros((0, 4))}, r"scores has no score vectors"),
        ({"groups": [["a", "b", "a", "b"]]}, r"groups must be 1-dimensional"),
        ({"threshold": 1.5}, r"threshold must be a number in \[0, 1\], got 1.5"),
        ({"threshold": float("nan")}, r"threshold must be a number in \[0, 1\]"),
        (
            {"metrics": ["error_rate", "auc"]},
            r"unknown metric name\(s\) \['auc'\]; valid .*roc_auc",
        ),
        ({"metrics": []}, r"metrics must name at least one metric"),
        ({"metrics": ["fpr", "fpr"]}, r"metrics contains duplicates"),
        ({"n_resamples": 0}, r"n_resamples must be an integer >= 1, got 0"),
        ({"n_resamples": 2.5}, r"n_resamples must be an integer >= 1"),
        ({"max_chunk_elements": 0}, r"max_chunk_elements must be an integer >= 1, got 0"),
    ],
)
def test_validation_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "y_true": [0, 1, 0, 1],
        "scores": [0.1, 0.9, 0.4, 0.6],
        "groups": ["a", "a", "b", "b"],
    }
    args.update(kwargs)
    args.setdefault("n_resamples", 5)
    with pytest.raises(ValueError, match=match):
        bootstrap_group_metrics(**args)  # type: ignore[arg-type]


def test_point_metrics_validate_too() -> None:
    with pytest.raises(ValueError, match=r"unknown metric name"):
        point_group_metrics([0, 1], [0.2, 0.8], ["a", "a"], metrics=["brier"])
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        point_group_metrics([0, 1], [0.2, 0.8], ["a", "a"], threshold=-0.1)


def test_bool_labels_accepted() -> None:
    y = np.array([True, False, True, False])
    point = point_group_metrics(y, [0.9, 0.1, 0.4, 0.6], ["a", "a", "b", "b"])
    np.testing.assert_allclose(point.by_group["error_rate"][0, 0], [0.0, 1.0])


# --------------------------------------------------------------------------
# percentile_interval / group_gaps


def test_percentile_interval_known_values_and_all_nan() -> None:
    draws = np.column_stack([np.arange(101.0), np.full(101, np.nan), np.arange(101.0)])
    draws[::2, 2] = np.nan  # NaNs are ignored, not propagated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = percentile_interval(draws, level=0.9)
    # Column 2 keeps 1, 3, ..., 99: 5th percentile at 0.05 * 49 = 2.45 -> 5.9.
    np.testing.assert_allclose(lo, [5.0, np.nan, 5.9])
    np.testing.assert_allclose(hi, [95.0, np.nan, 94.1])
    lo_t, hi_t = percentile_interval(draws.T, level=0.9, axis=1)
    np.testing.assert_allclose(lo_t, lo)
    np.testing.assert_allclose(hi_t, hi)
    with pytest.raises(ValueError, match=r"level must be strictly between 0 and 1, got 1.0"):
        percentile_interval(draws, level=1.0)


def test_group_gaps_known_values() -> None:
    by_group = np.array(
        [
            [0.2, 0.5, np.nan],
            [np.nan, np.nan, np.nan],
            [0.0, 0.0, 0.0],
            [0.0, 0.25, 0.1],
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diff, ratio = group_gaps(by_group)
    np.testing.assert_allclose(diff, [0.3, np.nan, 0.0, 0.25])
    np.testing.assert_allclose(ratio, [0.4, np.nan, np.nan, 0.0])
    draws = bootstrap_group_metrics(*_make_data(n=60), n_resamples=5)
    d, r = group_gaps(draws.by_group["error_rate"])
    assert d.shape == r.shape == (5, 3)


# --------------------------------------------------------------------------
# dependency hygiene


def test_module_imports_only_numpy() -> None:
    # Empty stand-ins for the packages, so that only the module and what it imports
    # itself (fairpriv's exceptions) run, not audit/__init__.py.
    root = Path(__file__).resolve().parents[1] / "audit"
    path = root / "fairness" / "_bootstrap.py"
    packages = (("audit", str(root)), ("audit.fairness", str(root / "fairness")))
    code = (
        "import importlib.util, sys, types\n"
        f"for name, folder in {packages!r}:\n"
        "    pkg = types.ModuleType(name); pkg.__path__ = [folder]; sys.modules[name] = pkg\n"
        f"spec = importlib.util.spec_from_file_location('audit.fairness._bootstrap', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "sys.modules['audit.fairness._bootstrap'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "assert mod.ConfigError.__module__ == 'audit._exceptions'\n"
        "bad = {'torch', 'pandas', 'fairlearn', 'streamlit', 'sklearn'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
