"""estimate_audit: the models an audit will train, counted before anything is trained."""

from __future__ import annotations

from dataclasses import replace

import pytest

from audit import (
    AuditConfig,
    BaselineArm,
    DPSGDArm,
    GroupDropoutArm,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    estimate_audit,
    load_dataset,
)
from audit.pipeline._plan import audit_job_count, plan_audit, plan_solver
from audit.pipeline._prepare import prepare


@pytest.mark.parametrize(("hidden", "mia", "canaries"), [((8,), "loss", 100), ((), "lira", 0), ((8,), "none", 0)])
def test_counts_match_the_audits_own_plan(hidden: tuple[int, ...], mia: str, canaries: int) -> None:
    ds = load_dataset("synthetic", n_rows=4000)
    config = AuditConfig(
        arms=(BaselineArm(), UniformDropoutArm(p=0.3), GroupDropoutArm(), DPSGDArm()), seeds=2,
        training=TrainingConfig(hidden=hidden, epochs=1),
        privacy_audit=PrivacyAuditConfig(mia=mia, shadows=2, canaries=canaries))
    estimate = estimate_audit(ds, config)
    prepared = prepare(ds, config, {})
    solver = plan_solver(prepared, config)
    solver_jobs = solver.jobs()
    # The audit's plan with the group rates given (the plan's shape does not depend on them).
    given = replace(config, arms=(*config.arms[:2], GroupDropoutArm(rates={"majority": 0.3, "minority": 0.3}),
                                  config.arms[3]))
    planned = plan_audit(prepared, given, {}).jobs()
    assert len(planned) == audit_job_count(config, len(prepared.test))
    by_purpose: dict[str, int] = {}
    for job in planned:
        by_purpose[job.purpose] = by_purpose.get(job.purpose, 0) + 1
    assert {k: v for k, v in estimate.models.items() if k != "solver"} == by_purpose
    # The solver's count assumes the logistic closed form adds a candidate of its own:
    # exact, or one candidate's fits (one per fold) too many.
    fits_per_candidate = 4
    assert estimate.models["solver"] - len(solver_jobs) in (0, fits_per_candidate if hidden else 0)
    assert estimate.total_models == sum(estimate.models.values())
    assert estimate.seconds > 0


def test_more_epochs_and_rows_cost_more() -> None:
    small = estimate_audit("synthetic", AuditConfig(training=TrainingConfig(epochs=2)), n_rows=2000)
    long = estimate_audit("synthetic", AuditConfig(training=TrainingConfig(epochs=20)), n_rows=2000)
    big = estimate_audit("synthetic", AuditConfig(training=TrainingConfig(epochs=2)), n_rows=20_000)
    assert small.seconds < long.seconds and small.seconds < big.seconds
    assert small.models == long.models


def test_invalid_settings_are_refused_as_the_audit_would() -> None:
    from audit import ConfigError

    with pytest.raises(ConfigError, match="delta"):
        estimate_audit("synthetic", AuditConfig(arms=(DPSGDArm(),), delta=0.01), n_rows=2000)
