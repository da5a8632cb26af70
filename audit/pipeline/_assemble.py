"""Assemble: the measurements, the plan and the data description into an AuditResult."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..dp._accounting import NOT_COVERED
from ..fairness._missing import MISSING_TREATMENT
from ..privacy._dp_cost import dp_group_cost
from ..result._container import AuditResult
from ..result._schema import (
    ARMS_COLUMNS,
    ROC_COLUMNS,
    normalise_empirical,
    normalise_frames,
    normalise_mia,
)
from ._measure import Measurements
from ._plan import AuditPlan
from ._prepare import PreparedData

__all__ = ["assemble", "library_versions"]


def assemble(prepared: PreparedData, plan: AuditPlan, measured: Measurements, *,
             device: str, trainer: str, elapsed_s: float) -> AuditResult:
    config = plan.config
    order = [a.label for a in config.arms]
    by_group, overall, gaps, privacy = normalise_frames(
        measured.by_group, measured.overall, measured.gaps, pd.DataFrame(measured.privacy_rows), order)
    arms = pd.DataFrame([{"arm": a.label, "kind": a.kind, "params": a.params()} for a in config.arms],
                        columns=list(ARMS_COLUMNS))
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": config.config_hash(),
        "device": device,
        "elapsed_s": round(elapsed_s, 3),
        "not_covered_by_dp": NOT_COVERED,
        "versions": library_versions(),
        "delta": plan.budgets.audit_delta,
        "trainer": trainer,
    }
    return AuditResult(
        config=config.to_dict(), dataset=_dataset_info(prepared, config.split_seed), arms=arms,
        by_group=by_group, overall=overall, gaps=gaps, privacy=privacy, meta=meta,
        solutions=dict(plan.solutions),
        mia=normalise_mia(measured.mia, order),
        empirical=normalise_empirical(measured.empirical, order),
        mechanism=measured.mechanism, mechanism_reference=measured.mechanism_reference,
        dp_cost=dp_group_cost(by_group, overall, config.arms, confidence=config.ci_level),
        gap_changes=measured.gap_changes.reset_index(drop=True),
        roc=(pd.concat(measured.roc, ignore_index=True)[list(ROC_COLUMNS)] if measured.roc
             else pd.DataFrame()),
        missing=measured.missing, missing_match=measured.missing_match,
        missing_setup=_missing_setup(prepared, config),
    )


def _missing_setup(prepared: PreparedData, config: Any) -> dict[str, Any]:
    """What the missing-feature measurement did (empty when it was off)."""
    if config.missing is None:
        return {}
    return {"treatment": MISSING_TREATMENT, "rates": config.missing.group_rates(prepared.group_labels),
            "grid": list(config.missing.grid), "train_grid": list(config.missing.train_grid),
            "draws": config.missing.draws,
            "features": len(dict.fromkeys(prepared.preprocessor.feature_sources()))}


def _dataset_info(prepared: PreparedData, split_seed: int) -> dict[str, Any]:
    info = prepared.dataset.describe()
    info["splits"] = {
        "seed": split_seed,
        "counts": {str(g): {k: int(v) for k, v in row.items()}
                   for g, row in prepared.splits.counts().iterrows()},
        "merged_groups": list(prepared.splits.merged),
    }
    info["encoded_features"] = len(prepared.preprocessor.feature_names)
    return info


def library_versions() -> dict[str, str]:
    """Versions of fairpriv and the libraries behind its numbers (for report covers)."""
    import fairlearn
    import opacus
    import sklearn
    import torch

    return {
        "fairpriv": __version__, "python": platform.python_version(),
        "torch": torch.__version__, "opacus": opacus.__version__,
        "fairlearn": fairlearn.__version__, "scikit-learn": sklearn.__version__,
        "numpy": np.__version__, "pandas": pd.__version__,
    }
