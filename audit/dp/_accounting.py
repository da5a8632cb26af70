"""Privacy accounting: thin, pure wrappers over Opacus' accountants.

The ``dp_sgd`` arm and the ``fairpriv epsilon`` command go through the same two
functions, so a reported epsilon is always the accountant's, never a formula of
ours. What the guarantee assumes and what it leaves out is spelled out in
:data:`GUARANTEE_ASSUMPTIONS` and :data:`NOT_COVERED`, which every front end shows.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from opacus.accountants.utils import get_noise_multiplier

from .._exceptions import ConfigError, TrainingError
from ..defaults import ACCOUNTANT_CHOICES, GUARANTEE_ACCOUNTANT_CHOICES

__all__ = [
    "ACCOUNTANTS",
    "GROUP_ADAPTIVE_ASSUMPTIONS",
    "GUARANTEE_ACCOUNTANTS",
    "GUARANTEE_ASSUMPTIONS",
    "NOT_COVERED",
    "NO_GUARANTEE",
    "PrivacyLedger",
    "compute_epsilon",
    "default_delta",
    "effective_noise_multiplier",
    "noise_multiplier_for_epsilon",
    "split_noise_multiplier",
]

#: Accountants :func:`compute_epsilon` knows. ``gdp`` (Gaussian DP, a central-limit
#: approximation) can *under*-report epsilon, so it is offered for comparison only.
ACCOUNTANTS: tuple[str, ...] = ACCOUNTANT_CHOICES
#: Accountants whose epsilon is a valid upper bound, the only ones a DP arm may report.
GUARANTEE_ACCOUNTANTS: tuple[str, ...] = GUARANTEE_ACCOUNTANT_CHOICES

NO_GUARANTEE = "no guarantee"
GUARANTEE_ASSUMPTIONS = (
    "(epsilon, delta)-DP for add/remove-one neighbouring datasets, assuming every step "
    "samples its batch by Poisson sampling (each training row independently with "
    "probability q), clips each per-row gradient to norm C and adds Gaussian noise of "
    "std sigma*C; composed over all steps by the accountant."
)
GROUP_ADAPTIVE_ASSUMPTIONS = (
    "(epsilon, delta)-DP for add/remove-one neighbouring datasets, assuming every step "
    "samples its batch by Poisson sampling (each training row independently with "
    "probability q), releases per-group counts of sampled rows and of rows whose gradient "
    "norm exceeds C0 with Gaussian noise of std s1 (L2 sensitivity sqrt(2)), clips each "
    "per-row gradient to its group's bound C_g (computed from the noisy counts only) and "
    "adds Gaussian noise of std s2*max_g C_g; the counts and the gradient, composed "
    "adaptively, are one Gaussian mechanism of noise multiplier "
    "sigma = 1/sqrt(2/s1^2 + 1/s2^2) per step, composed over all steps by the accountant. "
    "The list of groups itself is taken as public: the audit reads it from the data "
    "(training rows included, and which small groups are merged depends on the split "
    "sizes), which the guarantee does not cover."
)
NOT_COVERED = (
    "Not covered by the guarantee: preprocessing statistics fitted on the training rows "
    "(means, scales, category vocabularies, the list of sensitive groups), hyperparameter "
    "and dropout-rate search on "
    "the same data, and the choice of the model. The sampling and noise come from a "
    "seeded pseudo-random generator (for reproducible audits), not a cryptographically "
    "secure one, and the floating-point noise is not hardened against precision attacks."
)


def _check_accountant(accountant: str) -> None:
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"accountant must be one of {list(ACCOUNTANTS)}, not {accountant!r}")


def _check_rate_steps_delta(sample_rate: float, steps: int, delta: float) -> None:
    if not 0 < sample_rate <= 1:  # also rejects NaN
        raise ConfigError(f"sample_rate must be in (0, 1], not {sample_rate}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ConfigError(f"steps must be a positive integer, not {steps}")
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), not {delta}")


def compute_epsilon(
    *, sample_rate: float, noise_multiplier: float, steps: int, delta: float,
    accountant: str = "prv",
) -> float:
    """Epsilon of DP-SGD after ``steps`` Poisson-sampled Gaussian steps.

    Parameters
    ----------
    sample_rate
        Poisson sampling rate q (expected batch size / training rows).
    noise_multiplier
        sigma: noise std divided by the clipping norm.
    steps
        Number of optimiser steps.
    delta
        Target delta.
    accountant
        ``"prv"`` (default; tight numerical composition), ``"rdp"`` (Renyi DP, an upper
        bound) or ``"gdp"`` (an approximation that can under-report epsilon; never used
        for a reported guarantee).

    Examples
    --------
    >>> round(compute_epsilon(sample_rate=0.01, noise_multiplier=1.1, steps=1000,
    ...                       delta=1e-5, accountant="rdp"), 2)
    1.71
    """
    _check_accountant(accountant)
    _check_rate_steps_delta(sample_rate, steps, delta)
    return _cached_epsilon(float(sample_rate), float(noise_multiplier), int(steps), float(delta),
                           accountant)


@functools.lru_cache(maxsize=1024)
def _cached_epsilon(
    sample_rate: float, noise_multiplier: float, steps: int, delta: float, accountant: str
) -> float:
    # Pure function of its arguments; PRV takes about a second, and every seed of
    # an audit asks the same question.
    if not (0 < noise_multiplier < math.inf):
        raise ConfigError(
            f"noise_multiplier must be a positive finite number, not {noise_multiplier}; "
            "without noise there is no finite epsilon"
        )
    from opacus.accountants.utils import create_accountant  # type: ignore[attr-defined]

    acc = create_accountant(mechanism=accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with quiet_opacus():
        return float(acc.get_epsilon(delta=delta))


@contextlib.contextmanager
def quiet_opacus() -> Iterator[None]:
    """Silence Opacus warnings that are expected here and say nothing to the user.

    RDP's "optimal order is the largest alpha" (the bound is still valid, only
    possibly loose), the non-secure RNG notice (seeded generators are needed for
    reproducible audits; reports say so), and the full-backward-hook notice on
    inputs that do not require gradients.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        # GDP's "can underestimate" warning is restated in compute_epsilon's docs and
        # GDP is never used for an arm's guarantee.
        warnings.filterwarnings("ignore", message=".*GDP accounting.*")
        # q = 1 (full-batch DP) makes the RDP analysis take log(0) on its way to a
        # finite bound.
        warnings.filterwarnings("ignore", message="divide by zero encountered in log")
        yield


def noise_multiplier_for_epsilon(
    *, target_epsilon: float, sample_rate: float, steps: int, delta: float,
    accountant: str = "prv",
) -> float:
    """Noise multiplier whose epsilon is at most the target (within 0.01 below it).

    The binary search runs the accountant many times (seconds with PRV); results
    are cached because every seed of an audit asks the same question.
    """
    _check_accountant(accountant)
    _check_rate_steps_delta(sample_rate, steps, delta)
    if not target_epsilon > 0 or math.isinf(target_epsilon):
        raise ConfigError(f"target epsilon must be a positive finite number, not {target_epsilon}")
    return _cached_noise_multiplier(
        float(target_epsilon), float(sample_rate), int(steps), float(delta), accountant
    )


@functools.lru_cache(maxsize=256)
def _cached_noise_multiplier(
    target_epsilon: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> float:
    try:
        with quiet_opacus():
            return float(get_noise_multiplier(
                target_epsilon=target_epsilon, target_delta=delta, sample_rate=sample_rate,
                steps=steps, accountant=accountant,
            ))
    except ValueError as exc:
        raise TrainingError(
            f"epsilon {target_epsilon} at delta {delta} cannot be reached with sample rate "
            f"{sample_rate:.4g} over {steps} steps ({exc}); raise epsilon, or train for fewer "
            "steps / on more rows."
        ) from None


#: L2 sensitivity of DPSGD-F's per-group statistics: adding or removing one row changes
#: one group's (batch count, clipped count) by at most (1, 1).
STATISTICS_SENSITIVITY = math.sqrt(2.0)


def effective_noise_multiplier(gradient: float, statistics: float,
                               statistics_sensitivity: float = STATISTICS_SENSITIVITY) -> float:
    """Noise multiplier of one Gaussian mechanism equivalent to a step of DPSGD-F.

    A step releases noisy statistics (noise std ``statistics``, sensitivity
    ``statistics_sensitivity``) and a noisy clipped gradient sum (noise multiplier
    ``gradient``, sensitivity 1 in units of the clipping bound). Scaled by their noise
    stds, the pair is one Gaussian query whose per-row L2 contribution is at most
    ``r = sqrt(statistics_sensitivity^2 / statistics^2 + 1 / gradient^2)``; adaptive
    composition of Gaussian mechanisms is the Gaussian mechanism ``G_r`` (Gaussian DP),
    so the step is the (subsampled) Gaussian mechanism of noise multiplier ``1 / r``.

    Parameters
    ----------
    gradient
        s2: the gradient noise std over the largest clipping bound.
    statistics
        s1: the std of the noise added to each statistic.
    statistics_sensitivity
        L2 sensitivity of the statistics (sqrt(2): two counts that one row moves by 1).

    Examples
    --------
    >>> round(effective_noise_multiplier(1.0, math.sqrt(2.0)), 6)
    0.707107
    """
    for name, value in (("gradient", gradient), ("statistics", statistics)):
        if not 0 < value < math.inf:
            raise ConfigError(f"{name} noise multiplier must be a positive finite number, not {value}")
    return 1.0 / math.sqrt(statistics_sensitivity**2 / statistics**2 + 1.0 / gradient**2)


def split_noise_multiplier(effective: float, statistics_share: float,
                           statistics_sensitivity: float = STATISTICS_SENSITIVITY
                           ) -> tuple[float, float]:
    """Split an effective noise multiplier into DPSGD-F's (gradient, statistics) noise.

    The privacy of a step, ``1 / effective^2`` in the units of
    :func:`effective_noise_multiplier`, is shared: ``statistics_share`` f of it to the
    statistics, ``statistics_sensitivity^2 / s1^2 = f / effective^2``, the rest to the
    gradient, ``1 / s2^2 = (1 - f) / effective^2``. The inverse of
    :func:`effective_noise_multiplier`.

    Returns
    -------
    (gradient, statistics)
        s2, the gradient noise multiplier, and s1, the statistics' noise std.

    Examples
    --------
    >>> s2, s1 = split_noise_multiplier(1.0, 0.1)
    >>> round(s2, 4), round(s1, 4)
    (1.0541, 4.4721)
    >>> round(effective_noise_multiplier(s2, s1), 12)
    1.0
    """
    if not 0 < effective < math.inf:
        raise ConfigError(f"effective noise multiplier must be a positive finite number, not {effective}")
    if not 0 < statistics_share < 1:
        raise ConfigError(f"statistics_share must be in (0, 1), not {statistics_share}",
                          param="statistics_share")
    gradient = effective / math.sqrt(1.0 - statistics_share)
    statistics = statistics_sensitivity * effective / math.sqrt(statistics_share)
    return gradient, statistics


def default_delta(n_train: int) -> float:
    """The default delta: ``min(1e-5, 1 / (10 n_train))``, well below 1/n."""
    if n_train < 1:
        raise ConfigError(f"n_train must be positive, not {n_train}")
    return min(1e-5, 1.0 / (10 * n_train))


@dataclass(frozen=True, kw_only=True)
class PrivacyLedger:
    """What one trained model can claim about privacy.

    ``epsilon`` is a number only for a mechanism with a formal guarantee (DP-SGD);
    for every other arm it is ``None`` and ``guarantee`` says "no guarantee".

    For DPSGD-F (``mechanism="dp_sgd_f"``) ``noise_multiplier`` is the effective one the
    accountant composed (:func:`effective_noise_multiplier`), ``gradient_noise_multiplier``
    (s2) the one the gradient got, relative to the step's largest clipping bound, and
    ``statistics_noise_multiplier`` (s1) the std of the per-group counts' noise; both are
    ``None`` for every other mechanism.
    """

    mechanism: str
    epsilon: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    accountant: str | None = None
    max_grad_norm: float | None = None
    guarantee: str = NO_GUARANTEE
    gradient_noise_multiplier: float | None = None
    statistics_noise_multiplier: float | None = None

    def __post_init__(self) -> None:
        if self.epsilon is not None and (self.noise_multiplier is None or self.accountant is None):
            raise ConfigError("an epsilon needs the noise multiplier and accountant it came from")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
