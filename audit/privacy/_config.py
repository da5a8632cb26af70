"""Options of the empirical privacy audit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._exceptions import ConfigError
from .._validation import Interval, Options, SequenceOf, validate_params
from ..defaults import (
    CANARY_KIND_CHOICES,
    CANARY_ROWS_CHOICES,
    DEFAULT_CANARIES,
    DEFAULT_CANARY_KIND,
    DEFAULT_CANARY_ROWS,
    DEFAULT_CANARY_SCALE,
    DEFAULT_CONFIDENCE,
    DEFAULT_GRADIENT_CANARIES,
    DEFAULT_GRADIENT_CANARY_NORM,
    DEFAULT_GRADIENT_GUESS_FRACTIONS,
    DEFAULT_GUESS_FRACTION,
    DEFAULT_MECHANISM_MASKS,
    DEFAULT_MECHANISM_ROWS,
    DEFAULT_MIA,
    DEFAULT_MIA_BOOTSTRAP,
    DEFAULT_ROW_GUESS_FRACTIONS,
    DEFAULT_SHADOWS,
    DEFAULT_WHITE_BOX,
    DEFAULT_WHITE_BOX_CANARIES,
    MIA_CHOICES,
)

MIA_ATTACKS = MIA_CHOICES
#: ``mia`` choices that train the shared shadow models and score LiRA and RMIA.
SHADOW_ATTACKS = ("lira", "rmia")


CANARY_KINDS = CANARY_KIND_CHOICES


@dataclass(frozen=True, kw_only=True)
class PrivacyAuditConfig:
    """Options of the empirical privacy audit.

    Attributes
    ----------
    mia
        ``"loss"`` (default: the loss-threshold attack), ``"lira"`` or ``"rmia"``, or
        ``"none"``. ``"lira"`` and ``"rmia"`` do the same thing: both train ``shadows``
        shadow (reference) models per arm, once, and score the loss attack, LiRA
        offline and RMIA offline from them, so asking for one gives the other for
        free. Heavy: the shadows cost ``shadows`` extra models per arm. RMIA compares
        each row with population rows drawn from the validation split.
    shadows
        Shadow (reference) models per arm for LiRA and RMIA, at least 2.
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
    white_box
        Also audit every arm white-box: the canary runs record every step's update, the
        crafted row canaries are scored by how closely an update carried each of them,
        and DP-SGD runs get Dirac gradient canaries (:mod:`audit.training._whitebox`).
        The row canaries cost about ``hidden x features x white_box_canaries``
        operations per step and model on top of training (well under a second per canary
        run at the default 400; linear beyond).
    white_box_canaries
        Crafted row canaries per canary run for the white-box audit (Gaussian inputs of
        scale ``canary_scale``, labels by coin), apart from the black-box ones.
    canary_scale
        Standard deviation of each encoded feature of a crafted canary (real rows are
        standardised to 1).
    row_guess_fractions
        ``k+ = round(f * white_box_canaries)`` "in" guesses on the row canaries (and no
        "out" guesses) for each fraction ``f``, fixed before training; each is tried at a
        Bonferroni share of the confidence and the largest bound is reported.
    gradient_canaries
        Dirac gradient canaries per DP-SGD canary run, on an appended block of audit
        coordinates (they cost a little noise per step, no training).
    gradient_canary_norm
        Their norm in units of the clipping norm; above 1, an honest step clips them to
        C, and a step that skips clipping lets them stand out.
    gradient_guess_fractions
        ``k+ = k- = round(f * gradient_canaries)`` guesses for each fraction ``f``, fixed
        before training; each is tried at a Bonferroni share of the confidence and the
        largest bound is reported (few guesses prove most against an honest run, whose
        evidence sits in the tails; many prove more against a broken one).
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
    white_box: bool = DEFAULT_WHITE_BOX
    white_box_canaries: int = DEFAULT_WHITE_BOX_CANARIES
    canary_scale: float = DEFAULT_CANARY_SCALE
    row_guess_fractions: tuple[float, ...] = DEFAULT_ROW_GUESS_FRACTIONS
    gradient_canaries: int = DEFAULT_GRADIENT_CANARIES
    gradient_canary_norm: float = DEFAULT_GRADIENT_CANARY_NORM
    gradient_guess_fractions: tuple[float, ...] = DEFAULT_GRADIENT_GUESS_FRACTIONS
    mechanism_rows: int = DEFAULT_MECHANISM_ROWS
    mechanism_masks: int = DEFAULT_MECHANISM_MASKS

    def __post_init__(self) -> None:
        validate_params("PrivacyAuditConfig", self, {
            "mia": Options(MIA_ATTACKS),
            "shadows": Interval(int, 0, None),
            "mia_bootstrap": Interval(int, 0, None),
            "canaries": (Options([0]), Interval(int, 2, None)),
            "canary_kind": Options(CANARY_KINDS),
            "canary_rows": Options(CANARY_ROWS_CHOICES),
            "guess_fraction": Interval(float, 0, 0.5, closed="right"),
            "confidence": Interval(float, 0, 1, closed="neither"),
            "white_box": Options([True, False]),
            "white_box_canaries": (Options([0]), Interval(int, 2, None)),
            "canary_scale": Interval(float, 0, None, closed="neither"),
            "row_guess_fractions": SequenceOf(Interval(float, 0, 1, closed="right")),
            "gradient_canaries": (Options([0]), Interval(int, 2, None)),
            "gradient_canary_norm": Interval(float, 1, None),
            "gradient_guess_fractions": SequenceOf(Interval(float, 0, 0.5, closed="right")),
            "mechanism_rows": Interval(int, 0, None),
            "mechanism_masks": Interval(int, 2, None),
        })
        if self.uses_shadows and self.shadows < 2:
            who = "LiRA needs" if self.mia == "lira" else \
                "LiRA and RMIA (which share their shadow models) need"
            raise ConfigError(f"{who} at least 2 shadow models, not {self.shadows}",
                              param="shadows", fix={"shadows": 2})

    @property
    def uses_shadows(self) -> bool:
        """Whether the audit trains shadow models (for LiRA and RMIA alike)."""
        return self.mia in SHADOW_ATTACKS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the guess fractions as a list, as ``results.json`` stores them."""
        out = asdict(self)
        out["gradient_guess_fractions"] = list(self.gradient_guess_fractions)
        out["row_guess_fractions"] = list(self.row_guess_fractions)
        return out

