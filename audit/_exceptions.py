"""Exceptions raised by fairpriv.

Every error a user can cause names the offending column, value or option and
says how to fix it. The tree::

    FairprivError                      base of everything raised on purpose
    ├── DataError (ValueError)         the data cannot be audited as given
    │   └── DataFileError              a file cannot be read (empty, encoding, format)
    ├── ConfigError (ValueError)       an option or hyperparameter is invalid
    ├── TrainingError (RuntimeError)   training failed (e.g. the privacy budget is unreachable)
    └── InternalError (RuntimeError)   a broken invariant: a bug in fairpriv, please report it

Catch ``FairprivError`` in front ends to show the message without a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "DataFileError", "FairprivError", "InternalError", "TrainingError"]


class FairprivError(Exception):
    """Base class of every error fairpriv raises on purpose."""


class DataError(FairprivError, ValueError):
    """The data cannot be audited as given (missing column, non-binary target, ...)."""


class DataFileError(DataError):
    """A data file cannot be read: empty, unreadable encoding, or not a table."""


class ConfigError(FairprivError, ValueError):
    """An option or hyperparameter is invalid; the message lists the valid values."""


class TrainingError(FairprivError, RuntimeError):
    """Training failed for a reason the user can act on."""


class InternalError(FairprivError, RuntimeError):
    """A broken invariant inside fairpriv: a bug, never the user's input."""
