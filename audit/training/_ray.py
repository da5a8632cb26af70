"""The ``ray`` executor: an audit's models trained as tasks of a Ray cluster.

``run_audit(data, config, executor=get_executor("ray", address="auto"))`` trains every
model of the audit on a Ray cluster instead of in this process. Jobs that share their
rows (all arms x seeds; one canary run; one shadow model's half; one solver fold) are
one chunk: the rows go into the object store once, one task trains the whole chunk with
the batched trainer (one CPU, or ``gpus_per_worker`` GPUs, each), and only the models'
weights and privacy ledgers come back. A chunk whose worker dies is run again
(:data:`MAX_RETRIES`). Chunks are the executor's unit so that every model is trained in
the same batch as in this process: the numbers are those of the local executor.

Progress moves as chunks finish (a task reports nothing while it runs). Ray is an
optional extra: ``pip install 'fairpriv[ray]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .._exceptions import ConfigError, FairprivError, TrainingError
from ..arms._arms import Arm
from ..defaults import AUTO_TRAINER, TRAINER_AUTO
from ..dp._accounting import PrivacyLedger
from ._config import TrainingConfig
from ._executor import (
    Executor,
    JobCallback,
    JobsAdvanceCallback,
    LocalExecutor,
    _groups_by_rows,
    register_executor,
)
from ._models import MLP
from ._trainer import FitJob, FittedModel, Task, TrainingRows
from ._whitebox import WhiteBoxTrace

__all__ = ["MAX_RETRIES", "RayExecutor", "connect_ray", "import_ray"]

#: Times Ray runs a task again after its worker died (a lost node, an OOM kill).
MAX_RETRIES = 3


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray backend needs Ray: pip install 'fairpriv[ray]'", param="backend",
                          fix={"backend": "local"}) from None
    return ray


def connect_ray(ray: Any, *, address: str | None, workers: int | None, gpus: float) -> bool:
    """Connect to the cluster at ``address`` or start a local one of ``workers`` CPUs;
    ``True`` if this call started or joined it (the caller then shuts it down)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is not None:
        options["address"] = address
    else:
        options["num_cpus"] = workers or os.cpu_count() or 1
        if gpus == 0:
            options["num_gpus"] = 0
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise ConfigError(f"cannot start or reach {where}: {exc}", param="address") from None
    return True


def task_result(ray: Any, ref: Any, what: str, hint: str = "") -> Any:
    """A task's value; its FairprivError as raised there, a lost worker in plain words
    (followed by ``hint``, what the user can do then)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, FairprivError):
            raise cause from None
        raise TrainingError(f"{what} failed on its Ray worker: {cause or exc}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise TrainingError(f"{what} lost its Ray worker {MAX_RETRIES + 1} times "
                            f"({type(exc).__name__}){hint}") from None


@dataclass(frozen=True)
class _JobSpec:
    """A job without its rows (they travel once per chunk, through the object store)."""

    arm: Arm
    rates: np.ndarray
    seed: int
    epsilon: float | None
    delta: float | None
    purpose: str
    groups: np.ndarray | None = None
    n_groups: int | None = None

    @classmethod
    def of(cls, job: FitJob) -> _JobSpec:
        return cls(job.arm, job.rates, job.seed, job.epsilon, job.delta, job.purpose, job.groups,
                   job.n_groups)

    def job(self, rows: TrainingRows) -> FitJob:
        return FitJob(arm=self.arm, data=rows, rates=self.rates, seed=self.seed, epsilon=self.epsilon,
                      delta=self.delta, purpose=self.purpose, groups=self.groups, n_groups=self.n_groups)


Trained = list[tuple[dict[str, torch.Tensor], PrivacyLedger, WhiteBoxTrace | None]]


def train_chunk(rows: TrainingRows, specs: Sequence[_JobSpec], config: TrainingConfig, device: str,
                task: Task, trainer: str, threads: int) -> Trained:
    """One chunk on a Ray worker (module level: workers import it by name)."""
    torch.set_num_threads(max(1, threads))
    jobs = [spec.job(rows) for spec in specs]
    fitted = LocalExecutor(trainer).run(jobs, config=config, device=torch.device(device), task=task)
    return [({k: v.detach().cpu() for k, v in m.model.state_dict().items()}, m.ledger, m.trace)
            for m in fitted]


@register_executor
class RayExecutor(Executor):
    """Train an audit's models on a Ray cluster, one task per set of shared rows.

    Parameters
    ----------
    trainer
        The trainer each task uses (the built-in MLP: ``"batched"``, what ``"auto"`` picks, as
        in :class:`~audit.AuditConfig`).
    address
        ``"auto"`` or ``"HOST:PORT"``; ``None`` starts a local cluster at the first ``run``
        (when none is running yet) and keeps it for the later ones (an audit calls ``run``
        once for the solver's candidates and once for the rest); Ray stops it when the
        process exits.
    workers
        CPUs of a local cluster (default: all cores).
    gpus_per_worker
        GPUs each task asks for (fractions share one).
    """

    name: ClassVar[str] = "ray"

    def __init__(self, trainer: str = TRAINER_AUTO, *, address: str | None = None,
                 workers: int | None = None, gpus_per_worker: float = 0.0) -> None:
        self.trainer = AUTO_TRAINER if trainer == TRAINER_AUTO else trainer
        self.address, self.workers, self.gpus = address, workers, float(gpus_per_worker)
        self._local = LocalExecutor(self.trainer)  # an unknown trainer fails here, not on a worker

    @property
    def trainer_name(self) -> str:
        return f"{self._local.trainer_name} (ray)"

    def run(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: torch.device,
            task: Task = "classification", on_fitted: JobCallback | None = None,
            on_advance: JobsAdvanceCallback | None = None) -> list[FittedModel]:
        """Train every job (see :meth:`Executor.run`); ``on_advance`` is not called: a task
        reports only when its chunk is done."""
        ray = import_ray()
        connect_ray(ray, address=self.address, workers=self.workers, gpus=self.gpus)
        remote = ray.remote(max_retries=MAX_RETRIES)(train_chunk).options(num_cpus=1, num_gpus=self.gpus)
        pending = {}
        for positions in _groups_by_rows(jobs):
            rows = jobs[positions[0]].data
            specs = [_JobSpec.of(jobs[i]) for i in positions]
            ref = remote.remote(ray.put(rows), specs, config, device.type, task, self.trainer, 1)
            pending[ref] = positions
        results: list[FittedModel | None] = [None] * len(jobs)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                positions = pending.pop(ref)
                trained = task_result(ray, ref, f"training on '{jobs[positions[0]].data.name}'")
                for i, (state, ledger, trace) in zip(positions, trained, strict=True):
                    results[i] = self._fitted(jobs[i], state, ledger, trace, config, device, task)
                    if on_fitted is not None:
                        on_fitted(jobs[i])
        return [r for r in results if r is not None]

    @staticmethod
    def _fitted(job: FitJob, state: dict[str, torch.Tensor], ledger: PrivacyLedger,  # noqa: PLR0913
                trace: WhiteBoxTrace | None, config: TrainingConfig, device: torch.device,
                task: Task) -> FittedModel:
        model = MLP(job.data.X.shape[1], hidden=config.hidden).to(device)
        model.load_state_dict(state)
        return FittedModel(model=model, ledger=ledger, device=device, task=task, job=job, trace=trace)
