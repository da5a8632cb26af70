"""Trainers: turn an arm, a training matrix and a seed into a fitted model.

``reference`` trains one model at a time with plain PyTorch, and with Opacus'
``PrivacyEngine`` for DP-SGD (Poisson sampling, per-row clipping, Gaussian
noise, accountant). It accepts any ``nn.Module`` factory and is the ground truth
other trainers are tested against. Trainers are registered by name.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from .._exceptions import ConfigError
from ..arms._arms import Arm, DPSGDFArm
from ..dp._accounting import PrivacyLedger
from ._config import TrainingConfig
from ._cost import JobWork, Mechanisms, job_costs
from ._divergence import prediction_error
from ._whitebox import WhiteBoxProbe, WhiteBoxTrace

__all__ = [
    "JOB_PURPOSES",
    "AdvanceCallback",
    "FitJob",
    "FittedModel",
    "Trainer",
    "TrainingRows",
    "available_trainers",
    "get_trainer",
    "group_indices",
    "register_trainer",
]


@dataclass(eq=False)
class FittedModel:
    """A trained model and its privacy ledger."""

    model: nn.Module
    ledger: PrivacyLedger
    device: torch.device
    task: str = "classification"
    #: The job it was trained for, set by the executor (so that results are matched to
    #: jobs by identity, never by position alone).
    job: FitJob | None = None
    #: What a white-box probe observed during training (canary runs only).
    trace: WhiteBoxTrace | None = None

    def predict(self, X: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Probability of the positive class (classification) or the prediction (regression).

        Raises :class:`~audit.TrainingError` (naming the arm and seed, the rows and the
        likely cause) if a prediction is NaN or infinite.
        """
        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                xb = torch.as_tensor(X[start:start + batch_size], dtype=torch.float32,
                                     device=self.device)
                pred = self.model(xb)
                if self.task == "classification":
                    pred = torch.sigmoid(pred)
                out.append(pred.double().cpu().numpy())
        predictions = np.concatenate(out) if out else np.zeros(0)
        job = self.job
        failed = prediction_error(predictions, X, arm=job.arm.label if job is not None else None,
                                  seed=job.seed if job is not None else None,
                                  feature_names=job.data.feature_names if job is not None else None)
        if failed is not None:
            raise failed
        return predictions

ModelFactory = Callable[[int, Sequence[int]], nn.Module]

_TRAINERS: dict[str, type[Trainer]] = {}

def register_trainer(cls: type[Trainer]) -> type[Trainer]:
    """Class decorator adding a trainer to the registry under ``cls.name``."""
    if _TRAINERS.get(cls.name, cls) is not cls:
        raise ConfigError(f"trainer {cls.name!r} is already registered")
    _TRAINERS[cls.name] = cls
    return cls

def available_trainers() -> tuple[str, ...]:
    return tuple(_TRAINERS)

def get_trainer(name: str) -> Trainer:
    """Instantiate a registered trainer by name."""
    if name not in _TRAINERS:
        raise ConfigError(f"unknown trainer {name!r}; valid: {list(_TRAINERS)}")
    return _TRAINERS[name]()

@dataclass(frozen=True, eq=False)
class TrainingRows:
    """The rows one or more jobs train on: encoded features ``X`` and targets ``y``.

    Jobs that share one ``TrainingRows`` object may be trained together (the batched
    trainer stacks them); the object's identity, not its contents, decides that.

    Attributes
    ----------
    X, y
        Encoded features ``(n, d)`` and targets ``(n,)``.
    name
        What the rows are, for messages and progress (``"train"``, ``"canaries seed 0"``).
    accounting_rows
        For DP jobs: fix the mechanism (sampling rate, steps, noise and the expected
        batch size) by this many rows instead of ``len(X)``. The canary audit needs it so
        that the mechanism does not depend on how many canaries the coins let in. Only
        trainers with ``fixes_mechanism_by_row_count`` honour it.
    probe
        Canaries a white-box audit plants and observes at every step (canary runs);
        only trainers with ``observes_steps`` honour it.
    feature_names
        Names of the encoded columns of ``X``, if known: a training error names the
        feature it suspects by them.
    """

    X: np.ndarray
    y: np.ndarray
    name: str = "train"
    accounting_rows: int | None = None
    probe: WhiteBoxProbe | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.X.shape[0] != self.y.shape[0]:
            raise ConfigError(f"{self.name}: X has {self.X.shape[0]} rows but y has {self.y.shape[0]}")

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


#: Why a model is trained; progress is reported per purpose.
JOB_PURPOSES = ("solver", "arm", "canary", "shadow", "missing")


@dataclass(frozen=True, eq=False, kw_only=True)
class FitJob:
    """One model to train.

    Attributes
    ----------
    arm
        The mechanism (dropout rates, DP-SGD or not).
    data
        The rows it trains on.
    rates
        Dropout rate of every row of ``data``.
    seed
        Initialisation and random streams.
    epsilon, delta
        DP budget (DP arms only).
    purpose
        ``"arm"`` (a model the audit reports), ``"solver"`` (a group-dropout candidate),
        ``"canary"`` (a one-run audit run), ``"shadow"`` (a LiRA shadow/reference model) or
        ``"missing"`` (a uniform-dropout model of the missing-feature ``p_train`` grid).
    groups, n_groups
        Each row's group as an index into the audit's ``n_groups`` group labels, shape
        ``(n,)`` (:func:`group_indices`); required by arms that clip by group (``dp_sgd_f``),
        ignored by the others. ``-1`` marks a row of no known group, which such arms refuse.
    """

    arm: Arm
    data: TrainingRows
    rates: np.ndarray
    seed: int
    epsilon: float | None = None
    delta: float | None = None
    purpose: str = "arm"
    groups: np.ndarray | None = None
    n_groups: int | None = None

    def __post_init__(self) -> None:
        if np.shape(self.rates) != (self.data.n,):
            raise ConfigError(
                f"arm '{self.arm.label}': {np.shape(self.rates)} dropout rates for {self.data.n} "
                f"rows of '{self.data.name}'; give one rate per row"
            )
        if self.purpose not in JOB_PURPOSES:
            raise ConfigError(f"job purpose must be one of {list(JOB_PURPOSES)}, not {self.purpose!r}")
        self._check_groups()

    def _check_groups(self) -> None:
        label = f"arm '{self.arm.label}' ({self.arm.kind})"
        if (self.groups is None) != (self.n_groups is None):
            raise ConfigError(f"{label}: give both groups and n_groups, or neither", param="groups")
        if self.groups is None or self.n_groups is None:
            if isinstance(self.arm, DPSGDFArm):
                raise ConfigError(
                    f"{label} clips each row by its group's bound and needs every training row's "
                    "group: FitJob(groups=<index per row>, n_groups=<number of groups>)",
                    param="groups")
            return
        groups = np.asarray(self.groups)
        if groups.shape != (self.data.n,) or not np.issubdtype(groups.dtype, np.integer):
            raise ConfigError(
                f"{label}: groups must be one integer group index per row of '{self.data.name}' "
                f"({self.data.n}), not shape {groups.shape} of {groups.dtype}", param="groups")
        if isinstance(self.n_groups, bool) or int(self.n_groups) != self.n_groups or self.n_groups < 1:
            raise ConfigError(f"{label}: n_groups must be a positive integer, not {self.n_groups!r}",
                              param="n_groups")
        if groups.size and int(groups.max()) >= self.n_groups:
            raise ConfigError(f"{label}: group index {int(groups.max())} is not below n_groups "
                              f"{self.n_groups}", param="groups")
        if isinstance(self.arm, DPSGDFArm) and groups.size and int(groups.min()) < 0:
            raise ConfigError(f"{label}: {int((groups < 0).sum())} row(s) of '{self.data.name}' "
                              "belong to no known group; every row needs one", param="groups")


def group_indices(groups: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Each row's group as its index in ``labels`` (int64; ``-1`` for a group not there).

    Examples
    --------
    >>> group_indices(np.array(["b", "a", "b", "c"]), ("a", "b")).tolist()
    [1, 0, 1, -1]
    """
    values, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    position = {str(g): i for i, g in enumerate(labels)}
    lookup = np.array([position.get(str(v), -1) for v in values], dtype=np.int64)
    return lookup[inverse.reshape(-1)] if values.size else np.zeros(0, dtype=np.int64)


def check_shared_rows(jobs: Sequence[FitJob], trainer: Trainer) -> TrainingRows:
    """The one ``TrainingRows`` every job of a ``fit_many`` call trains on.

    Rows that fix the DP mechanism by a row count (canary runs) are refused by a trainer
    that cannot honour it: the accountant's epsilon would not describe what ran.
    """
    if not jobs:
        raise ConfigError("no jobs to train")
    data = jobs[0].data
    if any(job.data is not data for job in jobs):
        raise ConfigError("fit_many trains jobs on the same rows; group jobs by their data first")
    if data.n == 0:
        raise ConfigError("no training rows")
    if data.accounting_rows is not None and not trainer.fixes_mechanism_by_row_count:
        raise ConfigError(
            f"'{data.name}' fixes the DP mechanism by {data.accounting_rows} rows, which the "
            f"{trainer.name!r} trainer cannot do; train these jobs with a trainer that can "
            f"({', '.join(trainers_fixing_mechanism())})")
    if data.probe is not None and not trainer.observes_steps:
        raise ConfigError(
            f"'{data.name}' carries white-box canaries, which the {trainer.name!r} trainer cannot "
            "plant or observe; train these jobs with the batched trainer")
    return data


def trainers_fixing_mechanism() -> tuple[str, ...]:
    """Registered trainers that honour ``TrainingRows.accounting_rows``."""
    return tuple(name for name, cls in _TRAINERS.items() if cls.fixes_mechanism_by_row_count)


Task = Literal["classification", "regression"]

#: ``on_advance(positions, fraction)``: the jobs at ``positions`` of a ``fit_many`` call
#: are ``fraction`` (0 to 1) of the way through their training. Trainers call it when a
#: model (or a batch of models trained together) starts, with 0, then every few steps
#: (at least once an epoch). An exception it raises stops the training: that is how a
#: caller cancels.
AdvanceCallback = Callable[[Sequence[int], float], None]

#: Progress reports per trainer call: a batch reports every ``steps / REPORTS_PER_RUN``
#: steps, and at least once an epoch.
REPORTS_PER_RUN = 20


def report_interval(steps: int, steps_per_epoch: int) -> int:
    """Steps between two progress reports of a run of ``steps`` steps."""
    return max(1, min(steps_per_epoch, math.ceil(steps / REPORTS_PER_RUN)))


def accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` takes the keyword ``name`` (or any keyword): so that a trainer
    or executor written before ``on_advance`` existed keeps working without it."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Trainer(ABC):
    """Base class of trainers.

    ``fit`` trains one job; ``fit_many`` trains jobs that share their rows, so that
    trainers able to train several models at once (``batched``) can do so. The default
    ``fit_many`` calls ``fit`` in turn. Audits do not call trainers directly: an
    executor (:mod:`audit.training._executor`) groups an audit's jobs by their rows and
    hands each group to a trainer. ``work`` estimates what each job costs (for progress).
    """

    name: ClassVar[str] = ""
    #: Whether the trainer honours ``TrainingRows.accounting_rows``.
    fixes_mechanism_by_row_count: ClassVar[bool] = False
    #: Whether the trainer honours ``TrainingRows.probe`` (plants and observes canaries).
    observes_steps: ClassVar[bool] = False

    def fit_many(
        self,
        jobs: Sequence[FitJob],
        *,
        config: TrainingConfig,
        device: torch.device,
        task: Task = "classification",
        on_fitted: Callable[[int], None] | None = None,
        on_advance: AdvanceCallback | None = None,
    ) -> list[FittedModel]:
        """Train every job; ``on_fitted(i)`` is called when job ``i`` is done, and
        ``on_advance`` as training advances (see :data:`AdvanceCallback`; this default
        reports each model's start only, as ``fit`` trains it in one call)."""
        check_shared_rows(jobs, self)
        out = []
        for i, job in enumerate(jobs):
            if on_advance is not None:
                on_advance([i], 0.0)
            out.append(self.fit(job, config=config, device=device, task=task))
            if on_fitted is not None:
                on_fitted(i)
        return out

    def work(self, jobs: Sequence[FitJob], *, config: TrainingConfig,
             mechanisms: Mechanisms | None = None) -> list[JobWork]:
        """Estimated cost of each job of one ``fit_many`` call (row passes and set-up,
        :mod:`audit.training._cost`; ``mechanisms``: the DP mechanisms whose noise
        calibration is already counted); this default trains one model at a time."""
        return job_costs(jobs, config, stacked=False, mechanisms=mechanisms)

    @abstractmethod
    def fit(self, job: FitJob, *, config: TrainingConfig, device: torch.device,
            task: Task = "classification") -> FittedModel:
        """Train one model of ``job.arm`` on ``job.data`` with per-row dropout ``job.rates``."""
