"""Trainers: turn an arm, a training matrix and a seed into a fitted model.

``reference`` trains one model at a time with plain PyTorch, and with Opacus'
``PrivacyEngine`` for DP-SGD (Poisson sampling, per-row clipping, Gaussian
noise, accountant). It accepts any ``nn.Module`` factory and is the ground truth
other trainers are tested against. Trainers are registered by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from .._exceptions import ConfigError
from ..arms._arms import Arm
from ..privacy._accounting import PrivacyLedger
from ._config import TrainingConfig

__all__ = [
    "FitJob",
    "FittedModel",

    "Trainer",
    "TrainingConfig",
    "available_trainers",
    "get_trainer",
    "register_trainer",

]

@dataclass(eq=False)
class FittedModel:
    """A trained model and its privacy ledger."""

    model: nn.Module
    ledger: PrivacyLedger
    device: torch.device
    task: str = "classification"

    def predict(self, X: np.ndarray, *, batch_size: int = 65536) -> np.ndarray:
        """Probability of the positive class (classification) or the prediction (regression)."""
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
        return np.concatenate(out) if out else np.zeros(0)

ModelFactory = Callable[[int, Sequence[int]], nn.Module]

_TRAINERS: dict[str, type[Trainer]] = {}

def register_trainer(cls: type[Trainer]) -> type[Trainer]:
    """Class decorator adding a trainer to the registry under ``cls.name``."""
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
class FitJob:
    """One model to train: an arm, its per-row dropout rates, a seed and its DP budget."""

    arm: Arm
    rates: np.ndarray
    seed: int
    epsilon: float | None = None
    delta: float | None = None

def check_jobs(jobs: Sequence[FitJob], X: np.ndarray, y: np.ndarray) -> None:
    """Every job's rates must give one dropout rate per training row."""
    if X.shape[0] != y.shape[0]:
        raise ConfigError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    for job in jobs:
        if np.shape(job.rates) != (X.shape[0],):
            raise ConfigError(
                f"arm '{job.arm.label}': {np.shape(job.rates)} dropout rates for {X.shape[0]} "
                "training rows; give one rate per row"
            )

class Trainer(ABC):
    """Base class of trainers.

    ``fit`` trains one model; ``fit_many`` trains a list of jobs on the same rows and
    is what the audit runner calls, so that trainers able to train several models at
    once (``batched``) can do so. The default ``fit_many`` calls ``fit`` in turn.
    """

    name: ClassVar[str] = ""

    def fit_many(
        self,
        jobs: Sequence[FitJob],
        *,
        X: np.ndarray,
        y: np.ndarray,
        config: TrainingConfig,
        device: torch.device,
        task: Literal["classification", "regression"] = "classification",
        on_fitted: Callable[[int], None] | None = None,
    ) -> list[FittedModel]:
        """Train every job; ``on_fitted(i)`` is called when job ``i`` is done."""
        check_jobs(jobs, X, y)
        out = []
        for i, job in enumerate(jobs):
            out.append(self.fit(arm=job.arm, X=X, y=y, rates=job.rates, seed=job.seed,
                                config=config, device=device, epsilon=job.epsilon,
                                delta=job.delta, task=task))
            if on_fitted is not None:
                on_fitted(i)
        return out

    @abstractmethod
    def fit(
        self,
        *,
        arm: Arm,
        X: np.ndarray,
        y: np.ndarray,
        rates: np.ndarray,
        seed: int,
        config: TrainingConfig,
        device: torch.device,
        epsilon: float | None,
        delta: float | None,
        task: Literal["classification", "regression"] = "classification",
    ) -> FittedModel:
        """Train one model of ``arm`` on the rows ``X, y`` with per-row dropout ``rates``."""

