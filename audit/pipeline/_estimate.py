"""How many models an audit will train, by purpose, and roughly how long it takes.

For front ends that show the cost of a configuration before anything is trained
(the app's Setup page). Planning only: the data is prepared and the solver's
candidates are planned, nothing is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data._datasets import Dataset
from ..solver._solver import planned_job_count
from ._config import AuditConfig
from ._plan import audit_job_count, missing_job_count, solver_problems
from ._prepare import prepare

__all__ = ["AuditEstimate", "estimate_audit"]

#: Seconds per row x epoch of one model, with the batched trainer on a 2-core CPU
#: (measured on Adult's default audit: every model of an audit trains side by side).
SECONDS_PER_ROW_EPOCH = 4e-6
#: Seconds of measurement per test row and arm (bootstrap, attacks, canary scoring).
SECONDS_PER_TEST_ROW = 1e-3


@dataclass(frozen=True)
class AuditEstimate:
    """The models an audit trains (``models``: purpose -> count) and a rough duration."""

    models: dict[str, int]
    seconds: float

    @property
    def total_models(self) -> int:
        return sum(self.models.values())


def estimate_audit(data: Dataset | str | Path | pd.DataFrame, config: AuditConfig | None = None,
                   **load_options: Any) -> AuditEstimate:
    """Count the models ``run_audit(data, config)`` would train and guess how long it takes.

    The counts are those of the audit's own plan (the solver's may be one candidate's
    fits too many, see ``planned_job_count``); the duration is a rough guide for a
    2-core CPU, within a factor of about two.

    Examples
    --------
    >>> from audit import AuditConfig, BaselineArm, estimate_audit
    >>> est = estimate_audit("synthetic", AuditConfig(arms=(BaselineArm(),), seeds=2), n_rows=1000)
    >>> est.models["arm"]
    2
    """
    config = config or AuditConfig()
    prepared = prepare(data, config, load_options)
    problems = solver_problems(prepared, config)
    audit_models = audit_job_count(config, len(prepared.test))
    seeds = len(config.seed_list) * len(config.arms)
    models = {"solver": sum(planned_job_count(p) for p in problems.values()), "arm": seeds}
    models["missing"] = missing_job_count(config)
    rest = audit_models - seeds - models["missing"]
    audit_cfg = config.privacy_audit
    shadows = len(config.arms) * audit_cfg.shadows if audit_cfg.uses_shadows else 0
    models["shadow"] = shadows
    models["canary"] = rest - shadows
    epochs = config.training.epochs
    # A solver candidate trains on the folds but one of the training and validation rows.
    pooled = prepared.n_train + len(prepared.val)
    row_epochs = models["solver"] * pooled * 3 // 4 * epochs
    row_epochs += (audit_models - shadows) * prepared.n_train * epochs
    # A shadow model trains on half of the rows it is drawn from (training and test).
    row_epochs += shadows * (prepared.n_train + len(prepared.test)) // 2 * epochs
    seconds = (row_epochs * SECONDS_PER_ROW_EPOCH
               + len(config.arms) * len(prepared.test) * SECONDS_PER_TEST_ROW + 2.0)
    return AuditEstimate(models={k: v for k, v in models.items() if v}, seconds=seconds)
