"""fairpriv's audit engine: disparate error and privacy loss under dropout and DP-SGD.

Everything a notebook needs is importable from here::

    from audit import run_audit, AuditConfig, load_dataset, AuditResult
"""

from __future__ import annotations

from . import defaults
from ._exceptions import ConfigError, DataError, DataFileError, FairprivError, InternalError, TrainingError
from ._format import EPSILON_DIGITS, RATE_DIGITS, decimals_for, format_interval, format_number
from ._version import __version__
from .arms._arms import (
    ARM_KINDS,
    Arm,
    BaselineArm,
    DPSGDArm,
    DPSGDFArm,
    GroupDropoutArm,
    UniformDropoutArm,
    arm_from_dict,
    available_arms,
    make_arm,
    register_arm,
)
from .data._datasets import (
    BUILTIN_DATASETS,
    BuiltinTable,
    Dataset,
    LoadOptions,
    Splits,
    builtin_table,
    group_split_counts,
    load_dataset,
    make_synthetic,
    split_dataset,
)
from .data._preprocess import TabularPreprocessor
from .data._readers import read_table
from .dp._accounting import (
    ACCOUNTANTS,
    GUARANTEE_ASSUMPTIONS,
    NO_GUARANTEE,
    NOT_COVERED,
    PrivacyLedger,
    compute_epsilon,
    default_delta,
    noise_multiplier_for_epsilon,
)
from .fairness._intervals import difference_interval, rate_interval, ratio_interval
from .fairness._metrics import METRICS, evaluate_predictions
from .fairness._missing import (
    MISSING_TREATMENT,
    MissingFeaturesConfig,
    mask_features,
    parse_missing_rates,
)
from .pipeline._config import AuditConfig, ProgressEvent
from .pipeline._estimate import AuditEstimate, estimate_audit
from .pipeline._events import format_duration
from .pipeline._external import PredictionAuditOptions, audit_onnx_model, audit_predictions
from .pipeline._progress import ProgressBar
from .pipeline._run import run_audit
from .privacy._audit_bound import correct_guess_p_value, epsilon_lower_bound
from .privacy._config import PrivacyAuditConfig
from .privacy._dp_cost import dp_group_cost
from .privacy._mechanism import dropout_noise_curve
from .privacy._mia import MIA_METRICS, attack_metrics, lira_offline_scores, rmia_fit_a, rmia_offline_scores
from .result._bounds import (
    CANARY_AUDITS,
    GAUSSIAN_DP_NOTE,
    PRIVACY_BOUNDS_COLUMNS,
    CanaryAudit,
    bound_verdict,
    largest_bounds,
)
from .result._container import AuditResult
from .result._schema import SCHEMA_VERSION
from .result._validate import results_schema, validate_results
from .result._views import describe_intervals, level_text
from .solver._solver import DropoutSolution, GroupErrors, SolveOptions, solve_group_dropout
from .sweep._backends import available_sweep_backends
from .sweep._config import SweepConfig, SweepPoint, parse_number_list
from .sweep._result import SWEEP_COLUMNS, SweepResult
from .sweep._run import SweepEvent, run_sweep
from .training._batched import (
    BatchedModelSpec,
    BatchedTrainer,
    BatchEngine,
    BatchStats,
    DPRowCount,
    train_mlp_batch,
)
from .training._bench import run_trainer_benchmark
from .training._config import TrainingConfig, parse_hidden_layers
from .training._executor import Executor, LocalExecutor, available_executors, get_executor, register_executor
from .training._models import MLP, GroupDropout
from .training._ray import RayExecutor
from .training._reference import ReferenceTrainer
from .training._trainer import (
    FitJob,
    FittedModel,
    Trainer,
    TrainingRows,
    available_trainers,
    get_trainer,
    register_trainer,
)

# Grouped by stage of the audit (DESIGN section 4), in the order data flows.
__all__ = [
    "__version__",
    "defaults",
    # errors
    "FairprivError",
    "ConfigError",
    "DataError",
    "DataFileError",
    "TrainingError",
    "InternalError",
    # prepare: data
    "BUILTIN_DATASETS",
    "BuiltinTable",
    "Dataset",
    "LoadOptions",
    "Splits",
    "TabularPreprocessor",
    "builtin_table",
    "group_split_counts",
    "load_dataset",
    "make_synthetic",
    "read_table",
    "split_dataset",
    # plan: arms and the group-dropout solver
    "ARM_KINDS",
    "Arm",
    "BaselineArm",
    "DPSGDArm",
    "DPSGDFArm",
    "GroupDropoutArm",
    "UniformDropoutArm",
    "arm_from_dict",
    "available_arms",
    "make_arm",
    "register_arm",
    "DropoutSolution",
    "GroupErrors",
    "SolveOptions",
    "solve_group_dropout",
    # train
    "MLP",
    "BatchEngine",
    "BatchStats",
    "DPRowCount",
    "BatchedModelSpec",
    "BatchedTrainer",
    "FitJob",
    "FittedModel",
    "GroupDropout",
    "ReferenceTrainer",
    "Trainer",
    "TrainingConfig",
    "TrainingRows",
    "available_trainers",
    "get_trainer",
    "parse_hidden_layers",
    "register_trainer",
    "run_trainer_benchmark",
    "train_mlp_batch",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "available_executors",
    "get_executor",
    "register_executor",
    # measure: fairness
    "METRICS",
    "difference_interval",
    "evaluate_predictions",
    "rate_interval",
    "ratio_interval",
    # measure: missing features by group
    "MISSING_TREATMENT",
    "MissingFeaturesConfig",
    "mask_features",
    "parse_missing_rates",
    # measure: privacy
    "ACCOUNTANTS",
    "CANARY_AUDITS",
    "CanaryAudit",
    "GAUSSIAN_DP_NOTE",
    "GUARANTEE_ASSUMPTIONS",
    "MIA_METRICS",
    "NOT_COVERED",
    "NO_GUARANTEE",
    "PrivacyAuditConfig",
    "PrivacyLedger",
    "attack_metrics",
    "bound_verdict",
    "compute_epsilon",
    "correct_guess_p_value",
    "default_delta",
    "dp_group_cost",
    "dropout_noise_curve",
    "epsilon_lower_bound",
    "largest_bounds",
    "lira_offline_scores",
    "noise_multiplier_for_epsilon",
    "rmia_fit_a",
    "rmia_offline_scores",
    # pipeline
    "AuditConfig",
    "ProgressBar",
    "ProgressEvent",
    "format_duration",
    "AuditEstimate",
    "estimate_audit",
    "PredictionAuditOptions",
    "audit_onnx_model",
    "audit_predictions",
    "run_audit",
    # sweeps: the same audit over epsilons and dropout budgets
    "SWEEP_COLUMNS",
    "SweepConfig",
    "SweepEvent",
    "SweepPoint",
    "SweepResult",
    "available_sweep_backends",
    "parse_number_list",
    "run_sweep",
    # assemble: result
    "SCHEMA_VERSION",
    "describe_intervals",
    "level_text",
    "PRIVACY_BOUNDS_COLUMNS",
    "AuditResult",
    "results_schema",
    "validate_results",
    # render: how numbers read in every front end
    "EPSILON_DIGITS",
    "RATE_DIGITS",
    "decimals_for",
    "format_interval",
    "format_number",
]
