"""Tests for membership-inference metrics and offline LiRA in ``audit.privacy._mia``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from audit import MIA_METRICS, attack_metrics, lira_offline_scores
from audit.privacy._mia import _build_plan, _resample_metrics, logit_confidence
from audit.result._schema import ATTACK_METRICS_COLUMNS

ATOL = 1e-12


def _row(df: pd.DataFrame, group: str, metric: str) -> pd.Series:
    sel = df[(df["group"] == group) & (df["metric"] == metric)]
    assert len(sel) == 1, (group, metric)
    return sel.iloc[0]


def _sklearn_tpr_at_fpr(s1: np.ndarray, s0: np.ndarray, f: float) -> float:
    """Largest TPR over the vertices of sklearn's full ROC with FPR <= f."""
    y = np.r_[np.ones(len(s1)), np.zeros(len(s0))]
    fpr, tpr, _ = roc_curve(y, np.r_[s1, s0], drop_intermediate=False)
    return float(tpr[fpr <= f + 1e-15].max())


def _sklearn_advantage(s1: np.ndarray, s0: np.ndarray) -> float:
    y = np.r_[np.ones(len(s1)), np.zeros(len(s0))]
    fpr, tpr, _ = roc_curve(y, np.r_[s1, s0], drop_intermediate=False)
    return float(np.max(tpr - fpr))


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------


def test_schema_group_and_metric_order() -> None:
    rng = np.random.default_rng(0)
    s1, s0 = rng.normal(size=30), rng.normal(size=40)
    g1 = rng.choice(np.array([3, 1, 20]), size=30)
    g0 = rng.choice(np.array([3, 1, 20]), size=40)
    df = attack_metrics(s1, s0, g1, g0, n_bootstrap=20)
    assert (
        tuple(df.columns)
        == ATTACK_METRICS_COLUMNS
        == (
            "group",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "n_members",
            "n_nonmembers",
            "available",
            "reason",
        )
    )
    # "overall" first, then labels sorted as numbers (np.unique), reported as str.
    assert df["group"].tolist() == [g for g in ["overall", "1", "3", "20"] for _ in MIA_METRICS]
    assert df["metric"].tolist() == list(MIA_METRICS) * 4
    assert df["value"].dtype == np.float64 and df["ci_low"].dtype == np.float64
    assert df["n_members"].dtype == np.int64 and df["n_nonmembers"].dtype == np.int64
    assert df["available"].dtype == bool
    assert all(isinstance(r, str) for r in df["reason"])
    assert _row(df, "overall", "auc")["n_members"] == 30
    assert _row(df, "3", "auc")["n_members"] == int((g1 == 3).sum())
    assert _row(df, "3", "auc")["n_nonmembers"] == int((g0 == 3).sum())
    # Available rows have an empty reason, unavailable ones a non-empty one.
    assert ((df["reason"] == "") == df["available"]).all()


# --------------------------------------------------------------------------
# Point estimates
# --------------------------------------------------------------------------


def test_perfectly_separable() -> None:
    rng = np.random.default_rng(1)
    # 1000 non-members so that even the 0.1% metric is available.
    s1 = rng.uniform(1.0, 2.0, size=300)
    s0 = rng.uniform(0.0, 0.999, size=1000)
    df = attack_metrics(s1, s0, np.zeros(300), np.zeros(1000), n_bootstrap=50)
    for metric in MIA_METRICS:
        r = _row(df, "overall", metric)
        assert r["available"], metric
        assert r["value"] == 1.0, metric
        # Every resample is also perfectly separable: degenerate interval.
        assert r["ci_low"] == 1.0 and r["ci_high"] == 1.0, metric


def test_reversed_scores() -> None:
    """Members all score *lower*: AUC 0; advantage is the one-sided max(TPR - FPR) = 0."""
    rng = np.random.default_rng(2)
    s1 = rng.uniform(0.0, 0.999, size=200)
    s0 = rng.uniform(1.0, 2.0, size=1000)
    df = attack_metrics(s1, s0, np.zeros(200), np.zeros(1000), n_bootstrap=0)
    assert _row(df, "overall", "auc")["value"] == 0.0
    # Any threshold flags non-members before members, so TPR - FPR <= 0 with
    # equality only at the "flag nobody" vertex: the reversed signal is not
    # credited (it would be 1 under max |TPR - FPR|).
    assert _row(df, "overall", "advantage")["value"] == 0.0
    assert _row(df, "overall", "tpr_at_fpr_1pct")["value"] == 0.0
    assert _row(df, "overall", "tpr_at_fpr_0.1pct")["value"] == 0.0
    # Partially reversed, hand-computed: members {1, 4}, non-members {2, 3}.
    # Vertices (FPR, TPR): (0,0), (0,1/2) at t=4, (1/2,1/2), (1,1/2), (1,1).
    # max(TPR - FPR) = 1/2; AUC = (0 + 2) / 4 = 1/2.
    df = attack_metrics([1.0, 4.0], [2.0, 3.0], ["a", "a"], ["a", "a"], n_bootstrap=0)
    assert _row(df, "a", "advantage")["value"] == 0.5
    assert _row(df, "a", "auc")["value"] == 0.5


def test_all_tied_scores() -> None:
    df = attack_metrics(np.full(50, 0.7), np.full(1000, 0.7), np.zeros(50), np.zeros(1000), n_bootstrap=10)
    assert _row(df, "overall", "auc")["value"] == 0.5
    # Only vertices (0, 0) and (1, 1): no threshold separates anything.
    assert _row(df, "overall", "advantage")["value"] == 0.0
    # Strict thresholding: flagging the tied block would give FPR 1 > 1%.
    assert _row(df, "overall", "tpr_at_fpr_1pct")["value"] == 0.0
    assert _row(df, "overall", "tpr_at_fpr_0.1pct")["value"] == 0.0


def test_ties_between_members_and_nonmembers_hand_computed() -> None:
    # Members {3, 2, 2, 1}, non-members {2, 1, 0}.
    # Wins: 3 -> 3; 2 -> 2 + 0.5; 2 -> 2 + 0.5; 1 -> 1 + 0.5 => 9.5 / 12.
    df = attack_metrics([3, 2, 2, 1], [2, 1, 0], ["g"] * 4, ["g"] * 3, n_bootstrap=0)
    assert abs(_row(df, "g", "auc")["value"] - 9.5 / 12) < ATOL
    # Vertices: t=3 (1/4, 0), t=2 (3/4, 1/3), t=1 (1, 2/3) => max gap 5/12.
    assert abs(_row(df, "g", "advantage")["value"] - 5 / 12) < ATOL


def test_auc_and_roc_metrics_match_sklearn_per_group() -> None:
    rng = np.random.default_rng(3)
    n1, n0 = 1500, 4000
    g1 = rng.choice(np.array(["x", "y", "z"]), size=n1, p=[0.2, 0.3, 0.5])
    g0 = rng.choice(np.array(["x", "y", "z"]), size=n0, p=[0.4, 0.3, 0.3])
    # Rounded to 0.05 so that ties (within and across classes) are frequent.
    s1 = np.round(rng.normal(0.4, 1.0, size=n1) / 0.05) * 0.05
    s0 = np.round(rng.normal(0.0, 1.0, size=n0) / 0.05) * 0.05
    df = attack_metrics(s1, s0, g1, g0, n_bootstrap=0)
    for g in ["overall", "x", "y", "z"]:
        a = s1 if g == "overall" else s1[g1 == g]
        b = s0 if g == "overall" else s0[g0 == g]
        y = np.r_[np.ones(len(a)), np.zeros(len(b))]
        assert abs(_row(df, g, "auc")["value"] - roc_auc_score(y, np.r_[a, b])) < ATOL, g
        assert abs(_row(df, g, "advantage")["value"] - _sklearn_advantage(a, b)) < ATOL, g
        assert abs(_row(df, g, "tpr_at_fpr_1pct")["value"] - _sklearn_tpr_at_fpr(a, b, 0.01)) < ATOL, g
        r = _row(df, g, "tpr_at_fpr_0.1pct")
        if len(b) >= 1000:
            assert abs(r["value"] - _sklearn_tpr_at_fpr(a, b, 0.001)) < ATOL, g
        else:
            assert not r["available"], g


def test_tpr_at_fpr_hand_computed() -> None:
    # Non-members 0, 1, ..., 99 (n0 = 100): FPR <= 1% allows k = 1 false
    # positive, so the threshold is the 2nd-largest non-member score, 98, and
    # members strictly above 98 are caught: 99.5 and 98.5 (98.0 ties the
    # threshold and is not) => TPR = 2/5.
    s0 = np.arange(100, dtype=float)
    s1 = np.array([99.5, 98.5, 98.0, 50.0, 10.0])
    df = attack_metrics(s1, s0, np.zeros(5), np.zeros(100), n_bootstrap=0)
    r = _row(df, "overall", "tpr_at_fpr_1pct")
    assert r["available"] and r["value"] == pytest.approx(0.4, abs=ATOL)
    # Shifted by 100 against 200 non-members 0..199: k = 2, so the threshold is
    # the 3rd-largest non-member, 197, and 199.5, 198.5 and 198.0 are caught.
    df = attack_metrics(s1 + 100, np.arange(200.0), np.zeros(5), np.zeros(200), n_bootstrap=0)
    assert _row(df, "overall", "tpr_at_fpr_1pct")["value"] == pytest.approx(0.6, abs=ATOL)


# --------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------


def test_too_few_nonmembers_for_low_fpr() -> None:
    rng = np.random.default_rng(4)
    s1, s0 = rng.normal(1, 1, 300), rng.normal(0, 1, 999)
    df = attack_metrics(s1, s0, np.zeros(300), np.zeros(999), n_bootstrap=10)
    r = _row(df, "overall", "tpr_at_fpr_0.1pct")
    assert not r["available"]
    assert np.isnan(r["value"]) and np.isnan(r["ci_low"]) and np.isnan(r["ci_high"])
    assert "1000" in r["reason"] and "999" in r["reason"]
    assert _row(df, "overall", "tpr_at_fpr_1pct")["available"]
    # 99 non-members: the 1% metric goes too.
    df = attack_metrics(s1, s0[:99], np.zeros(300), np.zeros(99), n_bootstrap=0)
    r = _row(df, "overall", "tpr_at_fpr_1pct")
    assert not r["available"] and "100" in r["reason"] and "99" in r["reason"]
    # Exactly 100 is enough (the smallest non-zero FPR is then exactly 1%).
    df = attack_metrics(s1, s0[:100], np.zeros(300), np.zeros(100), n_bootstrap=0)
    assert _row(df, "overall", "tpr_at_fpr_1pct")["available"]


def test_group_without_members_or_nonmembers() -> None:
    rng = np.random.default_rng(5)
    s1, s0 = rng.normal(1, 1, 200), rng.normal(0, 1, 300)
    g1 = np.where(np.arange(200) < 100, "a", "b")  # no members in "c"
    g0 = np.where(np.arange(300) < 150, "a", "c")  # no non-members in "b"
    df = attack_metrics(s1, s0, g1, g0, n_bootstrap=20)
    assert df["group"].unique().tolist() == ["overall", "a", "b", "c"]
    for metric in MIA_METRICS:
        c = _row(df, "c", metric)
        assert not c["available"] and "no members" in c["reason"] and np.isnan(c["value"])
        assert c["n_members"] == 0 and c["n_nonmembers"] == 150
        b = _row(df, "b", metric)
        assert not b["available"] and "no non-members" in b["reason"] and np.isnan(b["ci_low"])
    assert _row(df, "overall", "auc")["available"]
    assert _row(df, "a", "auc")["available"]
    # The overall row still uses every row.
    y = np.r_[np.ones(200), np.zeros(300)]
    assert abs(_row(df, "overall", "auc")["value"] - roc_auc_score(y, np.r_[s1, s0])) < ATOL


def test_no_members_at_all() -> None:
    for empty in (np.array([], dtype=str), []):
        df = attack_metrics([], [0.1, 0.2], empty, ["a", "a"], n_bootstrap=5)
        assert not df["available"].any()
        assert df["group"].unique().tolist() == ["overall", "a"]
        assert (df["reason"] == "no members in this group").all()


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="NaN"):
        attack_metrics([0.1, np.nan], [0.2], [0, 0], [0])
    with pytest.raises(ValueError, match="member_groups"):
        attack_metrics([0.1, 0.2], [0.2], [0], [0])
    with pytest.raises(ValueError, match="reserved"):
        attack_metrics([0.1], [0.2], ["overall"], ["a"])
    with pytest.raises(ValueError, match="confidence"):
        attack_metrics([0.1], [0.2], [0], [0], confidence=1.0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        attack_metrics([0.1], [0.2], [0], [0], n_bootstrap=-1)


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------


def test_identical_distributions() -> None:
    rng = np.random.default_rng(6)
    n = 5000
    s1, s0 = rng.normal(size=n), rng.normal(size=n)
    df = attack_metrics(s1, s0, np.zeros(n), np.zeros(n), n_bootstrap=200, seed=1)
    auc = _row(df, "overall", "auc")
    # Under H0 the Mann-Whitney AUC has sd sqrt((n1 + n0 + 1) / (12 n1 n0))
    # = 0.0058 for n1 = n0 = 5000; 0.025 is > 4 sd (two-sided p < 1e-4).
    sd = np.sqrt((2 * n + 1) / (12 * n * n))
    assert abs(auc["value"] - 0.5) < 0.025
    # Whether one 95% interval covers 0.5 is a 95% event (this draw happens to
    # sit ~2 sd off), so check the interval's calibration instead: its width
    # should match 2 * 1.96 * sd = 0.0226.  With 200 resamples the width
    # varies by ~6% (over 20 bootstrap seeds on these data: mean 0.0217,
    # sd 0.0013), so the +-20% band is >= 2.7 sd wide on either side.
    width = auc["ci_high"] - auc["ci_low"]
    assert 0.8 * 2 * 1.96 * sd < width < 1.2 * 2 * 1.96 * sd
    # advantage is the one-sided two-sample KS statistic D+; under H0
    # P(D+ > t) ~ exp(-2 t^2 n1 n0 / (n1 + n0)) = exp(-8) ~ 3e-4 for t = 0.04.
    assert 0.0 <= _row(df, "overall", "advantage")["value"] < 0.04

    # Identical *empirical* distributions (non-members are the members'
    # scores shuffled): AUC is exactly 1/2 by symmetry, the bootstrap
    # distribution of the AUC is centred on 1/2, so the interval covers it.
    s0 = rng.permutation(s1)
    df = attack_metrics(s1, s0, np.zeros(n), np.zeros(n), n_bootstrap=200, seed=1)
    auc = _row(df, "overall", "auc")
    assert auc["value"] == 0.5
    assert auc["ci_low"] < 0.5 < auc["ci_high"]
    assert _row(df, "overall", "advantage")["value"] == 0.0


def test_ci_shape_ordering_and_determinism() -> None:
    rng = np.random.default_rng(7)
    s1, s0 = rng.normal(0.5, 1, 1200), rng.normal(0, 1, 2500)
    g1, g0 = rng.integers(0, 3, 1200), rng.integers(0, 3, 2500)
    df = attack_metrics(s1, s0, g1, g0, n_bootstrap=200, seed=11)
    avail = df[df["available"]]
    assert len(avail) == 4 + 3 * 3  # 0.1% unavailable in every group (< 1000 non-members)
    assert avail[["value", "ci_low", "ci_high"]].notna().all().all()
    assert (avail["ci_low"] <= avail["ci_high"]).all()
    assert ((avail["ci_low"] >= 0) & (avail["ci_high"] <= 1)).all()
    # AUC is (nearly) unbiased under resampling, so its interval contains it.
    aucs = avail[avail["metric"] == "auc"]
    assert ((aucs["ci_low"] <= aucs["value"]) & (aucs["value"] <= aucs["ci_high"])).all()
    # Non-degenerate: the group intervals are wider than the overall one.
    width = (aucs["ci_high"] - aucs["ci_low"]).to_numpy()
    assert width[0] > 0 and (width[1:] > width[0]).all()
    again = attack_metrics(s1, s0, g1, g0, n_bootstrap=200, seed=11)
    pd.testing.assert_frame_equal(df, again)
    other = attack_metrics(s1, s0, g1, g0, n_bootstrap=200, seed=12)
    pd.testing.assert_frame_equal(
        df.drop(columns=["ci_low", "ci_high"]), other.drop(columns=["ci_low", "ci_high"])
    )
    assert not np.allclose(df["ci_low"].fillna(-1), other["ci_low"].fillna(-1))
    # A wider confidence level gives wider intervals from the same resamples.
    wide = attack_metrics(s1, s0, g1, g0, n_bootstrap=200, seed=11, confidence=0.99)
    assert (wide["ci_low"] <= df["ci_low"]).where(df["available"], True).all()
    assert (wide["ci_high"] >= df["ci_high"]).where(df["available"], True).all()
    # n_bootstrap=0: same point estimates, no intervals.
    none = attack_metrics(s1, s0, g1, g0, n_bootstrap=0)
    np.testing.assert_array_equal(none["value"].to_numpy(), df["value"].to_numpy())
    assert none["ci_low"].isna().all() and none["ci_high"].isna().all()


def test_percentile_interval_matches_known_bootstrap_distribution() -> None:
    """Interval level checked against a bootstrap distribution known in closed form.

    One member scoring 1; 2000 non-members, half scoring 0 and half 2.  In a
    resample the AUC is the share of drawn non-members scoring 0, i.e.
    Binomial(2000, 1/2) / 2000 (sd 0.0112).  An 80% percentile interval is
    then close to the binomial 10% / 90% quantiles.  With 2000 resamples a
    10% sample quantile has sd ~0.0004 here, plus the 1/2000 grid, so 0.0015
    is a ~3-sd tolerance; the 90% interval's end points sit 0.004 further out.
    """
    from scipy.stats import binom

    s0 = np.r_[np.zeros(1000), np.full(1000, 2.0)]
    df = attack_metrics([1.0], s0, [0], np.zeros(2000, dtype=int), n_bootstrap=2000, seed=5, confidence=0.8)
    r = _row(df, "overall", "auc")
    assert r["value"] == 0.5
    assert abs(r["ci_low"] - binom.ppf(0.1, 2000, 0.5) / 2000) < 0.0015
    assert abs(r["ci_high"] - binom.ppf(0.9, 2000, 0.5) / 2000) < 0.0015


def test_overall_bootstrap_is_stratified_by_group() -> None:
    """Group sizes are fixed in every resample.

    Members of group "a" score 1, members of "b" score 0, every non-member
    scores 0.5.  Overall AUC = share of members in "a" = 100/250, in every
    stratified resample.  Resampling the 250 members jointly would move that
    share (binomial sd ~ 0.03), so a zero-width overall interval fails any
    unstratified bootstrap.
    """
    s1 = np.r_[np.ones(100), np.zeros(150)]
    g1 = np.r_[np.full(100, "a"), np.full(150, "b")]
    s0 = np.full(300, 0.5)
    g0 = np.r_[np.full(120, "a"), np.full(180, "b")]
    df = attack_metrics(s1, s0, g1, g0, n_bootstrap=100, seed=3)
    r = _row(df, "overall", "auc")
    assert r["value"] == pytest.approx(0.4, abs=ATOL)
    assert r["ci_low"] == pytest.approx(0.4, abs=ATOL) and r["ci_high"] == pytest.approx(0.4, abs=ATOL)


def test_count_based_resample_metrics_match_sklearn_on_resampled_rows() -> None:
    """The vectorised bincount/cumsum path equals sklearn on explicit resamples."""
    rng = np.random.default_rng(8)
    n1, n0 = 300, 1100
    s1 = np.round(rng.normal(0.5, 1, n1), 1)
    s0 = np.round(rng.normal(0.0, 1, n0), 1)
    g1, g0 = rng.integers(0, 2, n1), rng.integers(0, 2, n0)
    plan = _build_plan(s1, s0, g1, g0, ["0", "1"])
    b = 4
    m_idx = [rng.integers(0, int((g1 == g).sum()), size=(b, int((g1 == g).sum()))) for g in (0, 1)]
    n_idx = [rng.integers(0, int((g0 == g).sum()), size=(b, int((g0 == g).sum()))) for g in (0, 1)]
    overall, by_group = _resample_metrics(plan, list(m_idx), list(n_idx))
    assert overall is not None
    for r in range(b):
        parts1 = [s1[g1 == g][m_idx[g][r]] for g in (0, 1)]
        parts0 = [s0[g0 == g][n_idx[g][r]] for g in (0, 1)]
        cases: list[tuple[dict[str, np.ndarray] | None, np.ndarray, np.ndarray]] = [
            (overall, np.concatenate(parts1), np.concatenate(parts0))
        ]
        cases += [(by_group[g], parts1[g], parts0[g]) for g in (0, 1)]
        for got, a, c in cases:
            assert got is not None
            y = np.r_[np.ones(len(a)), np.zeros(len(c))]
            assert abs(got["auc"][r] - roc_auc_score(y, np.r_[a, c])) < ATOL
            assert abs(got["advantage"][r] - _sklearn_advantage(a, c)) < ATOL
            assert abs(got["tpr_at_fpr_1pct"][r] - _sklearn_tpr_at_fpr(a, c, 0.01)) < ATOL
        a, c = cases[0][1], cases[0][2]
        assert abs(overall["tpr_at_fpr_0.1pct"][r] - _sklearn_tpr_at_fpr(a, c, 0.001)) < ATOL


# --------------------------------------------------------------------------
# LiRA
# --------------------------------------------------------------------------


def test_logit_confidence() -> None:
    p = np.array([0.5, 0.9, 0.1, 0.0, 1.0, np.nan])
    out = logit_confidence(p)
    np.testing.assert_allclose(out[:3], [0.0, np.log(9), -np.log(9)], atol=1e-12)
    bound = np.log((1 - 1e-12) / 1e-12)
    np.testing.assert_allclose(out[3:5], [-bound, bound], rtol=1e-9)
    assert np.isnan(out[5])
    assert logit_confidence(np.zeros((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        logit_confidence([1.2])


def _lira_data(n: int, s: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row OUT means spread widely; members' target confidences shifted by +1."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-8.0, 8.0, size=n)
    member = rng.random(n) < 0.5
    target = rng.normal(mu + member, 1.0)
    shadows = rng.normal(mu[None, :], 1.0, size=(s, n))
    return mu, member, target, shadows


def test_lira_beats_plain_confidence_when_per_row_means_differ() -> None:
    mu, member, target, shadows = _lira_data(n=4000, s=16, seed=9)
    # Mark ~half of the shadow entries as IN (NaN): they must be ignored.
    mask = np.random.default_rng(10).random(shadows.shape) < 0.5
    shadows_nan = np.where(mask, np.nan, shadows)
    lira = lira_offline_scores(target, shadows_nan)
    assert np.isfinite(lira).all()
    auc_lira = roc_auc_score(member, lira)
    auc_plain = roc_auc_score(member, target)
    # The oracle test on (target - mu) has AUC Phi(1 / sqrt 2) = 0.76; with
    # ~8 OUT shadows per row the estimated mean/sd cost a little.  The plain
    # attack sees a +1 shift under a U(-8, 8) spread of means: AUC ~ 0.55.
    # SE of each AUC at n = 4000 is ~0.008, so these margins are > 5 SE.
    assert auc_lira > 0.70
    assert auc_plain < 0.60
    assert auc_lira > auc_plain + 0.12
    # Per-row Gaussian fit: row 0 by hand.
    col = shadows_nan[:, 0][~np.isnan(shadows_nan[:, 0])]
    expect = -norm.logsf(target[0], loc=col.mean(), scale=col.std(ddof=1))
    assert lira[0] == pytest.approx(expect, rel=1e-10)


def test_lira_score_direction_and_values() -> None:
    shadows = np.array([[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]])  # mean (1, 3), sd (1, 1)
    out = lira_offline_scores([1.0, 5.0], shadows)
    # At the OUT mean: -log(1/2); two sd above: -log(1 - Phi(2)).
    np.testing.assert_allclose(out, [np.log(2.0), -np.log(norm.sf(2.0))], rtol=1e-12)
    # Monotone in the target, far tail stays finite and ordered.
    t = np.array([-50.0, 0.0, 1.0, 10.0, 40.0])
    sc = lira_offline_scores(t, np.tile(shadows[:, :1], (1, 5)))
    assert np.all(np.diff(sc) > 0) and np.isfinite(sc).all()


def test_lira_global_variance_fallback() -> None:
    mu, member, target, shadows = _lira_data(n=3000, s=1, seed=11)
    # S = 1: no per-row variance; every row falls back to the global sd,
    # here the sd of all OUT values pooled (no row has two OUT values).
    out = lira_offline_scores(target, shadows)
    sd = shadows.ravel().std(ddof=1)
    np.testing.assert_allclose(out, -norm.logsf(target, loc=shadows[0], scale=sd), rtol=1e-10)
    # One shadow only: score ~ target - shadow, N(1, 2) vs N(0, 2), oracle AUC
    # Phi(1/2) = 0.69; SE ~ 0.01 at n = 3000; still beats the plain attack.
    assert roc_auc_score(member, out) > 0.64
    assert roc_auc_score(member, out) > roc_auc_score(member, target) + 0.08
    assert np.array_equal(out, lira_offline_scores(target, shadows, global_variance=True))

    # Mixed: rows 0-1 have one OUT value, the others three; a degenerate row
    # (all OUT values equal) also falls back.  Global sd = pooled within-row.
    x = np.array(
        [
            [1.0, np.nan, 0.0, 5.0, 2.0],
            [np.nan, 2.0, 2.0, 6.0, 2.0],
            [np.nan, np.nan, 4.0, 10.0, 2.0],
        ]
    )
    t = np.array([3.0, 3.0, 3.0, 3.0, 3.0])
    ss = np.array([8.0, 14.0, 0.0])  # rows 2, 3, 4 around their means 2, 7, 2
    pooled = np.sqrt(ss.sum() / 6.0)
    mean = np.array([1.0, 2.0, 2.0, 7.0, 2.0])
    sd = np.array([pooled, pooled, 2.0, np.sqrt(7.0), pooled])
    np.testing.assert_allclose(lira_offline_scores(t, x), -norm.logsf(t, loc=mean, scale=sd), rtol=1e-12)
    np.testing.assert_allclose(
        lira_offline_scores(t, x, global_variance=True), -norm.logsf(t, loc=mean, scale=pooled), rtol=1e-12
    )


def test_lira_rows_without_out_and_validation() -> None:
    x = np.array([[1.0, np.nan, 0.0], [2.0, np.nan, 2.0]])
    with pytest.warns(RuntimeWarning, match="1 of 3 rows"):
        out = lira_offline_scores([1.0, 1.0, 1.0], x)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    with pytest.raises(ValueError, match="shape"):
        lira_offline_scores([1.0, 2.0], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        lira_offline_scores([np.nan], np.zeros((3, 1)))
    with pytest.raises(ValueError, match="variance"):
        lira_offline_scores([1.0, 2.0], np.ones((4, 2)))
