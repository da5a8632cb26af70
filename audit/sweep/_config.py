"""What a sweep varies (:class:`SweepConfig`) and the points it audits (:class:`SweepPoint`).

A sweep asks "which epsilon and which dropout budget can we afford, and what does each
cost each group": the same audit (same data, splits, seeds, training and privacy audit)
at every value of the knob each arm has. An arm is audited once per value of its own
knob only: ``dp_sgd`` once per epsilon, ``uniform_dropout`` and ``group_dropout`` once
per budget, ``baseline`` once; the same model would otherwise be trained again at every
point of a knob it does not have (the audit is deterministic for fixed seeds).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ConfigError
from .._validation import Interval, Options, SequenceOf, check_param
from ..arms._arms import ARM_KINDS, Arm, make_arm
from ..defaults import (
    DEFAULT_SWEEP_BACKEND,
    DEFAULT_SWEEP_BUDGETS,
    DEFAULT_SWEEP_EPSILONS,
    MAX_DROPOUT,
    SWEEP_BACKEND_CHOICES,
)
from ..pipeline._config import AuditConfig

__all__ = ["SweepConfig", "SweepPoint", "parse_number_list"]

#: Which knob each arm kind has.
KNOB = {"baseline": None, "uniform_dropout": "budget", "group_dropout": "budget", "dp_sgd": "epsilon"}


@dataclass(frozen=True)
class SweepPoint:
    """One audit of a sweep: an arm kind at one value of its knob.

    Attributes
    ----------
    kind
        The arm kind.
    epsilon
        Target epsilon (``dp_sgd`` only).
    budget
        Dropout budget: the rate of ``uniform_dropout``, the expected rate of
        ``group_dropout`` (whose per-group rates are solved at it).
    """

    kind: str
    epsilon: float | None = None
    budget: float | None = None

    @property
    def key(self) -> str:
        """A stable name, also the point's file name: ``dp_sgd-eps2``, ``group_dropout-p0.3``."""
        if self.epsilon is not None:
            return f"{self.kind}-eps{self.epsilon:g}"
        if self.budget is not None:
            return f"{self.kind}-p{self.budget:g}"
        return self.kind

    @property
    def label(self) -> str:
        """The arm's name in the point's audit: ``dp_sgd (epsilon 2)``."""
        if self.epsilon is not None:
            return f"{self.kind} (epsilon {self.epsilon:g})"
        if self.budget is not None:
            return f"{self.kind} (p {self.budget:g})"
        return self.kind

    def arm(self, **fixed: Any) -> Arm:
        """The point's arm; ``fixed``: the kind's other parameters (``max_grad_norm=``...)."""
        params: dict[str, Any] = {**fixed, "name": self.label}
        if self.kind == "uniform_dropout":
            params["p"] = self.budget
        elif self.kind == "group_dropout":
            params["budget"] = self.budget
        elif self.kind == "dp_sgd":
            params["epsilon"] = self.epsilon
        return make_arm(self.kind, **params)


def parse_number_list(text: str, param: str) -> tuple[float, ...]:
    """Numbers from text: ``"0.5, 1,2"`` -> ``(0.5, 1.0, 2.0)``, the form front ends take
    epsilons and budgets in; anything else is a :class:`~audit.ConfigError` naming ``param``.

    Examples
    --------
    >>> parse_number_list("0.5, 1,2", "epsilons")
    (0.5, 1.0, 2.0)
    """
    values = []
    for piece in (p.strip() for p in str(text).split(",")):
        if not piece:
            continue
        try:
            value = float(piece)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"{param} must be comma-separated numbers (e.g. "
                              f"'{EXAMPLES.get(param, '0.5,1,2')}'), not {text!r}", param=param)
        values.append(value)
    return tuple(values)


def _positive(values: Any) -> tuple[float, ...]:
    epsilons = check_param("SweepConfig", "epsilons", values, SequenceOf(Interval(float, None, None)))
    for epsilon in epsilons:
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ConfigError(f"epsilons must be numbers above 0 (e.g. '{EXAMPLES['epsilons']}'), not "
                              f"{epsilon:g}", param="epsilons")
    return epsilons


#: What the messages suggest, per list.
EXAMPLES = {"epsilons": "0.5,1,2", "budgets": "0.1,0.3,0.5", "missing_grid": "0,0.1,0.2,0.3",
            "missing_train_grid": "0,0.2,0.4"}


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """A sweep: arm kinds, the epsilons and dropout budgets to audit them at, and the
    audit every point shares.

    Attributes
    ----------
    epsilons
        Target epsilons of ``dp_sgd``.
    budgets
        Dropout budgets of ``uniform_dropout`` (its rate) and ``group_dropout`` (the
        expected rate its solved per-group rates keep).
    arms
        Arm kinds to sweep (default: all four).
    audit
        Everything else (seeds, training, splits, intervals, privacy audit), shared by
        every point; its ``arms`` are ignored.
    backend
        ``"local"`` (in this process) or ``"ray"`` (points as Ray tasks; ``pip install
        'fairpriv[ray]'``).
    address
        Ray cluster address (``"auto"``, ``"HOST:PORT"``); ``None`` starts a local one.
    workers
        Points trained at once on a local Ray cluster (default: one per CPU core).
    gpus_per_worker
        GPUs each Ray task asks for (``0``: CPU; fractions share a GPU).

    Examples
    --------
    >>> config = SweepConfig(epsilons=(1, 4), budgets=(0.3,))
    >>> [p.key for p in config.points()]
    ['baseline', 'uniform_dropout-p0.3', 'group_dropout-p0.3', 'dp_sgd-eps1', 'dp_sgd-eps4']
    """

    epsilons: tuple[float, ...] = DEFAULT_SWEEP_EPSILONS
    budgets: tuple[float, ...] = DEFAULT_SWEEP_BUDGETS
    arms: tuple[str, ...] = ARM_KINDS
    audit: AuditConfig = field(default_factory=AuditConfig)
    backend: str = DEFAULT_SWEEP_BACKEND
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    #: Per arm kind, parameters other than the knob, the same at every point
    #: (``{"dp_sgd": {"max_grad_norm": 0.5}, "group_dropout": {"objective": "minimax"}}``).
    arm_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilons", _sorted_unique(_positive(self.epsilons)))
        budgets = check_param("SweepConfig", "budgets", self.budgets, SequenceOf(Interval(float, None, None)))
        for budget in budgets:
            if not 0 <= budget <= MAX_DROPOUT:
                raise ConfigError(f"budgets must be dropout rates from 0 to {MAX_DROPOUT:g} (e.g. "
                                  f"'{EXAMPLES['budgets']}'), not {budget:g}", param="budgets")
        object.__setattr__(self, "budgets", _sorted_unique(budgets))
        if not isinstance(self.arms, str):
            unknown = [k for k in self.arms if k not in ARM_KINDS]
            if unknown:
                raise ConfigError(
                    f"a sweep varies the arms {', '.join(ARM_KINDS)}; it cannot sweep {unknown} "
                    "(audit other arms, such as dp_sgd_f, one configuration at a time with run_audit "
                    "or fairpriv run)", param="arms")
        arms = check_param("SweepConfig", "arms", self.arms, SequenceOf(Options(ARM_KINDS)))
        object.__setattr__(self, "arms", tuple(dict.fromkeys(arms)))
        check_param("SweepConfig", "backend", self.backend, Options(SWEEP_BACKEND_CHOICES))
        check_param("SweepConfig", "workers", self.workers, Interval(int, 1, None), None)
        check_param("SweepConfig", "gpus_per_worker", self.gpus_per_worker, Interval(float, 0, None))
        unknown = sorted(set(self.arm_params) - set(ARM_KINDS))
        if unknown:
            raise ConfigError(f"SweepConfig arm_params names unknown arm kinds {unknown}; valid: "
                              f"{list(ARM_KINDS)}", param="arm_params")
        object.__setattr__(self, "arm_params", {k: dict(v) for k, v in self.arm_params.items()})
        for point in self.points():
            point.arm(**self.arm_params.get(point.kind, {}))  # invalid parameters fail here
        if not isinstance(self.audit, AuditConfig):
            raise ConfigError(f"SweepConfig audit must be an AuditConfig, not {self.audit!r}", param="audit")
        if not self.arms:
            raise ConfigError("choose at least one arm to sweep (arms=)", param="arms")
        if "dp_sgd" in self.arms and not self.epsilons:
            raise ConfigError("a sweep with dp_sgd needs at least one epsilon (epsilons=)", param="epsilons")
        if any(KNOB[k] == "budget" for k in self.arms) and not self.budgets:
            raise ConfigError("a sweep with dropout arms needs at least one budget (budgets=)",
                              param="budgets")

    def points(self) -> list[SweepPoint]:
        """Every point, in report order: arms in the order given, each knob ascending."""
        out: list[SweepPoint] = []
        for kind in self.arms:
            if KNOB[kind] == "epsilon":
                out += [SweepPoint(kind, epsilon=e) for e in self.epsilons]
            elif KNOB[kind] == "budget":
                out += [SweepPoint(kind, budget=b) for b in self.budgets]
            else:
                out.append(SweepPoint(kind))
        return out

    def point_config(self, point: SweepPoint) -> AuditConfig:
        """The audit of one point: the shared audit with that point's arm alone."""
        data = self.audit.to_dict()
        data["arms"] = [point.arm(**self.arm_params.get(point.kind, {})).to_dict()]
        return AuditConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """What the results depend on (not where they are computed), JSON-ready."""
        return {"epsilons": list(self.epsilons), "budgets": list(self.budgets), "arms": list(self.arms),
                "arm_params": {k: dict(v) for k, v in self.arm_params.items()},
                "audit": {**self.audit.to_dict(), "arms": []}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **execution: Any) -> SweepConfig:
        audit = AuditConfig.from_dict({k: v for k, v in data["audit"].items() if k != "arms"})
        return cls(epsilons=tuple(data["epsilons"]), budgets=tuple(data["budgets"]),
                   arms=tuple(data["arms"]), arm_params=data.get("arm_params", {}), audit=audit,
                   **execution)

    def config_hash(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _sorted_unique(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(sorted({float(v) for v in values}))
