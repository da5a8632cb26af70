"""Exceptions raised by fairpriv.

Every error a user can cause names the offending column, value or option and
says how to fix it. The tree::

    FairprivError                      base of everything fairpriv raises
    ├── DataError (ValueError)         the data cannot be audited as given
    │   └── DataFileError              a file cannot be read (empty, encoding, format)
    ├── ConfigError (ValueError)       an option or hyperparameter is invalid
    ├── TrainingError (RuntimeError)   training failed (e.g. the privacy budget is unreachable)
    └── InternalError (RuntimeError)   a broken invariant: a bug in fairpriv, never the user's doing

The engine raises nothing else (``tests/test_errors.py`` checks every ``raise``);
catch ``FairprivError`` in front ends to show the message without a traceback.

Structured hints for front ends
-------------------------------
Messages are written for Python users and name Python parameters
(``small_groups='merge'``), never a front end's flags or widgets. Where an error is
about one parameter, two keyword-only attributes say so, for a front end to
translate into its own terms (the CLI rewrites ``small_groups='merge'`` into
``--small-groups merge``; the app points at the widget):

``param``
    The Python parameter at fault (``"small_groups"``, ``"target"``, ``"rates"``), or
    ``None``. Options of the configuration objects carry their field name.
``fix``
    ``{parameter: value}`` that would fix the error (``{"small_groups": "merge"}``), or
    ``None``. When a message suggests a fix it spells it ``name=value!r``.

Both are plain attributes; the message (``str(exc)``) does not depend on them.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ConfigError",
    "DataError",
    "DataFileError",
    "FairprivError",
    "InternalError",
    "TrainingError",
]


class FairprivError(Exception):
    """Base class of every error fairpriv raises.

    Parameters
    ----------
    *args
        As for :class:`Exception`; the first is the message.
    param
        The Python parameter at fault, if one is (see the module docstring).
    fix
        Parameter -> value that would fix the error, if the message suggests one.
    """

    param: str | None
    fix: Mapping[str, object] | None

    def __init__(self, *args: object, param: str | None = None,
                 fix: Mapping[str, object] | None = None) -> None:
        super().__init__(*args)
        self.param = param
        self.fix = dict(fix) if fix is not None else None


class DataError(FairprivError, ValueError):
    """The data cannot be audited as given (missing column, non-binary target, ...)."""


class DataFileError(DataError):
    """A data file cannot be read: empty, unreadable encoding, or not a table."""


class ConfigError(FairprivError, ValueError):
    """An option or hyperparameter is invalid; the message lists the valid values."""


class TrainingError(FairprivError, RuntimeError):
    """Training failed for a reason the user can act on."""


class InternalError(FairprivError, RuntimeError):
    """An invariant of fairpriv does not hold: a bug, not something the user did.

    The message says so and asks for a report.
    """

    def __str__(self) -> str:
        return f"{super().__str__()} (this is a bug in fairpriv, please report it)"
