"""Train one model from arrays: the tests' shorthand for a one-job ``Trainer.fit``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audit import Arm, FitJob, FittedModel, Trainer, TrainingConfig, TrainingRows


def fit_one(trainer: Trainer, *, arm: Arm, X: np.ndarray, y: np.ndarray, rates: np.ndarray, seed: int,
            config: TrainingConfig, device: torch.device, epsilon: float | None = None,
            delta: float | None = None, task: Any = "classification") -> FittedModel:
    job = FitJob(arm=arm, data=TrainingRows(X, y), rates=rates, seed=seed, epsilon=epsilon, delta=delta)
    return trainer.fit(job, config=config, device=device, task=task)
