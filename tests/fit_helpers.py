"""Test shorthands: one model from arrays (a one-job ``Trainer.fit``) and an executor that
remembers the jobs it trained."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from audit import Arm, FitJob, FittedModel, LocalExecutor, Trainer, TrainingConfig, TrainingRows


def fit_one(trainer: Trainer, *, arm: Arm, X: np.ndarray, y: np.ndarray, rates: np.ndarray, seed: int,
            config: TrainingConfig, device: torch.device, epsilon: float | None = None,
            delta: float | None = None, task: Any = "classification") -> FittedModel:
    job = FitJob(arm=arm, data=TrainingRows(X, y), rates=rates, seed=seed, epsilon=epsilon, delta=delta)
    return trainer.fit(job, config=config, device=device, task=task)


class RecordingExecutor(LocalExecutor):
    """Trains like the local executor and remembers every job it was given."""

    def __init__(self) -> None:
        super().__init__("batched")
        self.seen: list[FitJob] = []

    def run(self, jobs: Sequence[FitJob], **kw: Any) -> list[FittedModel]:  # type: ignore[override]
        self.seen.extend(jobs)
        return super().run(jobs, **kw)
