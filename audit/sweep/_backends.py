"""Where a sweep's points are audited: ``local`` (this process) or ``ray`` (a Ray cluster).

A backend takes the points still to do, each with its audit configuration, and yields
``(point, AuditResult)`` as each finishes, so that the caller writes it at once (a sweep
interrupted then resumes from what is written). Every point is one whole audit (its
models are trained by the batched trainer and measured where they were trained): only
the data goes out, once, and only the point's result comes back.

``ray`` puts the dataset in the object store once and runs each point as a task asking
for one CPU (or ``gpus_per_worker`` GPUs); a task whose worker dies is retried
(:data:`MAX_RETRIES`). Backends are registered by name like trainers and executors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from .._exceptions import ConfigError
from ..data._datasets import Dataset
from ..pipeline._config import AuditConfig, ProgressEvent
from ..pipeline._run import run_audit
from ..result._container import AuditResult
from ..training._ray import MAX_RETRIES, connect_ray, import_ray, task_result
from ._config import SweepConfig, SweepPoint

__all__ = ["MAX_RETRIES", "SweepBackend", "available_sweep_backends", "get_sweep_backend",
           "register_sweep_backend"]

PointWork = Sequence[tuple[SweepPoint, AuditConfig]]
#: Arm kinds from the costliest point to the cheapest: DP-SGD calibrates its noise and
#: clips every row's gradient; group dropout trains its solver's candidates first.
_LONGEST_FIRST = ("dp_sgd", "group_dropout", "uniform_dropout", "baseline")
_RESUME = ("; the points already finished are saved: run the sweep again with the same output "
           "folder to resume")
#: ``on_event(point, event)``: an audit progress event of a point running in this process.
PointProgress = Callable[[SweepPoint, ProgressEvent], None]

_BACKENDS: dict[str, type[SweepBackend]] = {}


def register_sweep_backend(cls: type[SweepBackend]) -> type[SweepBackend]:
    if cls.name in _BACKENDS:
        raise ConfigError(f"sweep backend {cls.name!r} is already registered")
    _BACKENDS[cls.name] = cls
    return cls


def available_sweep_backends() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def get_sweep_backend(config: SweepConfig) -> SweepBackend:
    if config.backend not in _BACKENDS:
        raise ConfigError(f"unknown sweep backend {config.backend!r}; valid: {list(_BACKENDS)}",
                          param="backend")
    return _BACKENDS[config.backend](config)


class SweepBackend(ABC):
    """Audits a sweep's points somewhere; yields each result as it finishes."""

    name: ClassVar[str] = ""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config

    @abstractmethod
    def run(self, dataset: Dataset, work: PointWork,
            on_event: PointProgress | None = None) -> Iterator[tuple[SweepPoint, AuditResult]]:
        """Audit every ``(point, config)`` of ``work``; yield ``(point, result)`` as each
        finishes (in any order)."""


@register_sweep_backend
class LocalBackend(SweepBackend):
    """One point after the other in this process (the audit's own executor trains)."""

    name: ClassVar[str] = "local"

    def run(self, dataset: Dataset, work: PointWork,
            on_event: PointProgress | None = None) -> Iterator[tuple[SweepPoint, AuditResult]]:
        for point, config in work:
            def forward(event: ProgressEvent, point: SweepPoint = point) -> None:
                if on_event is not None:
                    on_event(point, event)

            yield point, run_audit(dataset, config, progress=forward)


def audit_point(dataset: Dataset, config: dict[str, Any], threads: int) -> str:
    """A point's audit on a Ray worker (module level, so that workers import it by name)."""
    import torch

    # One task per CPU it asked for: more torch threads would fight the other tasks.
    torch.set_num_threads(max(1, threads))
    return run_audit(dataset, AuditConfig.from_dict(config)).to_json()


@register_sweep_backend
class RayBackend(SweepBackend):
    """Points as Ray tasks: on a local cluster started here, or on ``config.address``."""

    name: ClassVar[str] = "ray"

    def run(self, dataset: Dataset, work: PointWork,
            on_event: PointProgress | None = None) -> Iterator[tuple[SweepPoint, AuditResult]]:
        ray = import_ray()
        started = connect_ray(ray, address=self.config.address, workers=self.config.workers,
                              gpus=self.config.gpus_per_worker)
        try:
            data_ref = ray.put(dataset)  # shipped once; every task reads it from the store
            task = ray.remote(max_retries=MAX_RETRIES)(audit_point).options(
                num_cpus=1, num_gpus=self.config.gpus_per_worker)
            # Longest first, so that no worker is left with a long point at the end.
            ordered = sorted(work, key=lambda item: _LONGEST_FIRST.index(item[0].kind))
            pending = {task.remote(data_ref, config.to_dict(), 1): point for point, config in ordered}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    point = pending.pop(ref)
                    text = task_result(ray, ref, f"point '{point.key}'", _RESUME)
                    yield point, AuditResult.from_json(str(text))
        finally:
            if started:
                ray.shutdown()
