"""What an audit trains and measures (:class:`AuditConfig`); the progress events it
reports (:class:`ProgressEvent`) live in :mod:`._events` and are re-exported here."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .._exceptions import ConfigError
from .._validation import Interval, Options, SequenceOf, validate_params
from ..arms._arms import (
    ARM_KINDS,
    Arm,
    arm_from_dict,
    make_arm,
)
from ..defaults import (
    DEFAULT_BOOTSTRAP_SEED,
    DEFAULT_CI_LEVEL,
    DEFAULT_DEVICE,
    DEFAULT_EPSILON,
    DEFAULT_MIN_GROUP_ROWS,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_SEEDS,
    DEFAULT_SIMULTANEOUS_CI,
    DEFAULT_SMALL_GROUPS,
    DEFAULT_SPLIT_SEED,
    DEFAULT_TEST_FRACTION,
    DEFAULT_THRESHOLD,
    DEFAULT_TRAINER,
    DEFAULT_VAL_FRACTION,
    DEVICE_CHOICES,
    SMALL_GROUPS_CHOICES,
    TRAINER_AUTO,
)
from ..fairness._missing import MissingFeaturesConfig
from ..privacy._config import PrivacyAuditConfig
from ..training import _batched  # noqa: F401  (registers the "batched" trainer)
from ..training._config import TrainingConfig
from ..training._trainer import get_trainer
from ._events import ProgressCallback, ProgressEvent

__all__ = ["AuditConfig", "ProgressCallback", "ProgressEvent"]

SMALL_GROUP_POLICIES = SMALL_GROUPS_CHOICES


def _default_arms() -> tuple[Arm, ...]:
    return tuple(make_arm(kind) for kind in ARM_KINDS)


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """What to train and how to measure it. Validated at construction.

    Attributes
    ----------
    arms
        The arms to compare (default: baseline, uniform dropout p=0.5, group dropout
        with solved rates at the same budget, DP-SGD).
    seeds
        Training seeds: a count (``3`` -> seeds 0, 1, 2) or explicit seeds.
    epsilon
        Target epsilon of DP arms that do not set their own.
    delta
        Target delta of DP arms; ``None`` -> ``min(1e-5, 1 / (10 n_train))``.
    training
        Shared training hyperparameters (architecture, epochs, batch, optimiser).
    trainer
        ``"auto"`` (default: ``"batched"``, which trains every model of the audit
        together, whenever all arms use the built-in MLP -- all four arm kinds do),
        ``"batched"`` or ``"reference"`` (one model at a time through Opacus).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    split_seed, val_fraction, test_fraction
        The train/validation/test split (stratified by group x label); the same
        for every arm and seed.
    min_group_rows, small_groups
        Every group needs ``min_group_rows`` rows in every split; smaller groups
        raise an error or are merged into ``"other"``.
    n_bootstrap, ci_level, bootstrap_seed
        Confidence level of every interval; bootstrap resamples of the test rows for
        the intervals of ROC AUC and log-loss (rates get score intervals, which need
        no resampling: see :mod:`audit.fairness._intervals`).
    simultaneous_ci
        Make each metric's per-group intervals hold together (family-wise) across the
        groups, and its gap intervals across every pair of groups, by Bonferroni:
        for intersectional audits with many groups, where some interval among many
        misses by chance. Off by default (each interval holds on its own).
    threshold
        Decision threshold on the predicted probability.
    privacy_audit
        Membership inference, the one-run canary audit and the dropout-noise curve.
    missing
        Measure each group's error as features go missing at test time
        (:class:`audit.MissingFeaturesConfig`: the rates per group, the ``p_test`` grid and
        the ``p_train`` grid of extra uniform-dropout models); ``None`` (default): off.
    """

    arms: tuple[Arm, ...] = field(default_factory=_default_arms)
    seeds: int | tuple[int, ...] = DEFAULT_SEEDS
    epsilon: float = DEFAULT_EPSILON
    delta: float | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    trainer: str = DEFAULT_TRAINER
    device: str = DEFAULT_DEVICE
    split_seed: int = DEFAULT_SPLIT_SEED
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS
    small_groups: str = DEFAULT_SMALL_GROUPS
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    ci_level: float = DEFAULT_CI_LEVEL
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED
    simultaneous_ci: bool = DEFAULT_SIMULTANEOUS_CI
    threshold: float = DEFAULT_THRESHOLD
    privacy_audit: PrivacyAuditConfig = field(default_factory=PrivacyAuditConfig)
    missing: MissingFeaturesConfig | None = None

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if not arms:
            raise ConfigError("an audit needs at least one arm", param="arms")
        for arm in arms:
            if not isinstance(arm, Arm):
                raise ConfigError(f"arms must be Arm instances (e.g. BaselineArm()), not {arm!r}",
                                  param="arms")
        labels = [a.label for a in arms]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ConfigError(f"arm names must be unique; repeated: {duplicates}. Give each a name=.",
                              param="arms")
        object.__setattr__(self, "arms", arms)
        validate_params("AuditConfig", self, {
            "seeds": (Interval(int, 1, None), SequenceOf(Interval(int, 0, None))),
            "epsilon": Interval(float, 0, math.inf, closed="neither"),
            "delta": (Interval(float, 0, 1, closed="neither"), None),
            "device": Options(DEVICE_CHOICES),
            "split_seed": Interval(int, 0, None),
            "val_fraction": Interval(float, 0, 1, closed="neither"),
            "test_fraction": Interval(float, 0, 1, closed="neither"),
            "min_group_rows": Interval(int, 1, None),
            "small_groups": Options(SMALL_GROUP_POLICIES),
            "n_bootstrap": Interval(int, 0, None),
            "ci_level": Interval(float, 0, 1, closed="neither"),
            "bootstrap_seed": Interval(int, 0, None),
            "simultaneous_ci": Options((True, False)),
            "threshold": Interval(float, 0, 1),
        })
        if isinstance(self.seeds, int):
            object.__setattr__(self, "seeds", tuple(range(self.seeds)))
        elif not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"AuditConfig seeds must be distinct and non-empty, not {self.seeds}",
                              param="seeds")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"AuditConfig val_fraction ({self.val_fraction}) and test_fraction "
                f"({self.test_fraction}) must sum to less than 1", param="val_fraction")
        if self.trainer != TRAINER_AUTO:
            get_trainer(self.trainer)  # raises on unknown names
        if not isinstance(self.training, TrainingConfig):
            raise ConfigError(f"AuditConfig training must be a TrainingConfig, not {self.training!r}",
                              param="training")
        if not isinstance(self.privacy_audit, PrivacyAuditConfig):
            raise ConfigError("AuditConfig privacy_audit must be a PrivacyAuditConfig, not "
                              f"{self.privacy_audit!r}", param="privacy_audit")
        if self.missing is not None and not isinstance(self.missing, MissingFeaturesConfig):
            raise ConfigError("AuditConfig missing must be a MissingFeaturesConfig (e.g. "
                              "MissingFeaturesConfig(rates={'Female': 0.3, 'Male': 0.1})) or None, "
                              f"not {self.missing!r}", param="missing")

    @property
    def seed_list(self) -> tuple[int, ...]:
        return self.seeds if isinstance(self.seeds, tuple) else tuple(range(self.seeds))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` inverts it."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "arms":
                out["arms"] = [a.to_dict() for a in value]
            elif f.name == "training":
                out["training"] = {k: list(v) if isinstance(v, tuple) else v
                                   for k, v in asdict(value).items()}
            elif f.name == "seeds":
                out["seeds"] = list(value)
            elif f.name == "privacy_audit":
                out["privacy_audit"] = value.to_dict()
            elif f.name == "missing":
                # Left out when off, so that configurations from before it hash as they did.
                if value is not None:
                    out["missing"] = value.to_dict()
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditConfig:
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown audit option(s) {unknown}; valid: {sorted(known)}")
        if "arms" in data:
            data["arms"] = tuple(arm_from_dict(a) for a in data["arms"])
        if "training" in data and isinstance(data["training"], Mapping):
            data["training"] = TrainingConfig(**data["training"])
        if "privacy_audit" in data and isinstance(data["privacy_audit"], Mapping):
            data["privacy_audit"] = PrivacyAuditConfig(**data["privacy_audit"])
        if isinstance(data.get("missing"), Mapping):
            missing = dict(data["missing"])
            for key in ("grid", "train_grid"):
                if isinstance(missing.get(key), list):
                    missing[key] = tuple(missing[key])
            data["missing"] = MissingFeaturesConfig(**missing)
        if "seeds" in data and isinstance(data["seeds"], list):
            data["seeds"] = tuple(data["seeds"])
        return cls(**data)

    def config_hash(self) -> str:
        """Short stable hash of the configuration (for caching and report covers)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
