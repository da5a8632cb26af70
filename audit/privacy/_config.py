"""Options of the empirical privacy audit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._exceptions import ConfigError
from ..defaults import (
    CANARY_KIND_CHOICES,
    DEFAULT_CANARIES,
    DEFAULT_CANARY_KIND,
    DEFAULT_CANARY_ROWS,
    DEFAULT_CONFIDENCE,
    DEFAULT_GUESS_FRACTION,
    DEFAULT_MECHANISM_MASKS,
    DEFAULT_MECHANISM_ROWS,
    DEFAULT_MIA,
    DEFAULT_MIA_BOOTSTRAP,
    DEFAULT_SHADOWS,
    MIA_CHOICES,
)

MIA_ATTACKS = MIA_CHOICES


CANARY_KINDS = CANARY_KIND_CHOICES


@dataclass(frozen=True, kw_only=True)
class PrivacyAuditConfig:
    """Options of the empirical privacy audit.

    Attributes
    ----------
    mia
        ``"loss"`` (default), ``"lira"`` (loss plus LiRA with ``shadows`` shadow models
        per arm; heavy) or ``"none"``.
    shadows
        Shadow models per arm for LiRA.
    mia_bootstrap
        Bootstrap resamples for the attack metrics' confidence intervals.
    canaries
        Canaries per one-run audit (0 disables it); fewer when the test split is smaller.
    canary_kind
        ``"flipped"`` (the canary's label is flipped: a strong, worst-case-style signal)
        or ``"natural"`` (test rows as they are).
    canary_rows
        Which test rows become canaries: ``"isolated"`` (default: those farthest from
        their 5th-nearest training row, where a model can only fit a label by
        memorising it, so the audit is more sensitive) or ``"random"``. Chosen before
        the inclusion coins are tossed, so the bound stays valid either way.
    guess_fraction
        ``k+ = k- = round(guess_fraction * m)``: the number of "in" and "out" guesses,
        fixed before training.
    confidence
        Confidence of the epsilon lower bound.
    mechanism_rows, mechanism_masks
        Training rows and dropout masks used for the dropout-noise curve.
    """

    mia: str = DEFAULT_MIA
    shadows: int = DEFAULT_SHADOWS
    mia_bootstrap: int = DEFAULT_MIA_BOOTSTRAP
    canaries: int = DEFAULT_CANARIES
    canary_kind: str = DEFAULT_CANARY_KIND
    canary_rows: str = DEFAULT_CANARY_ROWS
    guess_fraction: float = DEFAULT_GUESS_FRACTION
    confidence: float = DEFAULT_CONFIDENCE
    mechanism_rows: int = DEFAULT_MECHANISM_ROWS
    mechanism_masks: int = DEFAULT_MECHANISM_MASKS

    def __post_init__(self) -> None:
        if self.mia not in MIA_ATTACKS:
            raise ConfigError(f"mia must be one of {list(MIA_ATTACKS)}, not {self.mia!r}")
        if self.mia == "lira" and self.shadows < 2:
            raise ConfigError(f"LiRA needs at least 2 shadow models, not {self.shadows}")
        if self.canary_rows not in ("isolated", "random"):
            raise ConfigError(
                f"canary_rows must be one of ['isolated', 'random'], not {self.canary_rows!r}")
        if self.canary_kind not in CANARY_KINDS:
            raise ConfigError(
                f"canary_kind must be one of {list(CANARY_KINDS)}, not {self.canary_kind!r}")
        if self.canaries < 0 or self.canaries == 1:
            raise ConfigError(f"canaries must be 0 (no audit) or at least 2, not {self.canaries}")
        if not 0 < self.guess_fraction <= 0.5:
            raise ConfigError(f"guess_fraction must be in (0, 0.5], not {self.guess_fraction}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), not {self.confidence}")
        if self.mia_bootstrap < 0 or self.mechanism_rows < 0 or self.mechanism_masks < 2:
            raise ConfigError("mia_bootstrap and mechanism_rows must be >= 0, mechanism_masks >= 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

