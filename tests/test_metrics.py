from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from audit import METRICS, evaluate_predictions
from audit.fairness._metrics import GAP_ONLY_METRICS, fairlearn_metric_frame


def toy(n: int = 4000, seed: int = 0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores informative for y; group B's scores shifted by `shift` (0 = identical groups)."""
    rng = np.random.default_rng(seed)
    groups = np.where(rng.random(n) < 0.3, "B", "A")
    y = rng.integers(0, 2, n)
    logits = 2.0 * (y - 0.5) + rng.normal(0, 1.0, n) + np.where(groups == "B", shift, 0.0)
    return y, 1 / (1 + np.exp(-logits)), groups


def test_point_values_match_fairlearn_and_sklearn() -> None:
    y, s, g = toy()
    by_group, overall, _ = evaluate_predictions(y, s[None, :], g, seeds=[7], n_bootstrap=0)
    frame = fairlearn_metric_frame(y, s, g)
    for grp in ("A", "B"):
        mask = g == grp
        row = by_group[(by_group["seed"] == 7) & (by_group["group"] == grp)].set_index("metric")
        assert row.loc["error_rate", "value"] == pytest.approx(np.mean((s[mask] >= 0.5) != y[mask]))
        assert row.loc["log_loss", "value"] == pytest.approx(log_loss(y[mask], s[mask]))
        assert row.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(y[mask], s[mask]))
        for m in METRICS:
            assert row.loc[m, "value"] == pytest.approx(frame.by_group.loc[grp, m])
        assert row.loc["error_rate", "n"] == mask.sum()
    err = overall[(overall["seed"] == 7) & (overall["metric"] == "error_rate")]["value"].iloc[0]
    assert err == pytest.approx(np.mean((s >= 0.5) != y))


def test_aggregate_is_mean_and_std_over_seeds() -> None:
    y, s0, g = toy(seed=1)
    _, s1, _ = toy(seed=2)
    scores = np.vstack([s0, s1])
    by_group, _, _ = evaluate_predictions(y, scores, g, seeds=[0, 1], n_bootstrap=50)
    per_seed = by_group[by_group["seed"].notna() & (by_group["metric"] == "fpr")]
    agg = by_group[by_group["seed"].isna() & (by_group["metric"] == "fpr")].set_index("group")
    for grp in ("A", "B"):
        vals = per_seed[per_seed["group"] == grp]["value"].to_numpy()
        assert agg.loc[grp, "value"] == pytest.approx(vals.mean())
        assert agg.loc[grp, "std"] == pytest.approx(vals.std(ddof=1))
        assert agg.loc[grp, "ci_low"] <= agg.loc[grp, "value"] <= agg.loc[grp, "ci_high"]


def test_gap_of_identical_groups_does_not_exceed_uncertainty() -> None:
    y, s, g = toy(n=3000, seed=3, shift=0.0)
    _, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=400)
    err = gaps[gaps["seed"].isna() & (gaps["metric"] == "error_rate") & (gaps["gap"] == "difference")].iloc[0]
    # Same score model in both groups: the CI of the signed difference covers 0.
    assert err["ci_low"] <= 0 <= err["ci_high"]
    assert not err["exceeds_uncertainty"]


def test_real_gap_exceeds_uncertainty_and_names_groups() -> None:
    y, s, g = toy(n=4000, seed=4, shift=1.5)  # group B's scores pushed up: more false positives
    _, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=400)
    fpr = gaps[gaps["seed"].isna() & (gaps["metric"] == "fpr") & (gaps["gap"] == "difference")].iloc[0]
    assert fpr["max_group"] == "B" and fpr["min_group"] == "A"
    assert fpr["exceeds_uncertainty"]
    ratio = gaps[gaps["seed"].isna() & (gaps["metric"] == "fpr") & (gaps["gap"] == "ratio")].iloc[0]
    assert ratio["value"] < 1 and ratio["ci_high"] < 1 and ratio["exceeds_uncertainty"]
    dp = gaps[gaps["seed"].isna() & (gaps["metric"] == "demographic_parity")].iloc[0]
    sel = gaps[gaps["seed"].isna() & (gaps["metric"] == "selection_rate") & (gaps["gap"] == "difference")]
    assert dp["value"] == pytest.approx(sel["value"].iloc[0])
    eo = gaps[gaps["seed"].isna() & (gaps["metric"] == "equalized_odds")].iloc[0]
    fnr = gaps[gaps["seed"].isna() & (gaps["metric"] == "fnr") & (gaps["gap"] == "difference")].iloc[0]
    assert eo["value"] == pytest.approx(max(fpr["value"], fnr["value"]))


def test_gap_rows_cover_every_metric_and_summary() -> None:
    y, s, g = toy(n=500)
    _, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=20)
    agg = gaps[gaps["seed"].isna()]
    assert set(agg["metric"]) == set(METRICS) | set(GAP_ONLY_METRICS)
    assert len(agg) == 2 * len(METRICS) + len(GAP_ONLY_METRICS)


def test_group_with_one_class_gives_nan_not_zero() -> None:
    y, s, g = toy(n=600)
    g = g.copy()
    g[:40] = "C"
    y = y.copy()
    y[:40] = 1  # group C has no negatives: FPR and AUC undefined
    by_group, _, _ = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0)
    c = by_group[(by_group["group"] == "C") & by_group["seed"].notna()].set_index("metric")
    assert np.isnan(c.loc["fpr", "value"])
    assert np.isnan(c.loc["roc_auc", "value"])
    assert not np.isnan(c.loc["fnr", "value"])


def test_no_bootstrap_gives_nan_intervals() -> None:
    y, s, g = toy(n=300)
    by_group, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0)
    assert by_group["ci_low"].isna().all()
    assert gaps["exceeds_uncertainty"].isna().all()


def test_frames_have_stable_columns_and_int_seed() -> None:
    y, s, g = toy(n=300)
    by_group, overall, gaps = evaluate_predictions(y, s[None, :], g, seeds=[5], n_bootstrap=10)
    assert list(by_group.columns) == ["seed", "group", "metric", "value", "std", "ci_low", "ci_high", "n"]
    assert list(overall.columns) == ["seed", "metric", "value", "std", "ci_low", "ci_high", "n"]
    assert by_group["seed"].dtype == pd.Int64Dtype()
    assert set(gaps.columns) >= {"gap", "max_group", "min_group", "exceeds_uncertainty"}


def test_seed_count_mismatch() -> None:
    y, s, g = toy(n=100)
    with pytest.raises(ValueError, match="scores has 1 rows but 2 seeds"):
        evaluate_predictions(y, s[None, :], g, seeds=[0, 1])
