"""Training arms: what differs between the models an audit compares.

Each arm is a frozen dataclass registered under its ``kind``. An arm decides two
things and nothing else: the dropout rate of every training row, and whether
training runs DP-SGD (and with what budget). Everything else -- splits,
preprocessing, architecture, optimiser, epochs -- is shared by all arms.

Add an arm by subclassing :class:`Arm` and decorating it with :func:`register_arm`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np

from .._exceptions import ConfigError
from .._validation import Interval, Options, check_param, validate_params
from ..defaults import (
    DEFAULT_ACCOUNTANT,
    DEFAULT_DPSGDF_MAX_CLIP_RATIO,
    DEFAULT_DPSGDF_STATISTICS_SHARE,
    DEFAULT_DROPOUT,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_OBJECTIVE,
    MAX_DROPOUT,
    OBJECTIVE_CHOICES,
)
from ..defaults import GUARANTEE_ACCOUNTANT_CHOICES as GUARANTEE_ACCOUNTANTS
from ..result._schema import json_safe

__all__ = [
    "ARM_KINDS",
    "Arm",
    "BaselineArm",
    "DPSGDArm",
    "DPSGDFArm",
    "GroupDropoutArm",
    "UniformDropoutArm",
    "arm_from_dict",
    "dp_settings",
    "make_arm",
    "available_arms",
    "register_arm",
]

_REGISTRY: dict[str, type[Arm]] = {}
A = TypeVar("A", bound="type[Arm]")



def register_arm(cls: A) -> A:
    """Class decorator adding an :class:`Arm` subclass to the registry under ``cls.kind``."""
    kind = cls.kind
    if kind in _REGISTRY:
        raise ConfigError(f"arm kind {kind!r} is already registered", param="kind")
    _REGISTRY[kind] = cls
    return cls


def available_arms() -> tuple[str, ...]:
    """Registered arm kinds, in registration order."""
    return tuple(_REGISTRY)


def make_arm(kind: str, **params: Any) -> Arm:
    """Build a registered arm by its kind: ``make_arm("uniform_dropout", p=0.3)``.

    Every front end builds arms through this one call, so an arm added with
    :func:`register_arm` is available everywhere.

    Examples
    --------
    >>> make_arm("dp_sgd", epsilon=2.0).epsilon
    2.0
    """
    return arm_from_dict({"kind": kind, **params})


def arm_from_dict(data: Mapping[str, Any]) -> Arm:
    """Build an arm from ``{"kind": ..., "name": ..., **params}`` (inverse of ``Arm.to_dict``)."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown arm kind {kind!r}; valid kinds: {list(_REGISTRY)}", param="kind")
    cls = _REGISTRY[kind]
    params = data.pop("params", {})
    data.update(params)
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for arm {kind!r}; valid: {sorted(allowed)}"
        )
    return cls(**data)


#: A dropout rate must leave something to keep.
_RATE = Interval(float, 0, MAX_DROPOUT)
_POSITIVE_FINITE = Interval(float, 0, math.inf, closed="neither")


def _rates_by_group(
    rates: Mapping[str, float], groups: np.ndarray, group_labels: Sequence[str], arm: str,
    param: str,
) -> np.ndarray:
    missing = [g for g in group_labels if g not in rates]
    unknown = [g for g in rates if g not in group_labels]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no rate for group(s) {missing}")
        if unknown:
            parts.append(f"unknown group(s) {unknown}")
        example = {str(g): 0.3 for g in group_labels}
        raise ConfigError(
            f"arm '{arm}': {'; '.join(parts)}. Give one rate per group; the groups are "
            f"{list(group_labels)} (e.g. {param}={example!r}).", param=param, fix={param: example}
        )
    lookup = {g: float(r) for g, r in rates.items()}
    return np.array([lookup[g] for g in groups], dtype=np.float32)


@dataclass(frozen=True, kw_only=True)
class Arm:
    """Base class of training arms.

    Attributes
    ----------
    name
        Display name; defaults to the kind. Two arms of one kind need distinct names.
    """

    kind: ClassVar[str] = ""
    #: Whether the arm trains with DP-SGD and therefore carries an epsilon.
    private: ClassVar[bool] = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.kind)
        elif not str(self.name).strip():
            raise ConfigError(f"arm name must not be empty (arm kind {self.kind!r})", param="name")

    @property
    def label(self) -> str:
        """The arm's display name (the kind unless ``name`` was given)."""
        return str(self.name)

    def row_dropout_rates(self, groups: np.ndarray, group_labels: Sequence[str]) -> np.ndarray:
        """Dropout rate of each training row (float32, shape ``(n,)``)."""
        return np.zeros(groups.shape[0], dtype=np.float32)

    def params(self) -> dict[str, Any]:
        """The arm's defining hyperparameters, JSON-ready."""
        return {
            f.name: json_safe(getattr(self, f.name)) for f in fields(self) if f.name != "name"
        }

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.label, "params": self.params()}


@register_arm
@dataclass(frozen=True, kw_only=True)
class BaselineArm(Arm):
    """No dropout, no privacy mechanism: the reference point."""

    kind: ClassVar[str] = "baseline"


@register_arm
@dataclass(frozen=True, kw_only=True)
class UniformDropoutArm(Arm):
    """One dropout rate ``p`` for every row (inverted dropout, off at evaluation)."""

    kind: ClassVar[str] = "uniform_dropout"
    p: float = DEFAULT_DROPOUT

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "p", check_param(self.kind, "p", self.p, _RATE))

    def row_dropout_rates(self, groups: np.ndarray, group_labels: Sequence[str]) -> np.ndarray:
        return np.full(groups.shape[0], self.p, dtype=np.float32)


@register_arm
@dataclass(frozen=True, kw_only=True)
class GroupDropoutArm(Arm):
    """A dropout rate per sensitive group.

    Attributes
    ----------
    rates
        ``"auto"`` (default): chosen by the group-dropout solver on validation rows
        (:func:`audit.solve_group_dropout`) when the audit runs; or explicit rates,
        e.g. ``{"Female": 0.5, "Male": 0.2}``.
    budget
        For ``"auto"``: the expected rate over training rows, ``sum_g pi_g p_g``;
        default the audit's uniform-dropout rate (0.5 without a uniform arm).
    objective
        For ``"auto"``: ``"equalize"`` (smallest spread of group errors) or
        ``"minimax"`` (smallest worst-group error).

    Group membership is used only to pick each training row's rate; evaluation
    runs without dropout and without group information.
    """

    kind: ClassVar[str] = "group_dropout"
    rates: Mapping[str, float] | str = "auto"
    budget: float | None = None
    objective: str = DEFAULT_OBJECTIVE

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_params(self.kind, self, {
            "objective": Options(OBJECTIVE_CHOICES),
            "budget": (_RATE, None),
        })
        if isinstance(self.rates, str):
            if self.rates != "auto":
                raise ConfigError(
                    f"group_dropout rates must be 'auto' or a mapping group -> rate, not {self.rates!r}",
                    param="rates")
            return
        if not isinstance(self.rates, Mapping) or not self.rates:
            raise ConfigError(
                "group_dropout needs rates per group, e.g. rates={'Female': 0.5, 'Male': 0.2}, "
                f"or rates='auto' for the solver; not {self.rates!r}", param="rates"
            )
        checked = {str(g): check_param(self.kind, f"rate for '{g}'", r, _RATE, param="rates")
                   for g, r in self.rates.items()}
        object.__setattr__(self, "rates", checked)

    @property
    def auto(self) -> bool:
        """Whether the rates are left to the solver."""
        return isinstance(self.rates, str)

    def row_dropout_rates(self, groups: np.ndarray, group_labels: Sequence[str]) -> np.ndarray:
        if isinstance(self.rates, str):
            raise ConfigError(
                f"arm '{self.label}' has rates='auto': run_audit solves them, or call "
                "solve_group_dropout and pass the result's rates", param="rates"
            )
        return _rates_by_group(self.rates, groups, group_labels, self.label, "rates")

    def expected_rate(self, groups: np.ndarray, group_labels: Sequence[str]) -> float:
        """The dropout budget spent: mean rate over the given (training) rows."""
        return float(self.row_dropout_rates(groups, group_labels).mean())


@register_arm
@dataclass(frozen=True, kw_only=True)
class DPSGDArm(Arm):
    """DP-SGD: Poisson sampling, per-row clipping to ``max_grad_norm``, Gaussian noise.

    Attributes
    ----------
    epsilon
        Target epsilon; ``None`` takes the audit's ``epsilon``. The noise multiplier
        is the smallest that keeps the accountant's epsilon at or below it.
    delta
        Target delta; ``None`` takes the audit's delta.
    max_grad_norm
        Clipping norm C.
    accountant
        ``"prv"`` (default) or ``"rdp"`` (``"gdp"`` can under-report epsilon, so it is
        refused for a guarantee).
    dropout
        Optional dropout on top: ``None``, one rate, or rates per group.
    """

    kind: ClassVar[str] = "dp_sgd"
    private: ClassVar[bool] = True
    epsilon: float | None = None
    delta: float | None = None
    max_grad_norm: float = DEFAULT_MAX_GRAD_NORM
    accountant: str = DEFAULT_ACCOUNTANT
    dropout: float | Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_params(self.kind, self, {
            "epsilon": (_POSITIVE_FINITE, None),
            "delta": (Interval(float, 0, 1, closed="neither"), None),
            # An infinite norm means no clipping: no bounded sensitivity, no guarantee.
            "max_grad_norm": _POSITIVE_FINITE,
        })
        check_param(self.kind, "accountant", self.accountant, Options(GUARANTEE_ACCOUNTANTS),
                    note="the GDP approximation can under-report epsilon, so it is not used "
                         "for a guarantee")
        if isinstance(self.dropout, Mapping):
            object.__setattr__(self, "dropout", {
                str(g): check_param(self.kind, f"dropout rate for '{g}'", r, _RATE, param="dropout")
                for g, r in self.dropout.items()
            })
        else:
            object.__setattr__(self, "dropout", check_param(
                self.kind, "dropout", self.dropout, _RATE, None, note="or a mapping group -> rate"))

    def row_dropout_rates(self, groups: np.ndarray, group_labels: Sequence[str]) -> np.ndarray:
        if isinstance(self.dropout, Mapping):
            return _rates_by_group(self.dropout, groups, group_labels, self.label, "dropout")
        rate = 0.0 if self.dropout is None else float(self.dropout)
        return np.full(groups.shape[0], rate, dtype=np.float32)

    def dp_setting(self) -> tuple[Any, ...]:
        """What two DP arms must share to be compared "at the same epsilon": the target
        epsilon and delta (as given: ``None`` is the audit's), the base clipping norm, the
        accountant and the dropout on top.

        >>> DPSGDArm().dp_setting() == DPSGDFArm().dp_setting()
        True
        >>> DPSGDArm(epsilon=1.0).dp_setting() == DPSGDFArm(epsilon=3.0).dp_setting()
        False
        """
        dropout = (tuple(sorted(self.dropout.items())) if isinstance(self.dropout, Mapping)
                   else self.dropout)
        return (self.epsilon, self.delta, self.max_grad_norm, self.accountant, dropout)


@register_arm
@dataclass(frozen=True, kw_only=True)
class DPSGDFArm(DPSGDArm):
    """DPSGD-F (Xu, Du & Wu 2021): DP-SGD with a clipping bound per sensitive group.

    Plain DP-SGD clips every row to one bound C0; rows of a group the model fits badly
    have large gradients, are clipped more, and the group pays most of DP's accuracy
    cost. DPSGD-F gives each group its own bound, chosen every step from noisy
    per-group counts, inside the same privacy budget. Each step of each model:

    1. Poisson-samples the batch as DP-SGD does;
    2. computes the sampled rows' gradient norms (a first pass);
    3. releases, per group g, the noisy counts ``b~_g = b_g + N(0, s1^2)`` of sampled
       rows and ``m~_g = m_g + N(0, s1^2)`` of sampled rows whose gradient norm exceeds
       C0 (one row moves one group's ``(b, m)`` by at most ``(1, 1)``: L2 sensitivity
       sqrt(2));
    4. sets ``C_g = C0 * min(1 + max(rho_g, 0), max_clip_ratio)`` with
       ``rho_g = (m~_g / m~) / (b~_g / b~)`` (the group's share of the clipped rows over
       its share of the batch; sums over groups ``m~``, ``b~``); a ratio that is undefined
       or not finite counts as 1 (post-processing of the noisy counts only);
    5. clips each row to its group's bound and sums (a second pass);
    6. adds ``N(0, (s2 * Cmax)^2)`` with ``Cmax = max_g C_g`` over all groups (a
       neighbouring row may belong to any group) and divides by the expected batch size.

    Accounting: the step's release (counts, then a gradient chosen from them) is one
    adaptive composition of two Gaussian mechanisms, i.e. a Gaussian mechanism of noise
    multiplier ``s_eff = 1 / sqrt(2 / s1^2 + 1 / s2^2)`` on the Poisson-subsampled
    batch; the accountant composes ``s_eff`` over the steps exactly as for DP-SGD, so
    the same target epsilon calibrates the same ``s_eff``, which is then split
    (:func:`audit.dp._accounting.split_noise_multiplier`).

    Attributes
    ----------
    statistics_share
        Share f of each step's privacy spent on the counts, in (0, 1):
        ``2 / s1^2 = f / s_eff^2`` and ``1 / s2^2 = (1 - f) / s_eff^2``.
    max_clip_ratio
        Cap on ``C_g / C0`` (at least 1); the gradient noise scales with the largest
        bound, so the cap bounds it.

    The other attributes are those of :class:`DPSGDArm`; ``max_grad_norm`` is C0. Only
    the batched trainer trains this arm (Opacus has no group-adaptive clipping).
    """

    kind: ClassVar[str] = "dp_sgd_f"
    statistics_share: float = DEFAULT_DPSGDF_STATISTICS_SHARE
    max_clip_ratio: float = DEFAULT_DPSGDF_MAX_CLIP_RATIO

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_params(self.kind, self, {
            "statistics_share": Interval(float, 0, 1, closed="neither"),
            "max_clip_ratio": Interval(float, 1, math.inf, closed="left"),
        })


#: The four arm kinds of DESIGN section 2, in display order.
ARM_KINDS: tuple[str, ...] = ("baseline", "uniform_dropout", "group_dropout", "dp_sgd")


def dp_settings(arms: Sequence[Arm]) -> dict[str, tuple[Any, ...]]:
    """Each DP arm's :meth:`DPSGDArm.dp_setting`, by label (what pairs DP arms)."""
    return {arm.label: arm.dp_setting() for arm in arms if isinstance(arm, DPSGDArm)}
