"""Known answers and properties of offline RMIA (``audit.rmia_offline_scores``) and of the
fit of its slope ``a`` (``audit.rmia_fit_a``).

Notation: ``LR(x) = Pr(x | theta) / Pr(x)``, ``Pr(x) = ((1 + a) P_OUT(x) + (1 - a)) / 2``,
score = fraction of population rows ``z`` with ``LR(x) > gamma LR(z)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit

from audit import (
    ConfigError,
    DataError,
    attack_metrics,
    lira_offline_scores,
    rmia_fit_a,
    rmia_offline_scores,
)
from audit.defaults import DEFAULT_RMIA_A, DEFAULT_RMIA_GAMMA
from audit.privacy._mia import logit_confidence


def _brute_force(p_x: np.ndarray, r_x: np.ndarray, p_z: np.ndarray, r_z: np.ndarray, a: float,
                 gamma: float) -> np.ndarray:
    """The paper's definition, pair by pair: mean over z of [LR(x) / LR(z) > gamma]."""
    def lr(p: np.ndarray, refs: np.ndarray) -> np.ndarray:
        pr = 0.5 * ((1 + a) * np.nanmean(refs, axis=0) + (1 - a))
        return p / pr
    ratio = lr(p_x, r_x)[:, None] / lr(p_z, r_z)[None, :]
    return np.asarray((ratio > gamma).mean(axis=1), dtype=float)


def _random_case(seed: int, n: int = 60, m: int = 40, r: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    p_x = rng.uniform(0.05, 1.0, n)
    r_x = np.where(rng.random((r, n)) < 0.4, np.nan, rng.uniform(0.05, 1.0, (r, n)))
    r_x[0, np.isnan(r_x).all(axis=0)] = 0.5  # every row keeps one OUT observation
    p_z = rng.uniform(0.05, 1.0, m)
    r_z = rng.uniform(0.05, 1.0, (r, m))
    return p_x, r_x, p_z, r_z


# --------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------


def test_one_reference_model_four_population_rows_by_hand() -> None:
    # a = 0.5: Pr = 0.75 P_OUT + 0.25.  x: p = 0.9, P_OUT = 0.6 -> Pr 0.7, LR = 9/7.
    # z: (0.8, 0.8) -> LR 0.8/0.85 = 0.941; (0.5, 0.2) -> 1.25; (0.6, 1.0) -> 0.6;
    # (0.9, 0.6) -> 9/7, an exact tie with x (same expression, same bits).
    # LR(x)/LR(z) = 1.366, 1.029, 2.143, 1.0.
    p_z, r_z = [0.8, 0.5, 0.6, 0.9], [[0.8, 0.2, 1.0, 0.6]]
    assert rmia_offline_scores([0.9], [[0.6]], p_z, r_z, a=0.5, gamma=1.0).tolist() == [0.75]
    assert rmia_offline_scores([0.9], [[0.6]], p_z, r_z, a=0.5, gamma=2.0).tolist() == [0.25]
    # gamma = 1.03 sits between 1.029 and 1.366: only z2 (1.029) and the tie drop out.
    assert rmia_offline_scores([0.9], [[0.6]], p_z, r_z, a=0.5, gamma=1.03).tolist() == [0.5]


def test_two_reference_models_with_in_entries_by_hand() -> None:
    # a = 1: Pr = P_OUT, the mean of the OUT (non-NaN) entries only.
    # x: P_OUT = (0.4 + 0.6) / 2 = 0.5 and 0.1 -> LR(x) = 0.5/0.5 = 1, 0.2/0.1 = 2.
    # z: P_OUT = 0.6, 0.9, 0.2 -> LR(z) = 0.3/0.6 = 0.5, 0.9/0.9 = 1, 0.8/0.2 = 4.
    # Every value here is exact in binary floating point (0.6 = 2 x 0.3 and so on).
    p_x, r_x = [0.5, 0.2], [[0.4, np.nan], [0.6, 0.1]]
    p_z, r_z = [0.3, 0.9, 0.8], [[0.6, 0.9, np.nan], [np.nan, 0.9, 0.2]]
    got = rmia_offline_scores(p_x, r_x, p_z, r_z, a=1.0, gamma=1.0)
    # x1 beats 0.5 only (ties 1); x2 beats 0.5 and 1.
    np.testing.assert_array_equal(got, [1 / 3, 2 / 3])
    # gamma = 0.5 halves the population's LRs to 0.25, 0.5, 2: x1 beats two, x2 two (ties 2).
    np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x, p_z, r_z, a=1.0, gamma=0.5), [2 / 3, 2 / 3])
    # a = 0: Pr = (P_OUT + 1) / 2.  LR(x) = 0.5/0.75 = 0.667, 0.2/0.55 = 0.364;
    # LR(z) = 0.3/0.8 = 0.375, 0.9/0.95 = 0.947, 0.8/0.6 = 1.333.
    np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x, p_z, r_z, a=0.0), [1 / 3, 0.0])


def test_defaults_are_the_documented_ones() -> None:
    assert (DEFAULT_RMIA_A, DEFAULT_RMIA_GAMMA) == (1.0, 1.0)
    p_x, r_x, p_z, r_z = _random_case(0)
    np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x, p_z, r_z),
                                  rmia_offline_scores(p_x, r_x, p_z, r_z, a=1.0, gamma=1.0))


def test_matches_the_pairwise_definition() -> None:
    for seed, a, gamma in [(1, 0.3, 1.0), (2, 1.0, 2.0), (3, 0.0, 0.7), (4, 0.6, 1.5)]:
        p_x, r_x, p_z, r_z = _random_case(seed)
        np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x, p_z, r_z, a=a, gamma=gamma),
                                      _brute_force(p_x, r_x, p_z, r_z, a, gamma))


# --------------------------------------------------------------------------
# Ties, levels and monotonicity
# --------------------------------------------------------------------------


def test_all_ratios_equal_give_zero() -> None:
    # Reference models identical to the target and a = 1: LR = 1 for every row, every
    # pairwise ratio is exactly 1, never > gamma = 1 (it would be 1 with ">=").
    rng = np.random.default_rng(5)
    p, q = rng.uniform(0.1, 1.0, 30), rng.uniform(0.1, 1.0, 20)
    got = rmia_offline_scores(p, p[None, :], q, q[None, :], a=1.0)
    np.testing.assert_array_equal(got, np.zeros(30))
    # A row compared with itself never counts: x used as its own population scores 0.
    assert rmia_offline_scores([0.7], [[0.4]], [0.7], [[0.4]], a=0.3).tolist() == [0.0]


def test_scores_are_multiples_of_one_over_m() -> None:
    p_x, r_x, p_z, r_z = _random_case(6, m=7)
    got = rmia_offline_scores(p_x, r_x, p_z, r_z, a=0.4)
    np.testing.assert_allclose(got * 7, np.round(got * 7), atol=1e-12)
    assert got.min() >= 0.0 and got.max() <= 1.0
    one = rmia_offline_scores(p_x, r_x, p_z[:1], r_z[:, :1], a=0.4)  # a single z: 0 or 1
    assert set(one.tolist()) <= {0.0, 1.0} and len(set(one.tolist())) == 2


def test_score_is_non_decreasing_in_the_row_likelihood_ratio() -> None:
    p_x, r_x, p_z, r_z = _random_case(7, n=300)
    a = 0.5
    got = rmia_offline_scores(p_x, r_x, p_z, r_z, a=a)
    lr = p_x / (0.5 * ((1 + a) * np.nanmean(r_x, axis=0) + (1 - a)))
    assert np.all(np.diff(got[np.argsort(lr)]) >= 0)
    # More confident target, same references: never a lower score.
    up = rmia_offline_scores(np.minimum(p_x * 1.2, 1.0), r_x, p_z, r_z, a=a)
    assert np.all(up >= got) and np.any(up > got)
    # More confident references (a larger Pr(x)): never a higher score.
    down = rmia_offline_scores(p_x, np.minimum(r_x * 1.2, 1.0), p_z, r_z, a=a)
    assert np.all(down <= got) and np.any(down < got)


def test_score_is_non_increasing_in_gamma() -> None:
    p_x, r_x, p_z, r_z = _random_case(8)
    scores = [rmia_offline_scores(p_x, r_x, p_z, r_z, a=0.5, gamma=g) for g in (0.5, 1.0, 1.5, 3.0)]
    for lo, hi in zip(scores[1:], scores[:-1], strict=True):
        assert np.all(lo <= hi)
    assert np.any(scores[-1] < scores[0])


# --------------------------------------------------------------------------
# Invariances
# --------------------------------------------------------------------------


def test_permutations_of_references_population_and_rows() -> None:
    p_x, r_x, p_z, r_z = _random_case(9)
    base = rmia_offline_scores(p_x, r_x, p_z, r_z, a=0.3)
    rng = np.random.default_rng(10)
    refs, zs, rows = rng.permutation(3), rng.permutation(len(p_z)), rng.permutation(len(p_x))
    np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x[refs], p_z, r_z[refs], a=0.3), base)
    np.testing.assert_array_equal(rmia_offline_scores(p_x, r_x, p_z[zs], r_z[:, zs], a=0.3), base)
    np.testing.assert_array_equal(rmia_offline_scores(p_x[rows], r_x[:, rows], p_z, r_z, a=0.3), base[rows])
    # Every reference model twice: the same means, the same scores.
    np.testing.assert_array_equal(
        rmia_offline_scores(p_x, np.vstack([r_x, r_x]), p_z, np.vstack([r_z, r_z]), a=0.3), base)


def test_scale_invariance_of_target_probabilities() -> None:
    # c cancels in LR(x) / LR(z) whatever a is.  Exact here; in general the roundings of
    # c p could flip a pair whose ratio lies within about 1e-16 of gamma.
    p_x, r_x, p_z, r_z = _random_case(11)
    for a in (0.0, 0.4, 1.0):
        base = rmia_offline_scores(p_x, r_x, p_z, r_z, a=a)
        for c in (0.25, 0.5, 0.9):
            np.testing.assert_array_equal(rmia_offline_scores(c * p_x, r_x, c * p_z, r_z, a=a), base)


def test_reference_scale_invariance_only_without_the_offline_correction() -> None:
    p_x, r_x, p_z, r_z = _random_case(12, n=200)
    # a = 1: Pr = P_OUT, and a common factor on the references cancels too.
    np.testing.assert_array_equal(rmia_offline_scores(p_x, 0.5 * r_x, p_z, 0.5 * r_z, a=1.0),
                                  rmia_offline_scores(p_x, r_x, p_z, r_z, a=1.0))
    # a < 1: Pr is affine in P_OUT, so it does not (a negative control for the above).
    assert not np.array_equal(rmia_offline_scores(p_x, 0.5 * r_x, p_z, 0.5 * r_z, a=0.2),
                              rmia_offline_scores(p_x, r_x, p_z, r_z, a=0.2))


# --------------------------------------------------------------------------
# Edge cases and input checks
# --------------------------------------------------------------------------


def test_rows_without_out_reference_are_nan_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="1 of 3 rows have no OUT reference"):
        got = rmia_offline_scores([0.5, 0.5, 0.9], [[0.5, np.nan, 0.5], [np.nan, np.nan, 0.7]],
                                  [0.5], [[0.5], [0.5]])
    assert np.isnan(got[1]) and np.isfinite(got[[0, 2]]).all()


def test_extreme_probabilities_stay_finite() -> None:
    # P_OUT = 0 with a = 1 and a target probability of 0: both are raised to 1e-12.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = rmia_offline_scores([1.0, 0.0, 0.3], [[0.0, 0.0, 0.3]], [0.5, 0.2], [[0.5, 0.4]], a=1.0)
    # LR(x) = 1e12, 1, 1; LR(z) = 1, 0.5.
    np.testing.assert_array_equal(got, [1.0, 0.5, 0.5])


@pytest.mark.parametrize(("args", "kw", "error", "match"), [
    (([0.5, 0.5], [[0.5]], [0.5], [[0.5]]), {}, DataError, r"reference_probs_out must have shape \(R, 2\)"),
    (([0.5], [[0.5], [0.5]], [0.5], [[0.5]]), {}, DataError, r"population_reference_probs must have shape \(2, 1\)"),
    (([[0.5]], [[0.5]], [0.5], [[0.5]]), {}, DataError, "target_prob must be one-dimensional"),
    (([0.5], [0.5], [0.5], [[0.5]]), {}, DataError, "reference_probs_out must be two-dimensional"),
    (([1.5], [[0.5]], [0.5], [[0.5]]), {}, DataError, r"target_prob must be probabilities in \[0, 1\]"),
    (([0.5], [[-0.1]], [0.5], [[0.5]]), {}, DataError, r"reference_probs_out must be probabilities"),
    (([np.nan], [[0.5]], [0.5], [[0.5]]), {}, DataError, "target_prob contains NaN"),
    (([0.5], [[0.5]], [np.nan], [[0.5]]), {}, DataError, "population_target_prob contains NaN"),
    (([0.5], [[0.5]], [], np.zeros((1, 0))), {}, DataError, "the population is empty"),
    (([0.5], [[0.5]], [0.5, 0.5], [[0.5, np.nan]]), {}, DataError,
     "1 of 2 population rows have no reference observation"),
    (([0.5], [[0.5]], [0.5], [[0.5]]), {"a": 1.5}, ConfigError, r"a must be a number in \[0, 1\], got 1.5"),
    (([0.5], [[0.5]], [0.5], [[0.5]]), {"a": True}, ConfigError, "a must be a number"),
    (([0.5], [[0.5]], [0.5], [[0.5]]), {"gamma": 0.0}, ConfigError, "gamma must be a finite number > 0"),
    (([0.5], [[0.5]], [0.5], [[0.5]]), {"gamma": float("inf")}, ConfigError, "gamma must be a finite"),
    (([0.5], [[0.5]], [0.5], [[0.5]]), {"gamma": "2"}, ConfigError, "gamma must be a finite"),
])
def test_input_validation(args: tuple, kw: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        rmia_offline_scores(*args, **kw)


# --------------------------------------------------------------------------
# The slope a, fitted on reference models
# --------------------------------------------------------------------------


def test_fit_a_by_hand() -> None:
    # Row 0: IN 0.9 (error 0.1), OUT mean (0.6 + 0.8)/2 (error 0.3); row 1: IN 0.8 (error
    # 0.2), OUT mean (0.2 + 0.4)/2 (error 0.7); row 2 has no IN observation and is left
    # out. a = (0.1 + 0.2) / (0.3 + 0.7).
    probs = [[0.9, 0.2, 0.5], [0.6, 0.8, 0.4], [0.8, 0.4, 0.6]]
    inside = np.array([[True, False, False], [False, True, False], [False, False, False]])
    assert rmia_fit_a(probs, inside) == pytest.approx(0.3, abs=1e-12)
    # IN models less confident than OUT ones: clipped to 1.
    assert rmia_fit_a([[0.5, 0.5], [0.9, 0.9]], np.array([[True, True], [False, False]])) == 1.0
    # No row both IN and OUT, or OUT models without error: the default.
    assert rmia_fit_a([[0.5], [0.9]], np.array([[True], [True]])) == DEFAULT_RMIA_A
    assert rmia_fit_a([[0.5], [1.0]], np.array([[True], [False]])) == DEFAULT_RMIA_A
    assert rmia_fit_a([[1.0], [1.0]], np.array([[True], [False]])) == 1.0 == DEFAULT_RMIA_A


def test_fit_a_recovers_the_slope_despite_noisy_out_means() -> None:
    # Models follow P_IN = a P_OUT + (1 - a) exactly in expectation, each observation with
    # N(0, 0.1) noise.  The ratio of summed errors recovers a = 0.4 (its SE here is about
    # 0.003, so 0.02 is > 6 SE); a least-squares slope of the per-row IN errors on the
    # noisy OUT errors is diluted towards 0 (Var(P_OUT) 0.013 against noise 0.005 for a
    # mean of two: a factor about 0.7) and misses by far more.
    rng = np.random.default_rng(13)
    n, r, a = 20000, 4, 0.4
    p_out = rng.uniform(0.3, 0.7, n)
    mean = np.where(inside := rng.random((r, n)) < 0.5, a * p_out + 1 - a, p_out)
    probs = np.clip(mean + rng.normal(0.0, 0.1, (r, n)), 0.0, 1.0)
    assert rmia_fit_a(probs, inside) == pytest.approx(a, abs=0.02)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        e_in = 1 - np.nanmean(np.where(inside, probs, np.nan), axis=0)
        e_out = 1 - np.nanmean(np.where(inside, np.nan, probs), axis=0)
    ok = ~np.isnan(e_in) & ~np.isnan(e_out)
    slope = np.polyfit(e_out[ok], e_in[ok], 1)[0]
    assert abs(slope - a) > 0.08


def test_fit_a_input_validation() -> None:
    with pytest.raises(DataError, match=r"reference_inside must be a boolean array of shape \(1, 2\)"):
        rmia_fit_a([[0.5, 0.5]], [[1, 0]])
    with pytest.raises(DataError, match="reference_inside must be a boolean array"):
        rmia_fit_a([[0.5, 0.5]], np.array([[True]]))
    with pytest.raises(DataError, match="reference_probs contains NaN"):
        rmia_fit_a([[np.nan, 0.5]], np.array([[True, False]]))


# --------------------------------------------------------------------------
# Simulation: members are more confident; few reference models
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet() -> object:
    # The simulations leave some rows without an OUT model on purpose (NaN, dropped).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no OUT (reference|shadow).*", category=RuntimeWarning)
        yield


def _world(refs: int, seed: int, n: int = 20000, m: int = 5000) -> dict[str, np.ndarray]:
    """Synthetic confidences: row i has a difficulty mu_i ~ U(-3, 5) on the logit scale;
    a model that trained on it gives logit N(mu_i + 1, 0.5^2), one that did not
    N(mu_i, 0.5^2).  Half of the n candidates are members of the target; each reference
    model trained on a random half of the candidates; the m population rows are
    non-members of every model, and each reference scores a random half of them (as the
    audit does, so that Pr(z) averages as many models as a candidate's Pr(x))."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-3.0, 5.0, n + m)
    member = np.arange(n) < n // 2
    target = expit(rng.normal(mu + np.r_[member, np.zeros(m, bool)], 0.5))
    inside = rng.random((refs, n)) < 0.5
    ref = expit(rng.normal(mu + np.c_[inside, np.zeros((refs, m), bool)], 0.5))
    unused = rng.random((refs, m)) < 0.5
    keep = ~unused.all(axis=0)
    return {"member": member, "target": target[:n], "pop": target[n:][keep], "inside": inside,
            "ref": ref[:, :n], "pop_ref": np.where(unused, np.nan, ref[:, n:])[:, keep],
            "pop_all_ref": ref[:, n:][:, keep]}


def _metrics(scores: np.ndarray, member: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(scores)
    df = attack_metrics(scores[ok & member], scores[ok & ~member], np.zeros((ok & member).sum()),
                        np.zeros((ok & ~member).sum()), n_bootstrap=0)
    return dict(zip(df["metric"], df["value"], strict=False))  # the overall rows come first


@pytest.mark.parametrize("refs", [2, 4])
def test_rmia_finds_more_members_at_low_fpr_than_lira_with_few_reference_models(refs: int) -> None:
    w = _world(refs, seed=refs)
    out = np.where(w["inside"], np.nan, w["ref"])
    a = rmia_fit_a(w["ref"], w["inside"])
    assert 0.6 < a < 0.8  # members' error here is about 0.7 of non-members'
    rmia = _metrics(rmia_offline_scores(w["target"], out, w["pop"], w["pop_ref"], a=a), w["member"])
    lira = _metrics(lira_offline_scores(logit_confidence(w["target"]), logit_confidence(out)),
                    w["member"])
    lira_global = _metrics(lira_offline_scores(logit_confidence(w["target"]), logit_confidence(out),
                                               global_variance=True), w["member"])
    # Over seeds 0-3 and 2-4 references: RMIA's TPR at 1% FPR is 0.11-0.14 against LiRA's
    # 0.04-0.05 (per-row variances, as the audit runs LiRA); at 0.1% FPR 0.015-0.041 against
    # 0.001-0.009.  The margins below are well under the smallest gap seen (0.065 and 0.011);
    # the TPRs rest on 10,000 members and the 100 (10) highest of 10,000 non-members.
    assert rmia["tpr_at_fpr_1pct"] > lira["tpr_at_fpr_1pct"] + 0.04
    assert rmia["tpr_at_fpr_0.1pct"] > lira["tpr_at_fpr_0.1pct"] + 0.005
    # What does not hold, pinned so that it is not forgotten: LiRA has the higher AUC
    # (0.83 against 0.79; the AUC's SE is under 0.005), and LiRA with one global variance,
    # the exact model of this simulation, beats RMIA at every FPR (0.18-0.25 at 1%).
    assert lira["auc"] > rmia["auc"] + 0.02
    assert lira_global["tpr_at_fpr_1pct"] > rmia["tpr_at_fpr_1pct"] + 0.03


def test_non_member_scores_are_uniform_when_the_population_is_scored_like_them() -> None:
    # With gamma = 1 and population rows whose Pr(z) averages as many OUT models as a
    # non-member's Pr(x), a non-member's score is the rank of its LR among exchangeable
    # ones: uniform on [0, 1], so 1 - score reads as a p-value.  With 10,000 non-members
    # the fraction above 0.99 has SE 0.001, the mean SE 0.003: tolerances of 4 SE.
    w = _world(4, seed=14)
    out = np.where(w["inside"], np.nan, w["ref"])
    non = ~w["member"]
    a = rmia_fit_a(w["ref"], w["inside"])
    matched = rmia_offline_scores(w["target"], out, w["pop"], w["pop_ref"], a=a)[non]
    matched = matched[~np.isnan(matched)]
    assert abs(matched.mean() - 0.5) < 0.012
    for f in (0.1, 0.01):
        assert abs((matched > 1 - f).mean() - f) < 4 * np.sqrt(f * (1 - f) / matched.size)
    # Scored with all four references, population LRs are less spread than non-members'
    # (a mean of four models against one of about two), so too many non-members reach the
    # top scores, which costs TPR at low FPR: above 0.99, 0.012-0.018 of them over seeds
    # 14-19 (matched: 0.008-0.013, expected 0.01).
    every = rmia_offline_scores(w["target"], out, w["pop"], w["pop_all_ref"], a=a)[non]
    every = every[~np.isnan(every)]
    assert (every > 0.99).mean() > max(1.3 * (matched > 0.99).mean(), 0.01)
