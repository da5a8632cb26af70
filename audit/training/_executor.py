"""Executors: run every model an audit needs.

An audit plans its models as :class:`~audit.FitJob` objects (arms x seeds, group-dropout
candidates, canary runs, shadow models) and hands them to one executor. The executor
decides where and in which groups they are trained; the stages before and after it
see only jobs going in and fitted models coming out, in the same order.

``local`` (the default) trains in this process: jobs that share their rows go to the
trainer together, so the batched trainer stacks them. Executors report progress as
models finish (``on_fitted``) and, when they can, as training advances (``on_advance``),
and estimate what each job costs (``work``) so that progress counts time, not models.
Add an executor (for example one that ships groups of jobs to a cluster) by subclassing
:class:`Executor` and decorating it with :func:`register_executor`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from .._exceptions import ConfigError, InternalError
from ..defaults import AUTO_TRAINER
from ._config import TrainingConfig
from ._cost import JobWork, Mechanisms, job_costs
from ._trainer import (
    FitJob,
    FittedModel,
    Task,
    Trainer,
    accepts_keyword,
    get_trainer,
    trainers_fixing_mechanism,
)

__all__ = ["Executor", "LocalExecutor", "available_executors", "get_executor", "register_executor"]

JobCallback = Callable[[FitJob], None]
#: ``on_advance(jobs, fraction)``: ``jobs`` are ``fraction`` (0 to 1) through their training.
JobsAdvanceCallback = Callable[[Sequence[FitJob], float], None]

_EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(cls: type[Executor]) -> type[Executor]:
    """Class decorator adding an executor to the registry under ``cls.name``."""
    if cls.name in _EXECUTORS:
        raise ConfigError(f"executor {cls.name!r} is already registered")
    _EXECUTORS[cls.name] = cls
    return cls


def available_executors() -> tuple[str, ...]:
    return tuple(_EXECUTORS)


def get_executor(name: str, **options: Any) -> Executor:
    """Instantiate a registered executor by name."""
    if name not in _EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; valid: {list(_EXECUTORS)}")
    return _EXECUTORS[name](**options)


class Executor(ABC):
    """Base class of executors: jobs in, fitted models out, in the same order."""

    name: ClassVar[str] = ""

    @abstractmethod
    def run(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: torch.device,
            task: Task = "classification", on_fitted: JobCallback | None = None,
            on_advance: JobsAdvanceCallback | None = None) -> list[FittedModel]:
        """Train every job; ``on_fitted(job)`` is called as each one finishes and, where
        the executor can tell, ``on_advance(jobs, fraction)`` as their training advances
        (an executor that cannot may omit the keyword: progress then moves as models
        finish). An exception either callback raises must stop the run and propagate."""

    def work(self, jobs: Sequence[FitJob], *, config: TrainingConfig) -> list[JobWork]:
        """Estimated cost of each job (row passes and set-up seconds,
        :mod:`audit.training._cost`), for progress; this default assumes one model at a
        time."""
        mechanisms: Mechanisms = set()
        return [job_costs([job], config, stacked=False, mechanisms=mechanisms)[0] for job in jobs]

    @property
    def trainer_name(self) -> str:
        """What trains the models, for the result's metadata."""
        return self.name


@register_executor
class LocalExecutor(Executor):
    """Train in this process with one trainer, one trainer call per shared set of rows.

    Parameters
    ----------
    trainer
        A :class:`Trainer` or a registered trainer name (default ``"batched"``).
        Jobs whose rows fix the DP mechanism by a row count (canary runs) go to the
        batched trainer when this trainer cannot honour that, so that the accountant
        describes exactly the mechanism that ran.
    """

    name: ClassVar[str] = "local"

    def __init__(self, trainer: Trainer | str = AUTO_TRAINER) -> None:
        self.trainer = get_trainer(trainer) if isinstance(trainer, str) else trainer

    def run(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: torch.device,
            task: Task = "classification", on_fitted: JobCallback | None = None,
            on_advance: JobsAdvanceCallback | None = None) -> list[FittedModel]:
        results: list[FittedModel | None] = [None] * len(jobs)
        for positions in _groups_by_rows(jobs):
            group = [jobs[i] for i in positions]

            def done(i: int, group: list[FitJob] = group) -> None:
                if on_fitted is not None:
                    on_fitted(group[i])

            def advanced(members: Sequence[int], fraction: float, group: list[FitJob] = group) -> None:
                if on_advance is not None:
                    on_advance([group[i] for i in members], fraction)

            trainer = self._trainer_for(group)
            # A trainer written before on_advance existed is still called as it was.
            reports = on_advance is not None and accepts_keyword(trainer.fit_many, "on_advance")
            extra: dict[str, Any] = {"on_advance": advanced} if reports else {}
            models = trainer.fit_many(group, config=config, device=device, task=task, on_fitted=done,
                                      **extra)
            if len(models) != len(group):
                raise InternalError(
                    f"{len(models)} fitted models for {len(group)} jobs on '{group[0].data.name}'")
            for i, model in zip(positions, models, strict=True):
                model.job = jobs[i]
                results[i] = model
        return [m for m in results if m is not None]

    @property
    def trainer_name(self) -> str:
        return self.trainer.name

    def work(self, jobs: Sequence[FitJob], *, config: TrainingConfig) -> list[JobWork]:
        """Each job's share of its trainer call's estimated cost."""
        out = [JobWork(0.0)] * len(jobs)
        mechanisms: Mechanisms = set()
        for positions in _groups_by_rows(jobs):
            group = [jobs[i] for i in positions]
            trainer = self._trainer_for(group)
            costs = (trainer.work(group, config=config, mechanisms=mechanisms)
                     if accepts_keyword(trainer.work, "mechanisms") else trainer.work(group, config=config))
            for i, cost in zip(positions, costs, strict=True):
                out[i] = cost
        return out

    def _trainer_for(self, group: Sequence[FitJob]) -> Trainer:
        # Rows that fix the mechanism by a count go to a trainer that honours it, private
        # or not, so that every model of a canary run is trained the same way.
        if group[0].data.accounting_rows is not None and not self.trainer.fixes_mechanism_by_row_count:
            capable = trainers_fixing_mechanism()
            if not capable:
                raise ConfigError("no registered trainer can fix the DP mechanism by a row count")
            return get_trainer(capable[0])
        return self.trainer


def _groups_by_rows(jobs: Sequence[FitJob]) -> list[list[int]]:
    """Positions of the jobs that share one ``TrainingRows`` object, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(id(job.data), []).append(i)
    return list(groups.values())
