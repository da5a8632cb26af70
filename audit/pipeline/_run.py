"""``run_audit``: the stages of an audit, in order.

    prepare -> plan (solver, audit rows, provisional audit) -> solve (closed form, train)
    -> plan (audit) -> train -> measure -> assemble

Everything is planned before anything is trained, so that progress knows every model
and step, and what each costs, from its first event (:mod:`._work`).

Every model is trained by one executor (:mod:`audit.training._executor`); the stages
exchange plain data objects, never callbacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .._exceptions import InternalError
from ..data._datasets import Dataset
from ..defaults import AUTO_TRAINER, TRAINER_AUTO
from ..result._container import AuditResult
from ..solver._solver import DropoutSolution
from ..training._config import TrainingConfig, resolve_device
from ..training._executor import Executor, LocalExecutor
from ..training._trainer import FitJob, FittedModel, accepts_keyword
from ._assemble import assemble
from ._config import AuditConfig, ProgressCallback
from ._measure import measure
from ._plan import SolverPlan, audit_job_count, plan_audit, plan_audit_rows, plan_solver
from ._prepare import prepare
from ._progress import Progress
from ._work import plan_progress, training_work

__all__ = ["resolve_trainer_name", "run_audit"]


def run_audit(
    data: Dataset | str | Path | pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    show_progress: bool = False,
    executor: Executor | None = None,
    **load_options: Any,
) -> AuditResult:
    """Train every arm over every seed on the same splits and measure them.

    Parameters
    ----------
    data
        A :class:`Dataset`, or anything :func:`load_dataset` accepts (then
        ``load_options`` such as ``target=`` and ``sensitive=`` are passed on).
    config
        The audit configuration (default :class:`AuditConfig`).
    progress
        Called with a :class:`ProgressEvent` as the audit advances: at the start (every
        total is known from the first event), every few training steps (at least once an
        epoch), as each model finishes, at each measurement step, and at ``"done"``. Its
        ``fraction``, ``eta_s`` and ``describe()`` are what a front end shows. An
        exception the callback raises stops the audit and propagates out of
        ``run_audit`` (within a few training steps): that is how to cancel.
    show_progress
        Show a progress bar (``tqdm.auto``: a widget in a notebook with the ``notebook``
        extra, text on stderr elsewhere), driven by the same events.
    executor
        Where the models are trained (default: in this process, with the trainer
        ``config.trainer`` names).

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> from audit import AuditConfig, BaselineArm, TrainingConfig, run_audit
    >>> cfg = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0,
    ...                   training=TrainingConfig(epochs=1))
    >>> result = run_audit("synthetic", cfg, n_rows=1000)
    >>> sorted(result.by_group["group"].unique())
    ['majority', 'minority']
    """
    config = config or AuditConfig()
    tracker = Progress(progress, show_bar=show_progress)
    prepared = prepare(data, config, load_options)
    device = resolve_device(config.device)
    runner = executor if executor is not None else LocalExecutor(resolve_trainer_name(config))
    try:
        solver = plan_solver(prepared, config)
        rows = plan_audit_rows(prepared, config)
        provisional = plan_audit(prepared, config, None, rows)
        announced = audit_job_count(config, len(prepared.test))
        if len(provisional.jobs()) != announced:
            raise InternalError(f"planned {len(provisional.jobs())} models but announced {announced}")
        plan_progress(tracker, runner, prepared, solver, provisional)
        tracker.start()
        solutions = _solve(runner, solver, device, tracker)
        plan = plan_audit(prepared, config, solutions, rows)
        jobs = plan.jobs()
        if len(jobs) != announced:
            raise InternalError(f"planned {len(jobs)} models but announced {announced}")
        tracker.replace_jobs(provisional.jobs(), jobs, training_work(runner, jobs, config.training),
                             epochs=config.training.epochs)
        trained = plan.split(_train(runner, jobs, config.training, device, tracker))
        measured = measure(prepared, plan, trained, tracker)
        result = assemble(prepared, plan, measured, device=device.type, trainer=runner.trainer_name,
                          elapsed_s=tracker.elapsed)
        tracker.finish()
    finally:
        tracker.close()
    return result


def _solve(runner: Executor, solver: SolverPlan, device: Any,
           tracker: Progress) -> dict[str, DropoutSolution]:
    """The closed form's fits, then every candidate's training, then each search's choice."""
    for label, search in solver.searches.items():
        planned = search.provisional_jobs()

        def fitted(label: str = label) -> None:
            tracker.complete("closed_form", arm=label)

        search.seed(on_fit=fitted)
        tracker.replace_jobs(planned, search.jobs, training_work(runner, search.jobs, solver.training),
                             epochs=solver.training.epochs)
    models = _train(runner, solver.jobs(), solver.training, device, tracker)
    if solver.searches:
        tracker.begin("solver_scoring", arm=next(iter(solver.searches)))

    def concluded(label: str) -> None:
        tracker.complete("solver_scoring", arm=label)

    return solver.conclude(models, on_concluded=concluded)


def _train(runner: Executor, jobs: list[FitJob], training: TrainingConfig, device: Any,
           tracker: Progress) -> list[FittedModel]:
    if not jobs:
        return []
    # An executor written before on_advance existed is called as it was (progress then
    # moves as models finish).
    extra = {"on_advance": tracker.advance} if accepts_keyword(runner.run, "on_advance") else {}
    return runner.run(jobs, config=training, device=device, task="classification",
                      on_fitted=tracker.fitted, **extra)


def resolve_trainer_name(config: AuditConfig) -> str:
    """The trainer ``config.trainer`` stands for (``"auto"`` -> ``"batched"`` for MLP arms)."""
    if config.trainer != TRAINER_AUTO:
        return config.trainer
    return AUTO_TRAINER
