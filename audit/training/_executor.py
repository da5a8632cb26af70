"""Executors: run every model an audit needs.

An audit plans its models as :class:`~audit.FitJob` objects (arms x seeds, group-dropout
candidates, canary runs, shadow models) and hands them to one executor. The executor
decides where and in which groups they are trained; the stages before and after it
see only jobs going in and fitted models coming out, in the same order.

``local`` (the default) trains in this process: jobs that share their rows go to the
trainer together, so the batched trainer stacks them. Add an executor (for example one
that ships groups of jobs to a cluster) by subclassing :class:`Executor` and decorating
it with :func:`register_executor`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from .._exceptions import ConfigError, InternalError
from ..defaults import AUTO_TRAINER
from ._config import TrainingConfig
from ._trainer import FitJob, FittedModel, Task, Trainer, get_trainer, trainers_fixing_mechanism

__all__ = ["Executor", "LocalExecutor", "available_executors", "get_executor", "register_executor"]

JobCallback = Callable[[FitJob], None]

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
            task: Task = "classification", on_fitted: JobCallback | None = None) -> list[FittedModel]:
        """Train every job; ``on_fitted(job)`` is called as each one finishes."""

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
            task: Task = "classification", on_fitted: JobCallback | None = None) -> list[FittedModel]:
        results: list[FittedModel | None] = [None] * len(jobs)
        for positions in _groups_by_rows(jobs):
            group = [jobs[i] for i in positions]

            def done(i: int, group: list[FitJob] = group) -> None:
                if on_fitted is not None:
                    on_fitted(group[i])

            models = self._trainer_for(group).fit_many(group, config=config, device=device, task=task,
                                                       on_fitted=done)
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
