"""fairpriv's audit engine: disparate error and privacy loss under dropout and DP-SGD.

Everything a notebook needs is importable from here::

    from audit import run_audit, AuditConfig, load_dataset, AuditResult
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairpriv")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from ._exceptions import ConfigError, DataError, DataFileError, FairprivError, TrainingError
from .arms._arms import (
    ARM_KINDS,
    Arm,
    BaselineArm,
    DPSGDArm,
    GroupDropoutArm,
    UniformDropoutArm,
    arm_from_dict,
    available_arms,
    register_arm,
)
from .data._datasets import BUILTIN_DATASETS, Dataset, Splits, load_dataset, make_synthetic, split_dataset
from .data._preprocess import TabularPreprocessor
from .fairness._metrics import METRICS, evaluate_predictions
from .pipeline._external import audit_onnx_model, audit_predictions
from .pipeline._runner import AuditConfig, ProgressEvent, run_audit
from .privacy._accounting import (
    ACCOUNTANTS,
    GUARANTEE_ASSUMPTIONS,
    NO_GUARANTEE,
    NOT_COVERED,
    PrivacyLedger,
    compute_epsilon,
    default_delta,
    noise_multiplier_for_epsilon,
)
from .privacy._audit_bound import correct_guess_p_value, epsilon_lower_bound
from .privacy._mia import MIA_METRICS, attack_metrics, lira_offline_scores
from .privacy._privacy_audit import PrivacyAuditConfig, dp_group_cost, dropout_noise_curve
from .result._container import AuditResult
from .result._schema import SCHEMA_VERSION
from .solver._solver import DropoutSolution, GroupErrors, solve_group_dropout
from .training._batched import BatchedModelSpec, BatchedTrainer, BatchStats, train_mlp_batch
from .training._models import MLP, GroupDropout
from .training._training import (
    FitJob,
    FittedModel,
    ReferenceTrainer,
    Trainer,
    TrainingConfig,
    available_trainers,
    get_trainer,
    register_trainer,
)

__all__ = [
    "ACCOUNTANTS",
    "ARM_KINDS",
    "BUILTIN_DATASETS",
    "GUARANTEE_ASSUMPTIONS",
    "METRICS",
    "MIA_METRICS",
    "MLP",
    "NOT_COVERED",
    "NO_GUARANTEE",
    "SCHEMA_VERSION",
    "Arm",
    "BatchStats",
    "BatchedModelSpec",
    "BatchedTrainer",
    "FitJob",
    "train_mlp_batch",
    "AuditConfig",
    "AuditResult",
    "BaselineArm",
    "ConfigError",
    "DPSGDArm",
    "DataError",
    "DataFileError",
    "DropoutSolution",
    "GroupErrors",
    "Dataset",
    "FairprivError",
    "FittedModel",
    "GroupDropout",
    "GroupDropoutArm",
    "PrivacyAuditConfig",
    "PrivacyLedger",
    "ProgressEvent",
    "ReferenceTrainer",
    "Splits",
    "TabularPreprocessor",
    "Trainer",
    "TrainingConfig",
    "TrainingError",
    "UniformDropoutArm",
    "__version__",
    "arm_from_dict",
    "attack_metrics",
    "audit_onnx_model",
    "audit_predictions",
    "correct_guess_p_value",
    "dp_group_cost",
    "dropout_noise_curve",
    "epsilon_lower_bound",
    "lira_offline_scores",
    "available_arms",
    "available_trainers",
    "compute_epsilon",
    "default_delta",
    "evaluate_predictions",
    "get_trainer",
    "load_dataset",
    "make_synthetic",
    "noise_multiplier_for_epsilon",
    "register_arm",
    "register_trainer",
    "run_audit",
    "solve_group_dropout",
    "split_dataset",
]
