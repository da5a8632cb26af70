"""Everything an audit will do, planned for progress before anything runs, with a prior
estimate of the seconds each piece takes.

Training is estimated by the executor (:meth:`audit.Executor.work`, in row passes of
:mod:`audit.training._cost`); the other pieces by the rough CPU timings below, measured
on the synthetic data and on Adult (20,000 training rows, 106 encoded columns). They only
weigh the work before it is timed: :class:`~._progress.Progress` rescales each kind by
the time it actually takes. The steps planned here must be the ones :func:`._measure.measure`
reports, in kind, arm and seed (progress raises an InternalError otherwise).
"""

from __future__ import annotations

import numpy as np

from ..fairness._gap_change import arm_comparison_pairs
from ..training._config import TrainingConfig
from ..training._cost import JobWork
from ..training._executor import Executor
from ..training._trainer import FitJob
from ._measure import P_TRAIN_GRID
from ._plan import AuditPlan, SolverPlan
from ._prepare import PreparedData
from ._progress import Progress

__all__ = ["plan_progress", "training_work"]

#: Fairness metrics of one arm: a fixed cost (pandas), and seconds per (seed x test row
#: x bootstrap resample).
METRICS_FIXED_S = 0.15
METRICS_S = 6e-8
#: Gap changes: seconds per (pair x seed x test row x resample).
GAP_CHANGES_S = 1.5e-8
#: Membership inference of one model: a fixed cost, per (attack x pool row x resample),
#: and per (shadow x scored row) for the shadows' predictions.
MEMBERSHIP_FIXED_S = 0.02
MEMBERSHIP_S = 7e-8
SHADOW_PREDICT_S = 2e-7
#: Scoring one canary run of one arm (guess counts and the bounds' tests): black-box
#: (with the gradient canaries of DP-SGD), and white-box row canaries.
CANARY_SCORING_S = 0.01
WHITE_BOX_SCORING_S = 0.002
#: The dropout-noise curve of one arm: per (row x mask x parameter).
MECHANISM_S = 3.5e-8
#: The logistic closed form's fit of one candidate: per (training row x column).
CLOSED_FORM_S = 5e-7
#: Scoring the solver's candidates: a fixed cost (the held-out verdict's bootstrap), and
#: per (fitted model x scored row).
SOLVER_SCORING_FIXED_S = 0.5
SOLVER_SCORING_S = 1e-6
#: Missing features: seconds per (seed x draw x rate x test row x model parameter).
MISSING_S = 1e-9
#: A fixed cost of every step (Python, pandas).
STEP_S = 0.005


def training_work(runner: Executor, jobs: list[FitJob], config: TrainingConfig) -> list[JobWork]:
    """The executor's estimate of each job (:meth:`audit.Executor.work`)."""
    return runner.work(jobs, config=config)


def plan_progress(progress: Progress, runner: Executor, prepared: PreparedData, solver: SolverPlan,
                  audit: AuditPlan) -> None:
    """Plan on ``progress`` every model and step of the audit, in the order they run.

    ``audit`` is the provisional plan (``plan_audit(..., solutions=None)``); its jobs are
    swapped for the real ones once the rates are solved, as are the solver's provisional
    jobs once the closed form has run.
    """
    n_train, d = prepared.train.X.shape
    for label, search in solver.searches.items():
        for _ in range(search.closed_form_fits):
            progress.add_step("solver", "closed_form", STEP_S / 5 + CLOSED_FORM_S * n_train * d, arm=label)
    for search in solver.searches.values():
        jobs = search.provisional_jobs()
        progress.add_jobs(jobs, training_work(runner, jobs, solver.training),
                          epochs=solver.training.epochs)
    for label, search in solver.searches.items():
        progress.add_step("solver", "solver_scoring",
                          SOLVER_SCORING_FIXED_S
                          + SOLVER_SCORING_S * len(search.provisional_jobs()) * search.rows_scored,
                          arm=label, counts=False)
    jobs = audit.jobs()
    progress.add_jobs(jobs, training_work(runner, jobs, audit.config.training),
                      epochs=audit.config.training.epochs)
    _plan_measurement(progress, prepared, audit)


def _plan_measurement(progress: Progress, prepared: PreparedData, plan: AuditPlan) -> None:
    """The steps of :func:`._measure.measure`, in its order."""
    config = plan.config
    seeds, n_test, n_train = plan.seeds, len(prepared.test), len(prepared.train)
    resamples = config.n_bootstrap + 1
    for arm in plan.arms:
        progress.add_step("measure", "metrics", METRICS_FIXED_S + METRICS_S * len(seeds) * n_test * resamples,
                          arm=arm.label)
    pairs = arm_comparison_pairs(plan.arms)
    if pairs:
        progress.add_step("measure", "gap_changes",
                          STEP_S + GAP_CHANGES_S * len(pairs) * len(seeds) * n_test * resamples)
    audit_cfg = config.privacy_audit
    if audit_cfg.mia != "none":
        pool = 2 * min(n_train, n_test)
        per_attack = MEMBERSHIP_S * pool * (audit_cfg.mia_bootstrap + 1)
        shadowed_s = 0.0  # LiRA and RMIA, on the first seed's models (the shadows' seed)
        if plan.shadow_pool is not None:
            population = plan.shadow_pool.population
            scored = pool + (len(population.y) if population is not None else 0)
            shadowed_s = ((1 + (population is not None)) * per_attack
                          + SHADOW_PREDICT_S * len(plan.shadow_pool.halves) * scored)
        for arm in plan.arms:
            for seed in seeds:
                progress.add_step("measure", "membership",
                                  MEMBERSHIP_FIXED_S + per_attack + (shadowed_s if seed == seeds[0] else 0.0),
                                  arm=arm.label, seed=seed)
    for run in plan.canary_runs:
        black_box = run.plan is not None
        for arm in plan.arms:
            progress.add_step("measure", "canary_audit" if black_box else "white_box",
                              CANARY_SCORING_S if black_box else WHITE_BOX_SCORING_S,
                              arm=arm.label, seed=run.seed)
    widths = [prepared.train.X.shape[1], *config.training.hidden, 1]
    params = sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))
    n_rows = min(audit_cfg.mechanism_rows, n_train)
    if n_rows:
        for arm in plan.arms:
            if np.any(plan.row_rates(arm, prepared.train.groups) > 0):
                progress.add_step("measure", "mechanism",
                                  STEP_S + MECHANISM_S * n_rows * audit_cfg.mechanism_masks * params,
                                  arm=arm.label)
    missing = config.missing
    if missing is not None:
        per_model = MISSING_S * missing.draws * n_test * params
        points = len(missing.grid) + len(set(missing.group_rates(prepared.group_labels).values()))
        for arm in plan.arms:
            progress.add_step("measure", "missing_features", STEP_S + per_model * len(seeds) * points,
                              arm=arm.label)
        if plan.missing_arms:
            progress.add_step("measure", "missing_features",
                              STEP_S + per_model * len(seeds) * len(missing.grid) * len(plan.missing_arms),
                              arm=P_TRAIN_GRID)
