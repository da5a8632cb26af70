"""End-to-end on the real UCI Adult data from ../shared/data (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main

from audit import AuditConfig, BaselineArm, DPSGDArm, TrainingConfig, load_dataset, run_audit

pytestmark = pytest.mark.adult


def test_load_adult_file(adult_path: Path) -> None:
    ds = load_dataset(adult_path, target="Y", sensitive="sex")
    assert ds.n_rows == 32561
    assert ds.group_labels == ("Female", "Male")
    assert ds.positive_label == ">50K"
    # Adult marks unknown workclass/occupation/native-country with '?'
    assert set(ds.missing_values) == {"workclass", "occupation", "native-country"}


def test_adult_audit_dp_epsilon_and_groups(adult_path: Path) -> None:
    ds = load_dataset("adult", path=adult_path)
    cfg = AuditConfig(arms=(BaselineArm(), DPSGDArm()), seeds=1, epsilon=3.0, n_bootstrap=100,
                      training=TrainingConfig(epochs=1, hidden=(32,)))
    res = run_audit(ds, cfg)
    priv = res.aggregate("privacy").set_index("arm")
    assert 0 < priv.loc["dp_sgd", "epsilon"] <= 3.0
    assert priv["epsilon"].isna().loc["baseline"]
    agg = res.aggregate("by_group")
    for arm in ("baseline", "dp_sgd"):
        groups = set(agg[(agg["arm"] == arm) & (agg["metric"] == "error_rate")]["group"])
        assert groups == {"Female", "Male"}
    err = agg[(agg["arm"] == "baseline") & (agg["metric"] == "error_rate")].set_index("group")["value"]
    # A one-epoch MLP on Adult is far better than the 24% majority-class error.
    assert err.max() < 0.22


@pytest.mark.slow
def test_cli_done_when_command(adult_path: Path, tmp_path: Path) -> None:
    """The issue's acceptance command, with every default (3 seeds, 10 epochs, all four arms)."""
    res = CliRunner().invoke(main, [
        "run", "--dataset", str(adult_path), "--target", "Y", "--sensitive", "sex",
        "--arms", "baseline,uniform_dropout,group_dropout,dp_sgd",
        "--group-rates", "Female=0.3,Male=0.5", "--seeds", "3", "--epsilon", "3",
        "--out", str(tmp_path), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "results.json").read_text())
    for arm in data["arms"]:
        eps = arm["privacy"]["epsilon"]
        assert (0 < eps <= 3) if arm["kind"] == "dp_sgd" else eps is None
        assert set(arm["metrics"]["aggregate"]["by_group"]) == {"Female", "Male"}


# Slow (about 20 s). In the default suite, the DP-violation test in test_privacy_audit.py
# already shows on Adult that the canary audit finds a non-private model's leakage, and
# the synthetic privacy-audit tests that an honest DP arm is not flagged.
@pytest.mark.slow
def test_adult_privacy_audit_done_when(adult_path: Path) -> None:
    """dp_sgd at epsilon 3: over 3 seeds the one-run lower bound stays <= 3 without a
    violation; the baseline with flipped canaries shows measurable leakage (bound > 0)."""
    from audit import PrivacyAuditConfig

    ds = load_dataset("adult", path=adult_path)
    cfg = AuditConfig(arms=(BaselineArm(), DPSGDArm()), seeds=3, epsilon=3.0, n_bootstrap=100,
                      privacy_audit=PrivacyAuditConfig(canary_kind="flipped", mechanism_rows=0))
    res = run_audit(ds, cfg)
    emp = res.empirical
    dp = emp[emp["kind"] == "dp_sgd"]
    assert len(dp) == 3 * 3  # black-box, white-box rows and white-box gradient per seed
    assert (dp["epsilon_lower_bound"] <= 3.0).all() and not dp["dp_violation"].any()
    base = emp[emp["kind"] == "baseline"]
    assert base["epsilon_lower_bound"].max() > 0
    mia = res.mia[res.mia["seed"].isna() & (res.mia["metric"] == "auc")]
    for arm in ("baseline", "dp_sgd"):
        assert set(mia[mia["arm"] == arm]["group"]) == {"overall", "Female", "Male"}
