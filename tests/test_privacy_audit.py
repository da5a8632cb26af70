"""Empirical privacy in an audit: MIA per group, one-run canary bound, mechanism curve, DP cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from fairpriv_cli.main import main
from fit_helpers import fit_one

from audit import (
    CANARY_AUDITS,
    AuditConfig,
    AuditResult,
    BaselineArm,
    BatchedTrainer,
    ConfigError,
    DPSGDArm,
    FitJob,
    FittedModel,
    LocalExecutor,
    PrivacyAuditConfig,
    PrivacyLedger,
    TrainingConfig,
    UniformDropoutArm,
    dp_group_cost,
    dropout_noise_curve,
    load_dataset,
    run_audit,
)
from audit.pipeline._prepare import prepare
from audit.privacy._canaries import CanaryPlan, canary_plan, score_canaries
from audit.privacy._membership import plan_shadow_pool

SMALL = dict(seeds=2, n_bootstrap=50, training=TrainingConfig(epochs=2, hidden=(16,)))


@pytest.fixture(scope="module")
def result() -> AuditResult:
    cfg = AuditConfig(arms=(BaselineArm(), UniformDropoutArm(), DPSGDArm()),
                      privacy_audit=PrivacyAuditConfig(canaries=300, mia_bootstrap=50,
                                                       mechanism_rows=40, mechanism_masks=16),
                      **SMALL)  # type: ignore[arg-type]
    return run_audit(load_dataset("synthetic", n_rows=3000), cfg)


def test_mia_metrics_for_every_arm_and_group(result: AuditResult) -> None:
    mia = result.mia
    for arm in result.arm_names:
        sel = mia[(mia["arm"] == arm) & mia["seed"].isna() & (mia["attack"] == "loss")]
        assert set(sel["group"]) == {"overall", "majority", "minority"}
        assert set(sel["metric"]) == {"auc", "advantage", "tpr_at_fpr_1pct", "tpr_at_fpr_0.1pct"}
        auc = sel[(sel["group"] == "overall") & (sel["metric"] == "auc")].iloc[0]
        assert 0.3 < auc["value"] < 0.8 and auc["ci_low"] <= auc["value"] <= auc["ci_high"]
        # 600 test rows: too few non-members for FPR 0.1%, reported as unavailable
        low = sel[(sel["group"] == "overall") & (sel["metric"] == "tpr_at_fpr_0.1pct")].iloc[0]
        assert not low["available"] and "1000 non-members" in low["reason"]
    assert set(mia["seed"].dropna()) == {0, 1}
    n = mia.iloc[0]
    assert n["n_members"] == n["n_nonmembers"]  # equal numbers of members and non-members


def test_canary_audit_rows_and_no_violation(result: AuditResult) -> None:
    emp = result.empirical
    # arms x seeds black-box and white-box rows, plus the DP arm's gradient canaries
    assert emp.groupby("audit").size().to_dict() == {"black_box": 6, "white_box_rows": 6,
                                                     "white_box_gradient": 2}
    black = emp[emp["audit"] == "black_box"]
    assert (black["canaries"] == 300).all() and (black["guesses"] == 120).all()
    assert set(emp.loc[emp["audit"] == "white_box_gradient", "kind"]) == {"dp_sgd"}
    assert ((emp["correct"] >= 0) & (emp["correct"] <= emp["guesses"])).all()
    assert (emp["epsilon_lower_bound"] >= 0).all()
    dp = emp[emp["kind"] == "dp_sgd"]
    assert (dp["run_epsilon"] > 0).all() and dp["run_epsilon"].le(3.0).all()
    assert emp[emp["kind"] != "dp_sgd"]["run_epsilon"].isna().all()
    assert not emp["dp_violation"].any() and result.dp_violations == []


def test_privacy_results_round_trip_json(result: AuditResult) -> None:
    data = json.loads(result.to_json())
    assert data["dp_violation"] is False
    dp = next(a for a in data["arms"] if a["kind"] == "dp_sgd")
    priv = dp["privacy"]
    assert {"epsilon", "delta", "accountant", "mia", "empirical", "dp_violation"} <= set(priv)
    assert set(priv["mia"]["loss"]["aggregate"]["by_group"]) == {"majority", "minority"}
    assert priv["empirical"]["per_seed"][0]["k_plus"] == 60
    assert isinstance(priv["empirical"]["epsilon_lower_bound"], float)
    by_audit = priv["empirical"]["by_audit"]
    assert list(by_audit) == ["black_box", "white_box_rows", "white_box_gradient"]
    assert set(by_audit["white_box_gradient"]) == {"epsilon_lower_bound", "epsilon_lower_bound_gdp",
                                                   "dp_violation"}
    assert priv["empirical"]["epsilon_lower_bound"] == max(b["epsilon_lower_bound"] for b in by_audit.values())
    uni = next(a for a in data["arms"] if a["kind"] == "uniform_dropout")
    assert len(uni["mechanism"]) == 40 and dp["mechanism"] is None
    assert data["mechanism_reference"]["noise_std_sum"] > 0
    back = AuditResult.from_json(result.to_json())
    pd.testing.assert_frame_equal(back.mia, result.mia)
    pd.testing.assert_frame_equal(back.empirical, result.empirical)
    assert back.to_dict() == result.to_dict()


def test_summary_shows_privacy_columns(result: AuditResult) -> None:
    text = result.summary()
    assert "MIA AUC" in text and "eps lower bound" in text
    assert "300 flipped canaries" in text
    # each audit named once in the notes, with what it observes
    for label, observes in (("black-box", "final model only"), ("white-box rows", "every step's update"),
                            ("white-box gradient", "every step's privatised gradient")):
        assert sum(line.startswith(f"  {label} (") for line in text.splitlines()) == 1
        assert observes in text
    bounds = result.privacy_bounds()
    for arm, sel in bounds.groupby("arm"):
        top = sel.loc[sel["epsilon_lower_bound"].idxmax()]
        row = next(line for line in text.splitlines() if line.startswith(f"{arm} "))
        if top["epsilon_lower_bound"] > 0:
            assert f"{top['epsilon_lower_bound']:.2f} ({CANARY_AUDITS[top['audit']].label})" in row


class _LyingTrainer(BatchedTrainer):
    """Trains without any noise but claims a tiny epsilon: the audit must catch it."""

    def fit_many(self, jobs, **kw):  # type: ignore[no-untyped-def, override]
        plain = [FitJob(arm=BaselineArm(name=j.arm.label), data=j.data, rates=j.rates, seed=j.seed, purpose=j.purpose)
                 for j in jobs]
        models = super().fit_many(plain, **kw)
        lie = PrivacyLedger(mechanism="dp_sgd", epsilon=0.01, delta=1e-5, noise_multiplier=50.0,
                            sample_rate=0.01, steps=10, accountant="prv", max_grad_norm=1.0)
        return [FittedModel(model=m.model, ledger=lie if j.arm.private else m.ledger, device=m.device,
                            task=m.task) for j, m in zip(jobs, models, strict=True)]


def _memorable_frame(n: int = 2000, d: int = 60, seed: int = 0) -> pd.DataFrame:
    """Few rows, many noise features: an MLP trained without noise memorises flipped canaries."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(d)])
    df["g"] = rng.choice(["a", "b"], n)
    df["y"] = (x[:, 0] + rng.normal(0, 1, n) > 0).astype(int)
    return df


def test_dp_violation_is_flagged_and_shown_first(tmp_path: Path) -> None:
    from pdf_checks import assert_pdf_sound
    from pypdf import PdfReader

    from reports import SECTION_TITLES, render_html, render_pdf

    # The lying trainer goes in through the executor, as any trainer would.
    cfg = AuditConfig(arms=(BaselineArm(), DPSGDArm(epsilon=0.01)), seeds=1, n_bootstrap=0,
                      training=TrainingConfig(epochs=20, hidden=(64,)),
                      privacy_audit=PrivacyAuditConfig(canaries=400, mia="none", mechanism_rows=0))
    res = run_audit(load_dataset(_memorable_frame(), target="y", sensitive="g"), cfg,
                    executor=LocalExecutor(_LyingTrainer()))

    # Flagged: the noiseless "dp_sgd" model lets 143 of 160 canary guesses (seed 0) be right,
    # a lower bound near 1.7, far above the 0.01 it claims; 0.5 leaves room for other
    # platforms' float rounding. The baseline arm claims nothing, so it violates nothing.
    emp = res.empirical.set_index("arm")
    assert emp.loc["dp_sgd", "epsilon_lower_bound"] > 0.5
    assert emp.loc["dp_sgd", "dp_violation"]
    assert not emp.loc["baseline", "dp_violation"]
    assert res.dp_violations == ["dp_sgd"]
    assert json.loads(res.to_json())["dp_violation"] is True

    # Shown first: the summary's first line, ahead of the table in the notebook view...
    first_line = res.summary().splitlines()[0]
    assert first_line.startswith("!!! DP VIOLATION") and "dp_sgd" in first_line
    notebook = res._repr_html_()
    assert notebook.startswith("<p") and notebook.index("DP VIOLATION") < notebook.index("<h4>")
    # ...on the PDF's first page under the title, before the first section...
    render_pdf(res, tmp_path / "r.pdf")
    assert_pdf_sound(tmp_path / "r.pdf")
    page_one = PdfReader(str(tmp_path / "r.pdf")).pages[0].extract_text()
    assert "DP VIOLATION" in page_one and "dp_sgd" in page_one
    assert page_one.index("DP VIOLATION") < page_one.index(SECTION_TITLES[0])
    # ...and at the top of the HTML report, before the first section.
    render_html(res, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    banner = page.index('id="dp-violation"')
    assert banner < page.index("<section>")
    assert "dp_sgd" in page[banner:page.index("</div>", banner)]


def test_violation_banner_in_summary_and_json(result: AuditResult) -> None:
    data = result.to_dict()
    dp = next(a for a in data["arms"] if a["kind"] == "dp_sgd")
    for entry in dp["privacy"]["empirical"]["per_seed"]:
        entry["epsilon_lower_bound"], entry["dp_violation"] = 9.0, True
    bad = AuditResult.from_dict(data)
    assert bad.dp_violations == ["dp_sgd"]
    assert bad.summary().startswith("!!! DP VIOLATION")
    assert "DP VIOLATION" in bad._repr_html_()
    assert json.loads(bad.to_json())["dp_violation"] is True


def test_canary_plan_and_scoring_known_answers() -> None:
    y = np.array([0, 1] * 500, dtype=float)
    plan = canary_plan(y, PrivacyAuditConfig(canaries=400, guess_fraction=0.25, canary_rows="random"), 3)
    assert len(plan.rows) == 400 and plan.k_plus == plan.k_minus == 100
    np.testing.assert_array_equal(plan.labels, 1 - y[plan.rows])  # flipped
    assert 150 < plan.included.sum() < 250  # Binomial(400, 1/2): sd 10
    assert canary_plan(y, PrivacyAuditConfig(canaries=5000, canary_rows="random"), 0).rows.size == 1000

    class Oracle:
        """Loss 0 on included canaries, large on excluded ones: every guess right."""
        task = "classification"

        def __init__(self, plan: CanaryPlan) -> None:
            self.plan = plan

        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.where(self.plan.included, self.plan.labels, 1 - self.plan.labels) * 0.98 + 0.01

    guesses, correct = score_canaries(Oracle(plan), np.zeros((400, 1)), plan.labels, plan)  # type: ignore[arg-type]
    assert (guesses, correct) == (200, 200)


def test_dropout_noise_grows_with_gradient_norm(result: AuditResult) -> None:
    mech = result.mechanism
    uni = mech[mech["arm"] == "uniform_dropout"]
    assert (uni["rate"] == 0.5).all()
    # Multiplicative noise: strongly rank-correlated with the gradient norm.
    rho = uni[["grad_norm", "noise_norm"]].corr(method="spearman").iloc[0, 1]
    assert rho > 0.7
    ref = result.mechanism_reference
    assert ref["arm"] == "dp_sgd" and ref["noise_std_sum"] == pytest.approx(
        ref["noise_multiplier"] * ref["max_grad_norm"])


def test_dropout_noise_zero_without_dropout() -> None:
    ds = load_dataset("synthetic", n_rows=600)
    trainer = BatchedTrainer()
    from audit import TabularPreprocessor, split_dataset

    sp = split_dataset(ds)
    pre = TabularPreprocessor().fit(ds.features.iloc[sp.train])
    X = pre.transform(ds.features.iloc[sp.train])
    model = fit_one(trainer, arm=BaselineArm(), X=X, y=ds.y[sp.train], rates=np.zeros(len(X), np.float32),
                        seed=0, config=TrainingConfig(epochs=1, hidden=(8,)),
                        device=torch.device("cpu"), epsilon=None, delta=None)
    curve = dropout_noise_curve(model, X[:10], ds.y[sp.train][:10], np.zeros(10), masks=8, seed=0)
    # identical gradients under every mask: zero noise up to float64 rounding
    assert (curve["noise_norm"] < 1e-12 * curve["grad_norm"].max()).all() and (curve["grad_norm"] > 0).all()


def test_dp_group_cost_known_answer() -> None:
    rows = []
    for arm, base_err in (("baseline", 0.10), ("dp_sgd", 0.10)):
        for seed in (0, 1, 2):
            for group, extra in (("A", 0.0), ("B", 0.0)):
                cost = 0.0 if arm == "baseline" else (0.02 if group == "A" else 0.10 + 0.001 * seed)
                rows.append({"arm": arm, "seed": seed, "group": group, "metric": "error_rate",
                             "value": base_err + extra + cost})
    by_group = pd.DataFrame(rows)
    overall = by_group.groupby(["arm", "seed", "metric"], as_index=False)["value"].mean()
    cost = dp_group_cost(by_group, overall, [BaselineArm(), DPSGDArm()]).set_index("group")
    assert cost.loc["A", "cost"] == pytest.approx(0.02)
    assert cost.loc["B", "cost"] == pytest.approx(0.101)
    assert cost.loc["B", "flagged"] and not cost.loc["A", "flagged"]
    assert dp_group_cost(by_group, overall, [DPSGDArm()]).empty  # no baseline: no cost


@pytest.mark.parametrize(("kw", "message"), [
    ({"mia": "shadow"}, r"mia must be one of \['loss', 'lira', 'rmia', 'none'\]"),
    ({"mia": "lira", "shadows": 1}, "LiRA needs at least 2 shadow models"),
    ({"mia": "rmia", "shadows": 1}, r"LiRA and RMIA \(which share their shadow models\) need at least 2"),
    ({"canary_kind": "random"}, r"canary_kind must be one of \['flipped', 'natural'\]"),
    ({"canary_rows": "far"}, r"canary_rows must be one of \['isolated', 'random'\]"),
    ({"guess_fraction": 0.7}, r"guess_fraction must be a number in \(0, 0.5\], not 0.7"),
    ({"canaries": 1}, r"PrivacyAuditConfig canaries must be 0 or an integer >= 2, not 1"),
    ({"mechanism_masks": 1}, r"PrivacyAuditConfig mechanism_masks must be an integer >= 2, not 1"),
])
def test_privacy_audit_config_validation(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PrivacyAuditConfig(**kw)


def test_lira_and_rmia_options_train_one_shadow_set_and_report_both_per_group() -> None:
    data = load_dataset("synthetic", n_rows=1500)
    results = {}
    for mia in ("lira", "rmia"):
        cfg = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0,
                          training=TrainingConfig(epochs=1, hidden=(8,)),
                          privacy_audit=PrivacyAuditConfig(mia=mia, shadows=4, canaries=0,
                                                           mia_bootstrap=20, mechanism_rows=0))
        events: list = []
        results[mia] = run_audit(data, cfg, progress=events.append)
        # 1 arm + 4 shadows, trained once for both attacks.
        shadows = [e for e in events if e.stage == "shadows"]
        assert shadows[-1].stage_done == shadows[-1].stage_total == 4
        assert events[-1].total == 5
    res = results["rmia"]
    assert set(res.mia["attack"]) == set(res.roc["attack"]) == {"loss", "lira", "rmia"}
    for attack in ("lira", "rmia"):
        sel = res.mia[(res.mia["attack"] == attack) & res.mia["seed"].isna()]
        assert set(sel["group"]) == {"overall", "majority", "minority"}
        auc = sel[(sel["group"] == "overall") & (sel["metric"] == "auc")]["value"].iloc[0]
        assert 0.3 < auc < 0.8
        # Rows without an OUT shadow (Binomial: about 1/16 with 4 shadows) are dropped,
        # from LiRA and RMIA alike.
        n = sel["n_members"].iloc[0] + sel["n_nonmembers"].iloc[0]
        assert 0.85 * 2 * 300 < n < 2 * 300
    lira_n = res.mia.loc[res.mia["attack"] == "lira", ["group", "n_members", "n_nonmembers"]]
    rmia_n = res.mia.loc[res.mia["attack"] == "rmia", ["group", "n_members", "n_nonmembers"]]
    assert lira_n.to_numpy().tolist() == rmia_n.to_numpy().tolist()
    # "lira" and "rmia" are the same audit: identical attack results.
    pd.testing.assert_frame_equal(results["lira"].mia, res.mia)
    pd.testing.assert_frame_equal(results["lira"].roc, res.roc)
    assert res.empirical.empty


def test_cli_audit_bound_matches_paper_value() -> None:
    # Steinke, Nasr, Jagielski (2023), Appendix D example: m=1000, r=100, v=75, delta=1e-4
    # at 95% confidence -> 0.673.
    res = CliRunner().invoke(main, ["audit-bound", "-m", "1000", "-r", "100", "-v", "75", "-d", "1e-4",
                                    "--json"], catch_exceptions=False)
    assert json.loads(res.output)["epsilon_lower_bound"] == pytest.approx(0.673, abs=5e-4)
    bad = CliRunner().invoke(main, ["audit-bound", "-m", "10", "-r", "20", "-v", "5", "-d", "1e-5"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output


def test_canary_run_mechanism_fixed_before_the_coins(result: AuditResult) -> None:
    """q, steps and sigma of a DP canary run come from n_train + m, not from how many
    canaries were drawn in, so every seed's run of a kind has the same accountant epsilon
    (the black-box and the row-canary runs have different m)."""
    dp = result.empirical[result.empirical["kind"] == "dp_sgd"]
    for _, runs in dp.groupby("audit"):
        assert runs["included"].nunique() > 1  # different coins...
        assert runs["run_epsilon"].nunique() == 1  # ...same mechanism


def test_bound_confidence_is_bonferroni_over_seeds(result: AuditResult) -> None:
    emp = result.empirical
    assert (emp["family_confidence"] == 0.95).all()
    assert emp["confidence"].iloc[0] == pytest.approx(1 - 0.05 / 2)  # two seeds


def test_advantage_has_no_biased_interval(result: AuditResult) -> None:
    adv = result.mia[(result.mia["metric"] == "advantage") & result.mia["seed"].notna()]
    assert adv["ci_low"].isna().all() and adv["value"].notna().any()


def test_no_audit_means_null_violation_not_false() -> None:
    cfg = AuditConfig(arms=(DPSGDArm(),), seeds=1, n_bootstrap=0,
                      training=TrainingConfig(epochs=1, hidden=(8,)),
                      privacy_audit=PrivacyAuditConfig(canaries=0, mia="none", mechanism_rows=0))
    data = run_audit(load_dataset("synthetic", n_rows=1000), cfg).to_dict()
    assert data["dp_violation"] is None
    assert data["arms"][0]["privacy"]["dp_violation"] is None
    with pytest.raises(ConfigError, match="canaries must be 0"):
        PrivacyAuditConfig(canaries=1)


def test_guesses_never_exceed_canaries() -> None:
    y = np.zeros(7)
    plan = canary_plan(y, PrivacyAuditConfig(canaries=7, guess_fraction=0.5, canary_rows="random"), 0)
    assert plan.k_plus + plan.k_minus <= 7
    with pytest.raises(ConfigError, match="at least 2 canaries"):
        canary_plan(np.zeros(1), PrivacyAuditConfig(canaries=5, canary_rows="random"), 0)


def test_rmia_population_is_validation_rows_drawn_before_training() -> None:
    cfg = AuditConfig(arms=(BaselineArm(),), seeds=1)
    prep = prepare(load_dataset("synthetic", n_rows=3000), cfg, {})
    plain = plan_shadow_pool(prep.train, prep.test, seed=0, shadows=4)
    pool = plan_shadow_pool(prep.train, prep.test, seed=0, shadows=4, population=prep.val)
    # The population does not disturb the shadows' halves (LiRA's numbers stay as they were).
    assert all(np.array_equal(a, b) for a, b in zip(plain.halves, pool.halves, strict=True))
    assert plain.population is None and pool.population is not None
    pop = pool.population
    # Every validation row (fewer than the 10,000 cap), in order; none of them is a pool row.
    np.testing.assert_array_equal(pop.X, prep.val.X)
    pool_rows = {row.tobytes() for row in pool.X}
    assert not any(row.tobytes() in pool_rows for row in pop.X)
    # One mask per shadow, each leaving out about half the rows (Binomial(600, 1/2): sd 12).
    assert len(pop.unused) == 4 and all(250 < m.sum() < 350 for m in pop.unused)
    again = plan_shadow_pool(prep.train, prep.test, seed=0, shadows=4, population=prep.val)
    assert all(np.array_equal(a, b) for a, b in zip(pop.unused, again.population.unused, strict=True))
    capped = plan_shadow_pool(prep.train, prep.test, seed=0, shadows=4, population=prep.val,
                              population_rows=100)
    assert len(capped.population.X) == len(capped.population.unused[0]) == 100
