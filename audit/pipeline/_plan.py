"""Plan: every model an audit needs, as jobs, before any of them is trained.

Two plans, because group-dropout rates are solved from trained candidates:

1. :func:`plan_solver` -- the group-dropout candidates x seeds of every arm whose rates
   are ``"auto"`` (empty when there is none);
2. :func:`plan_audit` -- with those rates solved: arms x seeds, the shadow (reference)
   models that LiRA and RMIA share and the one-run canary runs, each a
   :class:`~audit.FitJob` with its rows, rates, seed, epsilon and delta.

:func:`plan_solver` first checks every arm against the data (group names, delta), so
that a wrong group name fails in a second, not after the solver's training. The rows
of the shadow models and canary runs do not depend on the arms' rates, so they are
planned before the solver runs (:func:`plan_audit_rows`), and a provisional plan
(``plan_audit(..., solutions=None)``) holds every model the audit will train, for
progress to count and weigh from the start (:func:`audit_job_count` is its count).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InternalError
from ..arms._arms import Arm, DPSGDArm, GroupDropoutArm, UniformDropoutArm, make_arm
from ..defaults import DEFAULT_DROPOUT, MAX_SOLVER_RATE
from ..dp._accounting import default_delta
from ..privacy._canaries import CanaryRun, crafted_canary_count, plan_canary_runs
from ..privacy._membership import ShadowPool, plan_shadow_pool
from ..solver._solver import DropoutSolution, GroupDropoutSearch, SolverProblem
from ..training._config import TrainingConfig
from ..training._trainer import FitJob, FittedModel, group_indices
from ._config import AuditConfig
from ._prepare import PreparedData

__all__ = ["AuditPlan", "AuditRows", "SolverPlan", "TrainedModels", "audit_job_count",
           "missing_job_count", "plan_audit", "plan_audit_rows", "plan_solver"]


# --------------------------------------------------------------------------- budgets


@dataclass(frozen=True)
class PrivacyBudgets:
    """The (epsilon, delta) every arm is trained or audited at.

    Arms without a guarantee are audited at the DP arms' delta (the smallest one when
    they differ), so their empirical lower bounds compare like with like.
    """

    epsilon: Mapping[str, float | None]
    delta: Mapping[str, float]
    audit_delta: float

    @classmethod
    def of(cls, config: AuditConfig, n_train: int) -> PrivacyBudgets:
        audit_delta = config.delta if config.delta is not None else default_delta(n_train)
        dp_arms = [a for a in config.arms if isinstance(a, DPSGDArm)]
        dp_deltas = [float(a.delta) if a.delta is not None else audit_delta for a in dp_arms]
        shared = min(dp_deltas) if dp_deltas else audit_delta
        epsilon: dict[str, float | None] = {}
        delta: dict[str, float] = {}
        for arm in config.arms:
            if isinstance(arm, DPSGDArm):
                epsilon[arm.label] = float(arm.epsilon) if arm.epsilon is not None else float(config.epsilon)
                delta[arm.label] = float(arm.delta) if arm.delta is not None else audit_delta
            else:
                epsilon[arm.label] = None
                delta[arm.label] = shared
        return cls(epsilon, delta, audit_delta)

    def check(self, arms: Sequence[Arm], n_train: int) -> None:
        for arm in arms:
            if arm.private and self.delta[arm.label] >= 1.0 / n_train:
                # With delta >= 1/n, "release one random row in the clear" satisfies
                # (0, delta)-DP: such a guarantee says nothing.
                raise ConfigError(
                    f"arm '{arm.label}': delta {self.delta[arm.label]:g} is not below 1/n_train = "
                    f"{1 / n_train:.3g}; use a smaller delta (default min(1e-5, 1/(10 n_train)) = "
                    f"{default_delta(n_train):.3g})", param="delta")


# --------------------------------------------------------------------------- solver


@dataclass(frozen=True, eq=False)
class SolverPlan:
    """The group-dropout searches of an audit, one per arm with ``rates="auto"``."""

    searches: Mapping[str, GroupDropoutSearch]
    #: How the candidates are trained (a logistic model when the audit's MLP has no
    #: hidden layer); the same configuration :func:`audit.solve_group_dropout` uses.
    training: TrainingConfig

    def jobs(self) -> list[FitJob]:
        return [job for search in self.searches.values() for job in search.jobs]

    def conclude(self, models: Sequence[FittedModel],
                 on_concluded: Callable[[str], None] | None = None) -> dict[str, DropoutSolution]:
        """Each search's solution from its share of the fitted models (in job order);
        ``on_concluded(label)`` after each search."""
        check_models_match(self.jobs(), models)
        out, start = {}, 0
        for label, search in self.searches.items():
            count = len(search.jobs)
            out[label] = search.conclude(models[start:start + count])
            start += count
            if on_concluded is not None:
                on_concluded(label)
        return out


def check_models_match(jobs: Sequence[FitJob], models: Sequence[FittedModel]) -> None:
    """One fitted model per job, in job order: what every executor promises."""
    if len(models) != len(jobs):
        raise InternalError(f"{len(models)} fitted models for {len(jobs)} planned jobs")
    for i, (job, model) in enumerate(zip(jobs, models, strict=True)):
        if model.job is not None and model.job is not job:
            raise InternalError(f"the executor returned job {i}'s model out of order")


def plan_solver(prepared: PreparedData, config: AuditConfig) -> SolverPlan:
    """Check every arm against the data, then plan the solver's candidates."""
    searches = {label: GroupDropoutSearch(problem)
                for label, problem in solver_problems(prepared, config).items()}
    # Every search of one audit trains the same model (SolverProblem.empirical_training).
    training = next(iter(searches.values())).training if searches else config.training
    return SolverPlan(searches, training)


def solver_problems(prepared: PreparedData, config: AuditConfig) -> dict[str, SolverProblem]:
    """Check every arm against the data; the solver's problem of each auto group-dropout arm."""
    PrivacyBudgets.of(config, prepared.n_train).check(config.arms, prepared.n_train)
    if config.missing is not None:
        config.missing.group_rates(prepared.group_labels)  # raises on unknown groups
    problems = {}
    for arm in config.arms:
        if not (isinstance(arm, GroupDropoutArm) and arm.auto):
            arm.row_dropout_rates(prepared.train.groups, prepared.group_labels)  # raises on bad groups
        else:
            problems[arm.label] = SolverProblem(
                train=prepared.train.as_tuple(), val=prepared.val.as_tuple(),
                test=prepared.test.as_tuple(), budget=_group_budget(arm, config),
                model="linear" if not config.training.hidden else "mlp",
                objective=arm.objective,  # type: ignore[arg-type]
                p_max=MAX_SOLVER_RATE, task=prepared.dataset.task, seeds=config.seed_list,
                training=config.training)
    return problems


def _group_budget(arm: GroupDropoutArm, config: AuditConfig) -> float:
    """An auto group-dropout arm spends its own budget, else the uniform arm's rate."""
    if arm.budget is not None:
        return float(arm.budget)
    uniform = [a for a in config.arms if isinstance(a, UniformDropoutArm)]
    return float(uniform[0].p) if uniform else DEFAULT_DROPOUT


def applied_solution(label: str, solution: DropoutSolution) -> tuple[GroupDropoutArm, dict[str, Any]]:
    """The arm as trained, and the solver's record for the result.

    Rates that did not beat uniform dropout on held-out rows are noise: the arm then
    trains with the uniform rate at its budget, and the result says so.
    """
    record = solution.to_dict()
    applied = solution.rates if solution.improved else {g: float(solution.budget) for g in solution.rates}
    record["applied_rates"] = applied
    if not solution.improved:
        record["verdict"] += " The arm uses the uniform rate at its budget."
    trained = make_arm("group_dropout", name=label, rates=applied)
    if not isinstance(trained, GroupDropoutArm):
        raise InternalError("the group_dropout kind is not a GroupDropoutArm")
    return trained, record


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True, eq=False)
class AuditPlan:
    """Every model of the audit proper, once group rates are known.

    Attributes
    ----------
    arms
        The arms as trained: an auto group-dropout arm replaced by its applied rates.
    budgets
        Epsilon and delta per arm.
    solutions
        The solver's record per auto arm (``DropoutSolution.to_dict()`` plus the rates
        applied).
    arm_jobs
        Arms x seeds on the training rows, arm-major.
    shadow_pool, shadow_jobs
        The shadow pool (with RMIA's population) and shadow models (per arm, first
        seed), when ``mia`` is ``"lira"`` or ``"rmia"``: trained once, scored by both.
    canary_runs, canary_jobs
        One canary run per seed, each training every arm (seed-major).
    missing_arms, missing_jobs
        The uniform-dropout arm of each ``p_train`` of the missing-feature measurement,
        and its models (arm-major, one per seed); empty when it is off.
    """

    config: AuditConfig
    arms: tuple[Arm, ...]
    budgets: PrivacyBudgets
    solutions: Mapping[str, dict[str, Any]]
    group_labels: tuple[str, ...]
    arm_jobs: tuple[FitJob, ...]
    shadow_pool: ShadowPool | None
    shadow_jobs: tuple[FitJob, ...]
    canary_runs: tuple[CanaryRun, ...]
    canary_jobs: tuple[FitJob, ...]
    missing_arms: tuple[Arm, ...] = ()
    missing_jobs: tuple[FitJob, ...] = ()

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.config.seed_list

    def jobs(self) -> list[FitJob]:
        return [*self.arm_jobs, *self.shadow_jobs, *self.canary_jobs, *self.missing_jobs]

    def row_rates(self, arm: Arm, groups: np.ndarray) -> np.ndarray:
        """Dropout rate of any rows under ``arm`` as trained."""
        return arm.row_dropout_rates(groups, self.group_labels)

    def split(self, models: Sequence[FittedModel]) -> TrainedModels:
        """The fitted models of :meth:`jobs`, in job order, sorted by what they are for."""
        check_models_match(self.jobs(), models)
        n_arm, n_shadow = len(self.arm_jobs), len(self.shadow_jobs)
        seeds, arms = self.seeds, self.arms
        by_arm = {(arm.label, seed): models[a * len(seeds) + s]
                  for a, arm in enumerate(arms) for s, seed in enumerate(seeds)}
        shadows: dict[str, list[tuple[FittedModel, np.ndarray]]] = {}
        if self.shadow_pool is not None:
            per_arm = len(self.shadow_pool.halves)
            for a, arm in enumerate(arms):
                block = models[n_arm + a * per_arm:n_arm + (a + 1) * per_arm]
                shadows[arm.label] = list(zip(block, self.shadow_pool.halves, strict=True))
        n_canary = len(self.canary_jobs)
        canary_models = models[n_arm + n_shadow:n_arm + n_shadow + n_canary]
        canaries = [list(canary_models[r * len(arms):(r + 1) * len(arms)])
                    for r in range(len(self.canary_runs))]
        grid_models = models[n_arm + n_shadow + n_canary:]
        missing = {(arm.label, seed): grid_models[a * len(seeds) + s]
                   for a, arm in enumerate(self.missing_arms) for s, seed in enumerate(seeds)}
        return TrainedModels(by_arm, shadows, canaries, missing)


@dataclass(frozen=True, eq=False)
class TrainedModels:
    """The audit's fitted models: per (arm, seed), shadows (LiRA's and RMIA's) per arm,
    canary runs."""

    arms: Mapping[tuple[str, int], FittedModel]
    shadows: Mapping[str, list[tuple[FittedModel, np.ndarray]]]
    canaries: list[list[FittedModel]]
    #: The missing-feature p_train grid's models per (arm label, seed).
    missing: Mapping[tuple[str, int], FittedModel] = field(default_factory=dict)


def audit_job_count(config: AuditConfig, test_rows: int) -> int:
    """How many models :func:`plan_audit` will plan, known before the solver runs."""
    per_arm = len(config.seed_list)
    if config.privacy_audit.uses_shadows:
        per_arm += config.privacy_audit.shadows
    audit_cfg = config.privacy_audit
    if audit_cfg.canaries > 0:
        # A black-box run per seed, and a row-canary run with a white-box audit (unless
        # the test split has no rows left to lend crafted canaries their groups).
        runs = 2 if crafted_canary_count(audit_cfg, test_rows) else 1
        per_arm += runs * len(config.seed_list)
    return len(config.arms) * per_arm + missing_job_count(config)


def missing_job_count(config: AuditConfig) -> int:
    """Models of the missing-feature ``p_train`` grid (0 when the measurement is off)."""
    if config.missing is None:
        return 0
    return len(config.missing.train_grid) * len(config.seed_list)


def missing_grid_arms(config: AuditConfig) -> tuple[Arm, ...]:
    """One uniform-dropout arm per ``p_train`` of the missing-feature measurement."""
    if config.missing is None:
        return ()
    return tuple(make_arm("uniform_dropout", name=f"p_train={p:g}", p=p)
                 for p in config.missing.train_grid)


@dataclass(frozen=True, eq=False)
class AuditRows:
    """What the shadow models and canary runs train on, planned before the solver runs
    (neither depends on the arms): the shadow pool (``None`` without shadows) and the
    canary runs."""

    shadow_pool: ShadowPool | None
    canary_runs: tuple[CanaryRun, ...]


def plan_audit_rows(prepared: PreparedData, config: AuditConfig) -> AuditRows:
    """The shadow pool and the canary runs of the audit."""
    audit_cfg, seeds, train = config.privacy_audit, config.seed_list, prepared.train
    pool = None
    if audit_cfg.uses_shadows:
        pool = plan_shadow_pool(train, prepared.test, seed=seeds[0], shadows=audit_cfg.shadows,
                                population=prepared.val)
    runs: list[CanaryRun] = []
    if audit_cfg.canaries > 0:
        runs = plan_canary_runs(train, prepared.test, seeds=seeds, config=audit_cfg)
    return AuditRows(pool, tuple(runs))


def plan_audit(prepared: PreparedData, config: AuditConfig,
               solutions: Mapping[str, DropoutSolution] | None,
               rows: AuditRows | None = None) -> AuditPlan:
    """Plan arms x seeds, shadows and canary runs with the solved group rates applied.

    With ``solutions=None`` the plan is provisional, for estimating the work ahead
    before the solver has run: an auto group-dropout arm stands in with the uniform rate
    at its budget. ``rows`` (default: planned here) are the shadow pool and canary runs
    of :func:`plan_audit_rows`, so that both plans share them.
    """
    budgets = PrivacyBudgets.of(config, prepared.n_train)
    arms: list[Arm] = []
    records: dict[str, dict[str, Any]] = {}
    for arm in config.arms:
        if solutions is not None and arm.label in solutions:
            trained, records[arm.label] = applied_solution(arm.label, solutions[arm.label])
            arms.append(trained)
        elif solutions is None and isinstance(arm, GroupDropoutArm) and arm.auto:
            budget = _group_budget(arm, config)
            arms.append(make_arm("group_dropout", name=arm.label,
                                 rates={g: budget for g in prepared.group_labels}))
        else:
            arms.append(arm)
    labels = prepared.group_labels
    train = prepared.train

    # Each row's group index, computed once per groups array (kept alive with its index,
    # so that its id is not reused by another array).
    indices: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def job(arm: Arm, data: Any, groups: np.ndarray, seed: int, purpose: str) -> FitJob:
        if id(groups) not in indices:
            indices[id(groups)] = (groups, group_indices(groups, labels))
        index = indices[id(groups)][1]
        return FitJob(arm=arm, data=data, rates=arm.row_dropout_rates(groups, labels), seed=seed,
                      epsilon=budgets.epsilon[arm.label], delta=budgets.delta[arm.label], purpose=purpose,
                      groups=index, n_groups=len(labels))

    seeds = config.seed_list
    arm_jobs = [job(arm, prepared.train_rows, train.groups, seed, "arm") for arm in arms for seed in seeds]
    rows = rows if rows is not None else plan_audit_rows(prepared, config)
    pool, runs = rows.shadow_pool, rows.canary_runs
    shadow_jobs: list[FitJob] = []
    if pool is not None:
        shadow_jobs = [job(arm, pool.rows(s, arm.label), pool.groups[half], pool.shadow_seed(s), "shadow")
                       for arm in arms for s, half in enumerate(pool.halves)]
    canary_jobs = [job(arm, run.rows, run.groups, run.seed, "canary") for run in runs for arm in arms]
    grid_arms = missing_grid_arms(config)
    missing_jobs = [FitJob(arm=arm, data=prepared.train_rows,
                           rates=arm.row_dropout_rates(train.groups, labels), seed=seed,
                           purpose="missing")
                    for arm in grid_arms for seed in seeds]
    return AuditPlan(
        config=config, arms=tuple(arms), budgets=budgets, solutions=records, group_labels=labels,
        arm_jobs=tuple(arm_jobs), shadow_pool=pool, shadow_jobs=tuple(shadow_jobs),
        canary_runs=tuple(runs), canary_jobs=tuple(canary_jobs), missing_arms=grid_arms,
        missing_jobs=tuple(missing_jobs),
    )
