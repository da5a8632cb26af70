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


def test_no_bootstrap_leaves_only_the_bootstrapped_metrics_without_intervals() -> None:
    y, s, g = toy(n=300)
    by_group, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0)
    boot = by_group["metric"].isin(["log_loss", "roc_auc"])
    assert by_group.loc[boot, "ci_low"].isna().all()
    assert set(by_group.loc[boot, "ci_method"]) == {"none"}
    # Rates need no resampling: their score intervals are there regardless.
    assert by_group.loc[~boot, "ci_low"].notna().all()
    assert set(by_group.loc[~boot, "ci_method"]) <= {"wilson", "wilson-cc"}
    assert gaps.loc[gaps["metric"].isin(["log_loss", "roc_auc"]), "exceeds_uncertainty"].isna().all()
    assert gaps.loc[gaps["metric"] == "error_rate", "exceeds_uncertainty"].notna().all()


def test_interval_methods_are_named_and_chosen_by_group_size() -> None:
    y, s, g = toy(n=2000, seed=5)
    g = g.copy()
    g[:30] = "C"  # 30 rows: continuity-corrected rate and gap intervals
    by_group, overall, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=20)
    methods = by_group[(by_group["metric"] == "error_rate") & by_group["seed"].isna()].set_index("group")["ci_method"]
    assert methods["C"] == "wilson-cc" and methods["A"] == "wilson"
    assert set(by_group.loc[by_group["metric"] == "roc_auc", "ci_method"]) == {"bootstrap"}
    assert set(overall.loc[overall["metric"] == "error_rate", "ci_method"]) == {"wilson"}
    err = gaps[(gaps["metric"] == "error_rate") & gaps["seed"].isna()].set_index("gap")
    involves_c = "C" in (err.loc["difference", "max_group"], err.loc["difference", "min_group"])
    assert err.loc["difference", "ci_method"] == ("newcombe-cc" if involves_c else "newcombe")
    assert err.loc["ratio", "ci_method"].startswith("mover-wilson")


def test_rate_intervals_equal_the_score_interval_of_the_counts() -> None:
    from audit.fairness._intervals import difference_interval, rate_interval
    y, s, g = toy(n=700, seed=6, shift=1.0)
    by_group, _, gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0)
    pred = s >= 0.5
    row = by_group[(by_group["metric"] == "fpr") & (by_group["group"] == "B") & by_group["seed"].notna()].iloc[0]
    neg_b = (g == "B") & (y == 0)
    lo, hi, _ = rate_interval(np.sum(pred & neg_b), np.sum(neg_b), 0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((float(lo), float(hi)))
    gap = gaps[(gaps["metric"] == "fpr") & (gaps["gap"] == "difference") & gaps["seed"].notna()].iloc[0]
    assert (gap["max_group"], gap["min_group"]) == ("B", "A")
    neg_a = (g == "A") & (y == 0)
    dlo, dhi, _ = difference_interval(np.sum(pred & neg_b), np.sum(neg_b), np.sum(pred & neg_a),
                                      np.sum(neg_a), 0.95)
    assert (gap["ci_low"], gap["ci_high"]) == pytest.approx((float(dlo), float(dhi)))


def test_simultaneous_intervals_are_wider_by_bonferroni() -> None:
    from audit.fairness._intervals import rate_interval
    y, s, g = toy(n=900, seed=7)
    g = np.where(np.arange(900) % 3 == 0, "C", g)  # three groups: 3 pairs
    one, _, one_gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0)
    fam, _, fam_gaps = evaluate_predictions(y, s[None, :], g, seeds=[0], n_bootstrap=0,
                                            simultaneous_ci=True)
    pick = (one["metric"] == "error_rate") & (one["group"] == "C") & one["seed"].notna()
    errors_c = np.sum((s >= 0.5)[g == "C"] != y[g == "C"])
    lo, hi, _ = rate_interval(errors_c, np.sum(g == "C"), 1 - 0.05 / 3)
    got = (fam.loc[pick, "ci_low"].iloc[0], fam.loc[pick, "ci_high"].iloc[0])
    assert got == pytest.approx((float(lo), float(hi)))
    wider = (fam["ci_high"] - fam["ci_low"]) - (one["ci_high"] - one["ci_low"])
    assert (wider.dropna() > 0).all()  # NaN: AUC and log-loss, not bootstrapped here
    width = (fam_gaps["ci_high"] - fam_gaps["ci_low"]) - (one_gaps["ci_high"] - one_gaps["ci_low"])
    assert (width.dropna() > 0).all()


def test_frames_have_stable_columns_and_int_seed() -> None:
    y, s, g = toy(n=300)
    by_group, overall, gaps = evaluate_predictions(y, s[None, :], g, seeds=[5], n_bootstrap=10)
    assert list(by_group.columns) == ["seed", "group", "metric", "value", "std", "ci_low", "ci_high",
                                      "ci_method", "n"]
    assert list(overall.columns) == ["seed", "metric", "value", "std", "ci_low", "ci_high", "ci_method", "n"]
    assert by_group["seed"].dtype == pd.Int64Dtype()
    assert set(gaps.columns) >= {"gap", "max_group", "min_group", "exceeds_uncertainty"}


def test_seed_count_mismatch() -> None:
    y, s, g = toy(n=100)
    with pytest.raises(ValueError, match="scores has 1 rows but 2 seeds"):
        evaluate_predictions(y, s[None, :], g, seeds=[0, 1])
