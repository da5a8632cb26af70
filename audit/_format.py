"""How numbers read in sentences and tables: one convention for every front end.

Rates, errors, gaps and AUCs show :data:`RATE_DIGITS` decimals, epsilons
:data:`EPSILON_DIGITS`. A value with its interval shares one number of decimals, so
that a verdict never reads "0.01067 (95% CI 0.005235 to 0.01581)"; a sentence whose
numbers may be on any scale (a mean squared error, a false positive rate near 0)
picks its decimals with :func:`decimals_for`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["EPSILON_DIGITS", "RATE_DIGITS", "decimals_for", "format_interval", "format_number"]

#: Decimals of a rate, error, gap, AUC or true/false positive rate.
RATE_DIGITS = 3
#: Decimals of an epsilon (the accountant's, or a proven lower bound).
EPSILON_DIGITS = 2


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(float(value)))
    except (TypeError, ValueError):
        return True


def format_number(value: Any, digits: int = RATE_DIGITS, *, signed: bool = False,
                  missing: str = "n/a") -> str:
    """``value`` with ``digits`` decimals; ``missing`` for None/NaN/pd.NA.

    A value that rounds to zero reads "0.000", never "-0.000"; ``signed`` writes "+"
    before positive values (a change), infinities read "inf" / "-inf".

    Examples
    --------
    >>> format_number(0.010671), format_number(2.9907, 2), format_number(-0.0001)
    ('0.011', '2.99', '0.000')
    >>> format_number(0.0125, signed=True), format_number(float("nan"))
    ('+0.013', 'n/a')
    """
    if _missing(value):
        return missing
    v = float(value)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = f"{v:.{digits}f}"
    if float(text) == 0.0:
        return text.lstrip("-")
    return ("+" + text) if signed and v > 0 else text


def format_interval(value: Any, low: Any, high: Any, digits: int = RATE_DIGITS, *,
                    level: float | None = None, signed: bool = False, missing: str = "n/a") -> str:
    """A value and its interval, all with the same decimals.

    With ``level``: "0.011 (95% CI 0.005 to 0.016)", for sentences; without:
    "0.011 [0.005, 0.016]", for table cells. Without an interval (either end missing)
    only the value.

    Examples
    --------
    >>> format_interval(0.010671, 0.005235, 0.01581, level=0.95)
    '0.011 (95% CI 0.005 to 0.016)'
    >>> format_interval(0.5041, 0.493, 0.518)
    '0.504 [0.493, 0.518]'
    """
    text = format_number(value, digits, signed=signed, missing=missing)
    if _missing(low) or _missing(high):
        return text
    lo, hi = format_number(low, digits), format_number(high, digits)
    if level is not None:
        return f"{text} ({100 * float(level):g}% CI {lo} to {hi})"
    return f"{text} [{lo}, {hi}]"


def decimals_for(*values: Any, minimum: int = RATE_DIGITS, significant: int = 2, maximum: int = 6) -> int:
    """Decimals that show the largest of ``values`` (in absolute value) with at least
    ``significant`` significant digits: never fewer than ``minimum`` nor more than
    ``maximum``. Missing and zero values are ignored.

    Examples
    --------
    >>> decimals_for(0.01067, 0.005235, 0.01581), decimals_for(0.00028), decimals_for(12.5)
    (3, 5, 3)
    """
    finite = [abs(float(v)) for v in values if not _missing(v) and math.isfinite(float(v)) and float(v) != 0]
    if not finite:
        return minimum
    needed = significant - 1 - math.floor(math.log10(max(finite)))
    return max(minimum, min(maximum, needed))
