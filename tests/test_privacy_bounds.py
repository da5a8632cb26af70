"""AuditResult.privacy_bounds(): claimed against proven privacy, from hand-built frames.

One row per (arm, audit) with the largest bounds over seeds and one verdict sentence,
built in the engine so that the CLI, the report and the app say the same thing.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from audit import CANARY_AUDITS, PRIVACY_BOUNDS_COLUMNS, AuditResult, bound_verdict, largest_bounds
from audit.result._schema import EMPIRICAL_COLUMNS, normalise_empirical, normalise_frames

ARMS = [("baseline", "baseline"), ("dp_sgd", "dp_sgd"), ("broken", "dp_sgd")]
CLAIMS = {"baseline": math.nan, "dp_sgd": 4.0, "broken": 0.5}


def _emp_row(arm: str, kind: str, seed: int, audit: str, bound: float, gdp: float,
             violation: bool = False) -> dict[str, object]:
    canaries, guesses = {"black_box": (1000, 400), "white_box_rows": (500, 200),
                         "white_box_gradient": (5000, 100)}[audit]
    return {"arm": arm, "kind": kind, "seed": seed, "audit": audit, "canaries": canaries,
            "canary_kind": {"black_box": "flipped", "white_box_rows": "crafted"}.get(audit, "gradient"),
            "included": canaries // 2, "k_plus": guesses // 2, "k_minus": guesses // 2,
            "guesses": guesses, "correct": guesses // 2, "delta": 1e-5, "confidence": 0.975,
            "family_confidence": 0.95, "epsilon_lower_bound": bound, "mu_lower_bound": bound / 3,
            "epsilon_lower_bound_gdp": gdp, "run_epsilon": CLAIMS[arm], "dp_violation": violation}


def _result(rows: list[dict[str, object]]) -> AuditResult:
    order = [a for a, _ in ARMS]
    privacy = pd.DataFrame([
        {"arm": a, "kind": k, "seed": s, "epsilon": CLAIMS[a], "delta": 1e-5}
        for a, k in ARMS for s in (0, 1, None)])
    empty = pd.DataFrame({"arm": [], "kind": [], "seed": []})
    by_group, overall, gaps, privacy = normalise_frames(empty, empty, empty, privacy, order)
    return AuditResult(
        config={"seeds": [0, 1], "privacy_audit": {"confidence": 0.95}}, dataset={"name": "hand", "rows": 0, "groups": {}},
        arms=pd.DataFrame([{"arm": a, "kind": k, "params": {}} for a, k in ARMS]),
        by_group=by_group, overall=overall, gaps=gaps, privacy=privacy,
        empirical=normalise_empirical(pd.DataFrame(rows, columns=list(EMPIRICAL_COLUMNS)), order))


@pytest.fixture()
def hand() -> AuditResult:
    rows = []
    for seed, (bb, wr, wg) in enumerate([(0.0, 0.3, 1.2), (0.0, 0.6, 1.7)]):
        rows += [_emp_row("baseline", "baseline", seed, "black_box", 0.0, 0.0),
                 _emp_row("baseline", "baseline", seed, "white_box_rows", wr, wr + 0.4),
                 _emp_row("dp_sgd", "dp_sgd", seed, "black_box", bb, 0.0),
                 _emp_row("dp_sgd", "dp_sgd", seed, "white_box_rows", 0.0, 0.0),
                 _emp_row("dp_sgd", "dp_sgd", seed, "white_box_gradient", wg, wg + 0.5)]
    rows += [_emp_row("broken", "dp_sgd", 0, "white_box_gradient", 2.5, 3.0, violation=True),
             _emp_row("broken", "dp_sgd", 1, "white_box_gradient", 0.2, 0.3)]
    return _result(rows)


def test_one_row_per_arm_and_audit_in_order(hand: AuditResult) -> None:
    bounds = hand.privacy_bounds()
    assert list(bounds.columns) == list(PRIVACY_BOUNDS_COLUMNS)
    assert list(zip(bounds["arm"], bounds["audit"], strict=True)) == [
        ("baseline", "black_box"), ("baseline", "white_box_rows"), ("dp_sgd", "black_box"),
        ("dp_sgd", "white_box_rows"), ("dp_sgd", "white_box_gradient"), ("broken", "white_box_gradient")]
    assert set(bounds["audit"]) <= set(CANARY_AUDITS)


def test_bounds_are_the_largest_over_seeds(hand: AuditResult) -> None:
    b = hand.privacy_bounds().set_index(["arm", "audit"])
    assert b.loc[("baseline", "white_box_rows"), "epsilon_lower_bound"] == pytest.approx(0.6)
    assert b.loc[("baseline", "white_box_rows"), "epsilon_lower_bound_gdp"] == pytest.approx(1.0)
    assert b.loc[("dp_sgd", "white_box_gradient"), "epsilon_lower_bound"] == pytest.approx(1.7)
    assert b.loc[("dp_sgd", "white_box_gradient"), "epsilon_lower_bound_gdp"] == pytest.approx(2.2)
    assert b.loc[("broken", "white_box_gradient"), "epsilon_lower_bound"] == pytest.approx(2.5)
    assert bool(b.loc[("broken", "white_box_gradient"), "dp_violation"])  # any seed
    assert not b.loc[("dp_sgd", "white_box_gradient"), "dp_violation"]
    assert math.isnan(b.loc[("baseline", "black_box"), "accountant_epsilon"])
    assert b.loc[("dp_sgd", "black_box"), "accountant_epsilon"] == 4.0
    assert b.loc[("dp_sgd", "white_box_gradient"), "canaries"] == 5000
    assert b.loc[("dp_sgd", "white_box_gradient"), "guesses"] == 100


def test_verdict_texts(hand: AuditResult) -> None:
    v = hand.privacy_bounds().set_index(["arm", "audit"])["verdict"]
    zero = "this audit could not show any leakage; that is not evidence of privacy"
    # zero, no guarantee
    assert v[("baseline", "black_box")] == f"No guarantee; {zero}."
    # positive bound, no guarantee: never called a guarantee
    text = v[("baseline", "white_box_rows")]
    assert text.startswith("No guarantee; this audit proves, at 95% confidence, that the model's "
                           "training leaks at least as much as epsilon 0.60 allows")
    assert "not an epsilon guarantee" in text and "consistent" not in text
    assert "observes every training step" in text and "DP-SGD" not in text
    assert "Gaussian-DP estimate, which assumes a Gaussian trade-off curve, is epsilon 1.00" in text
    # zero, with a guarantee
    assert v[("dp_sgd", "black_box")] == f"{zero[0].upper()}{zero[1:]}."
    assert "every training step, which DP-SGD's guarantee covers" in v[("dp_sgd", "white_box_rows")]
    # consistent with the claim
    text = v[("dp_sgd", "white_box_gradient")]
    assert text.startswith("This audit proves, at 95% confidence, that the model's training leaks "
                           "at least as much as epsilon 1.70 allows, consistent with its claim of "
                           "epsilon 4.00")
    assert "which DP-SGD's guarantee covers" in text and "epsilon 2.20" in text
    # violation
    text = v[("broken", "white_box_gradient")]
    assert text.startswith("Violates its claim: this audit proves, at 95% confidence, that the model's "
                           "training leaks more than epsilon 0.50 allows (lower bound 2.50)")
    assert "no guarantee" not in text.lower()


def test_verdict_edge_cases() -> None:
    # A Gaussian-DP estimate above the claim is an estimate, never a violation.
    text = bound_verdict("white_box_gradient", epsilon_lower_bound=1.0, accountant_epsilon=2.0,
                         dp_violation=False, epsilon_lower_bound_gdp=2.5)
    assert "consistent with its claim of epsilon 2.00" in text
    assert "above the claim, but an estimate, not a proof" in text
    # No Gaussian-DP figure (delta 0): no sentence about it.
    text = bound_verdict("black_box", epsilon_lower_bound=0.4, accountant_epsilon=None,
                         dp_violation=False, epsilon_lower_bound_gdp=math.nan)
    assert "Gaussian" not in text and "every training step" not in text
    # Above the arm's claim but within its canary run's (which also counts the canaries).
    text = bound_verdict("black_box", epsilon_lower_bound=2.01, accountant_epsilon=2.0,
                         dp_violation=False, run_epsilon=2.02)
    assert "canary run (epsilon 2.02" in text and "its claim of epsilon 2.00" not in text
    # Confidence is named as given.
    assert "at 99% confidence" in bound_verdict("black_box", epsilon_lower_bound=0.4,
                                                accountant_epsilon=1.0, dp_violation=False,
                                                confidence=0.99)


def test_without_canary_audit_the_frame_is_empty() -> None:
    res = _result([])
    bounds = res.privacy_bounds()
    assert bounds.empty and list(bounds.columns) == list(PRIVACY_BOUNDS_COLUMNS)


def test_results_json_by_audit_and_round_trip(hand: AuditResult) -> None:
    data = json.loads(hand.to_json())
    dp = next(a for a in data["arms"] if a["name"] == "dp_sgd")["privacy"]["empirical"]
    assert list(dp["by_audit"]) == ["black_box", "white_box_rows", "white_box_gradient"]
    assert dp["by_audit"]["white_box_gradient"] == {
        "epsilon_lower_bound": 1.7, "epsilon_lower_bound_gdp": 2.2, "dp_violation": False}
    broken = next(a for a in data["arms"] if a["name"] == "broken")["privacy"]["empirical"]
    assert broken["by_audit"]["white_box_gradient"]["dp_violation"] is True
    back = AuditResult.from_json(hand.to_json())
    pd.testing.assert_frame_equal(back.empirical, hand.empirical)
    pd.testing.assert_frame_equal(back.privacy_bounds(), hand.privacy_bounds())
    assert {"mu_lower_bound", "epsilon_lower_bound_gdp", "audit"} <= set(back.empirical.columns)


def test_largest_bounds_names_the_audit(hand: AuditResult) -> None:
    top = largest_bounds(hand.privacy_bounds()).set_index("arm")
    assert list(top.index) == ["baseline", "dp_sgd", "broken"]
    assert top.loc["baseline", "audit"] == "white_box_rows"
    assert top.loc["dp_sgd", "audit"] == "white_box_gradient"
    assert top.loc["dp_sgd", "epsilon_lower_bound"] == pytest.approx(1.7)
    assert bool(top.loc["broken", "dp_violation"])
    assert largest_bounds(_result([]).privacy_bounds()).empty
    # the CLI's summary table shows it, with the audit's label
    rows = {line.split()[0]: line for line in hand.summary().splitlines()
            if line.split() and line.split()[0] in ("baseline", "dp_sgd", "broken")}
    assert "1.70 (white-box gradient)" in rows["dp_sgd"]
    assert "2.50 (white-box gradient) VIOLATION" in rows["broken"]


def test_a_violation_names_the_epsilon_it_was_checked_against() -> None:
    # dp_violation compares with the canary run's epsilon; say so when it differs from the arm's.
    text = bound_verdict("white_box_gradient", epsilon_lower_bound=5.3, accountant_epsilon=4.0,
                         dp_violation=True, run_epsilon=3.99)
    assert text.startswith("Violates its claim: this audit proves, at 95% confidence, that the model's "
                           "training leaks more than epsilon 3.99 (its canary run's claim) allows")
    same = bound_verdict("black_box", epsilon_lower_bound=5.3, accountant_epsilon=4.0,
                         dp_violation=True, run_epsilon=4.001)
    assert "more than epsilon 4.00 allows" in same
