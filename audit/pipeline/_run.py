"""``run_audit``: the stages of an audit, in order.

    prepare -> plan (solver) -> train -> plan (audit) -> train -> measure -> assemble

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
from ..training._config import TrainingConfig, resolve_device
from ..training._executor import Executor, LocalExecutor
from ..training._trainer import FitJob, FittedModel
from ._assemble import assemble
from ._config import AuditConfig, ProgressCallback
from ._measure import measure
from ._plan import audit_job_count, plan_audit, plan_solver
from ._prepare import prepare
from ._progress import Progress

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
        Called with a :class:`ProgressEvent` before and after each model, and at each
        stage; ``done`` and ``total`` count every model the audit trains.
    show_progress
        Show a tqdm progress bar on stderr (in a notebook, a widget).
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
        solver_jobs, announced = solver.jobs(), audit_job_count(config, len(prepared.test))
        tracker.expect(len(solver_jobs) + announced)
        solutions = solver.conclude(_train(runner, solver_jobs, solver.training, device, tracker))
        plan = plan_audit(prepared, config, solutions)
        jobs = plan.jobs()
        if len(jobs) != announced:
            raise InternalError(f"planned {len(jobs)} models but announced {announced}")
        trained = plan.split(_train(runner, jobs, config.training, device, tracker))
        measured = measure(prepared, plan, trained, tracker)
    finally:
        tracker.close()
    result = assemble(prepared, plan, measured, device=device.type, trainer=runner.trainer_name,
                      elapsed_s=tracker.elapsed)
    tracker.stage("done")
    return result


def _train(runner: Executor, jobs: list[FitJob], training: TrainingConfig, device: Any,
           tracker: Progress) -> list[FittedModel]:
    if not jobs:
        return []
    for job in jobs:
        tracker.starting(job)
    return runner.run(jobs, config=training, device=device, task="classification",
                      on_fitted=tracker.fitted)


def resolve_trainer_name(config: AuditConfig) -> str:
    """The trainer ``config.trainer`` stands for (``"auto"`` -> ``"batched"`` for MLP arms)."""
    if config.trainer != TRAINER_AUTO:
        return config.trainer
    return AUTO_TRAINER
