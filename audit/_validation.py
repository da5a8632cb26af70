"""Declarative checks of scalar options, in the manner of scikit-learn's ``_param_validation``.

Every configuration object of fairpriv validates its options here, so every message
has one shape: the owner, the parameter, the valid set and the bad value::

    TrainingConfig epochs must be an integer >= 1, not 0
    AuditConfig device must be one of ['auto', 'cpu', 'cuda'], not 'gpu'

A constraint describes a set of valid values and converts a value it accepts:

* :class:`Interval` -- integers (``kind=int``) or numbers (``kind=float``) between
  bounds. Booleans are never integers or numbers and NaN is in no interval; a number
  (not an integer) may be given as text (``"0.3"``), as values read from JSON, a form
  or a command line often are, and is converted to ``float``.
* :class:`Options` -- one of a fixed set of values (the choice sets of
  :mod:`audit.defaults`).
* :class:`SequenceOf` -- a sequence (not a string) whose items all satisfy a constraint;
  converted to a tuple.
* ``None`` -- the value ``None``.

:func:`check_param` checks one value against constraints (any one suffices) and
returns it converted; :func:`validate_params` checks several fields of an object or
mapping from a spec. Both raise :class:`~audit.ConfigError` whose ``param`` attribute
names the parameter at fault.

Examples
--------
>>> check_param("TrainingConfig", "epochs", 3, Interval(int, 1, None))
3
>>> check_param("dp_sgd", "delta", "1e-6", None, Interval(float, 0, 1, closed="neither"))
1e-06
>>> check_param("TrainingConfig", "epochs", 0, Interval(int, 1, None))
Traceback (most recent call last):
...
audit._exceptions.ConfigError: TrainingConfig epochs must be an integer >= 1, not 0
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any, Literal, TypeVar

from ._exceptions import ConfigError, InternalError

T = TypeVar("T")

__all__ = [
    "INVALID",
    "Constraint",
    "Interval",
    "Options",
    "SequenceOf",
    "Text",
    "check_param",
    "describe",
    "validate_params",
]

Closed = Literal["both", "left", "right", "neither"]


class _Invalid:
    """Returned by :meth:`Constraint.convert` for a value outside the constraint."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


class Constraint(ABC):
    """A set of valid values of one parameter."""

    @abstractmethod
    def convert(self, value: Any) -> Any:
        """The value in its canonical type when valid, else :data:`INVALID`."""

    @abstractmethod
    def describe(self, plural: bool = False) -> str:
        """Words for the set, to follow "must be" (``plural``: to follow "a sequence of")."""

    def __str__(self) -> str:
        return self.describe()


class Interval(Constraint):
    """Integers (``kind=int``) or numbers (``kind=float``) between two bounds.

    ``low`` / ``high`` of ``None`` leave that side unbounded (infinities included for
    ``float``); ``closed`` says which bounds belong to the interval. ``Interval(float,
    0, math.inf, closed="neither")`` is the positive finite numbers.

    >>> str(Interval(float, 0, 0.95))
    'a number in [0, 0.95]'
    >>> str(Interval(float, 0, math.inf, closed="neither"))
    'a finite number > 0'
    >>> Interval(int, 1, None).convert(True) is INVALID
    True
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, *,
                 closed: Closed = "both") -> None:
        if kind not in (int, float):
            raise InternalError(f"Interval kind must be int or float, not {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise InternalError(
                f"Interval closed must be one of ['both', 'left', 'right', 'neither'], not {closed!r}")
        if low is not None and high is not None and low > high:
            raise InternalError(f"Interval low {low!r} is above high {high!r}")
        self.kind = kind
        self.low = low
        self.high = high
        self.closed = closed

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return INVALID
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return INVALID
            number: float = int(value)
        elif isinstance(value, numbers.Real):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return INVALID
        else:
            return INVALID
        if math.isnan(number) or not self._within(number):
            return INVALID
        return number

    def _within(self, x: float) -> bool:
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (x < self.low or (x == self.low and not left)):
            return False
        return not (self.high is not None and (x > self.high or (x == self.high and not right)))

    def describe(self, plural: bool = False) -> str:
        low, high = self.low, self.high
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        finite = False
        # An open infinite bound only says "finite".
        if high == math.inf and not right:
            high, finite = None, True
        if low == -math.inf and not left:
            low, finite = None, True
        word = "integer" if self.kind is int else "number"
        if finite:
            word = "finite " + word
        noun = word + "s" if plural else ("an " if word[0] in "aeiou" else "a ") + word
        if low is not None and high is not None:
            return f"{noun} in {'[' if left else '('}{low!r}, {high!r}{']' if right else ')'}"
        if low is not None:
            return f"{noun} {'>=' if left else '>'} {low!r}"
        if high is not None:
            return f"{noun} {'<=' if right else '<'} {high!r}"
        return noun

    def __repr__(self) -> str:
        return f"Interval({self.kind.__name__}, {self.low!r}, {self.high!r}, closed={self.closed!r})"


class Options(Constraint):
    """One of a fixed set of values, e.g. ``Options(defaults.DEVICE_CHOICES)``.

    >>> str(Options(("auto", "cpu", "cuda")))
    "one of ['auto', 'cpu', 'cuda']"
    >>> Options((0, 1)).convert(True) is INVALID   # a boolean is not the integer 1
    True
    """

    def __init__(self, values: Iterable[Any]) -> None:
        self.values = tuple(values)
        if not self.values:
            raise InternalError("Options needs at least one value")

    def convert(self, value: Any) -> Any:
        for option in self.values:
            if isinstance(value, bool) != isinstance(option, bool):
                continue
            try:
                if bool(value == option):
                    return option
            except (TypeError, ValueError):  # e.g. an array compared element-wise
                return INVALID
        return INVALID

    def describe(self, plural: bool = False) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return f"{'each ' if plural else ''}one of {list(self.values)}"

    def __repr__(self) -> str:
        return f"Options({self.values!r})"


class Text(Constraint):
    """A string, such as a column name (a number is not one: ``0`` is not the column ``'0'``).

    >>> str(Text())
    'text'
    >>> Text().convert(0) is INVALID
    True
    """

    def convert(self, value: Any) -> Any:
        return value if isinstance(value, str) else INVALID

    def describe(self, plural: bool = False) -> str:
        return "texts" if plural else "text"

    def __repr__(self) -> str:
        return "Text()"


class SequenceOf(Constraint):
    """A sequence (list, tuple, array; not a string) of items that all satisfy ``item``.

    >>> SequenceOf(Interval(int, 1, None)).convert([64, 32])
    (64, 32)
    >>> str(SequenceOf(Interval(int, 1, None)))
    'a sequence of integers >= 1'
    """

    def __init__(self, item: Constraint) -> None:
        self.item = item

    def convert(self, value: Any) -> Any:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            return INVALID
        out = []
        for x in value:
            converted = self.item.convert(x)
            if converted is INVALID:
                return INVALID
            out.append(converted)
        return tuple(out)

    def describe(self, plural: bool = False) -> str:
        return f"{'sequences' if plural else 'a sequence'} of {self.item.describe(plural=True)}"

    def __repr__(self) -> str:
        return f"SequenceOf({self.item!r})"


def _show(value: Any) -> str:
    """``repr`` with NumPy scalars shown as the Python numbers they hold."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        value = item()
    return repr(value)


def describe(constraints: Sequence[Constraint | None]) -> str:
    """``"a number in (0, 1) or None"``: the union of the constraints, in words."""
    parts = [c.describe() for c in constraints if c is not None]
    if any(c is None for c in constraints):
        parts.append("None")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def check_param(owner: str, name: str, value: Any, *constraints: Constraint | None,
                param: str | None = None, note: str | None = None) -> Any:
    """Check ``value`` against ``constraints`` (any one suffices); return it converted.

    Parameters
    ----------
    owner
        What the parameter belongs to, as the message names it (``"TrainingConfig"``,
        an arm kind such as ``"dp_sgd"``); ``""`` for a bare parameter.
    name
        The parameter as the message names it (``"epochs"``, ``"rate for 'Female'"``).
    constraints
        :class:`Constraint` objects, or ``None`` to accept ``None``.
    param
        The Python parameter at fault, for :attr:`~audit.FairprivError.param` (default
        ``name``); differs when ``name`` is a phrase, e.g. ``param="rates"``.
    note
        Said after the message in parentheses (why the valid set is what it is).

    Raises
    ------
    ConfigError
        ``"{owner} {name} must be {valid set}, not {value!r}"``.
    """
    if not constraints:
        raise InternalError(f"check_param needs at least one constraint ({owner} {name})")
    for constraint in constraints:
        if constraint is None:
            if value is None:
                return None
            continue
        converted = constraint.convert(value)
        if converted is not INVALID:
            return converted
    subject = f"{owner} {name}" if owner else name
    message = f"{subject} must be {describe(constraints)}, not {_show(value)}"
    raise ConfigError(message + (f" ({note})" if note else ""), param=param or name)


Spec = Mapping[str, Constraint | None | tuple[Constraint | None, ...]]


def validate_params(owner: str, target: Any, spec: Spec) -> dict[str, Any]:
    """Check the fields named in ``spec`` of ``target``, in the order of ``spec``.

    ``target`` is an object (typically a frozen dataclass, in ``__post_init__``) or a
    mapping of keyword arguments. For an object every checked field is set to its
    converted value; names missing from a mapping are skipped (their defaults apply).
    Returns the converted values by name.

    >>> validate_params("PrivacyAuditConfig", {"shadows": 4}, {"shadows": Interval(int, 0, None)})
    {'shadows': 4}
    """
    out: dict[str, Any] = {}
    for name, constraints in spec.items():
        allowed = constraints if isinstance(constraints, tuple) else (constraints,)
        if isinstance(target, Mapping):
            if name not in target:
                continue
            value = target[name]
        else:
            value = getattr(target, name)
        out[name] = check_param(owner, name, value, *allowed)
        if not isinstance(target, Mapping):
            # object.__setattr__ also works on frozen dataclasses.
            object.__setattr__(target, name, out[name])
    return out


def options_from_keywords(cls: type[T], owner: str, options: Mapping[str, Any]) -> T:
    """Build the options dataclass ``cls`` from a function's ``**options``.

    Unknown names are a :class:`~audit.ConfigError` listing the valid ones (instead of
    Python's ``TypeError``), so a misspelt option is caught with a useful message.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{owner}: unknown option(s) {unknown}; valid: {sorted(known)}",
                          param=unknown[0])
    return cls(**options)
