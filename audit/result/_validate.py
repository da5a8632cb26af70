"""Checking a ``results.json`` against the JSON Schema shipped with fairpriv.

The schema (``results.schema.json``, next to this module, JSON Schema draft 2020-12)
describes every key the writer (:mod:`audit.result._json`) emits. It is package data,
so pipelines outside Python can validate with any JSON Schema tool;
:func:`validate_results` does it here, with messages that name the field at fault.

Version policy: ``schema_version`` is MAJOR.MINOR. A minor bump only adds fields (or
names: metrics, attacks), so this fairpriv reads files of any minor version of its
major: in a file newer than itself it checks what it knows and leaves unknown keys
alone. A major bump breaks the layout, and such files are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import DataFileError
from ._schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

__all__ = [
    "SCHEMA_FILE",
    "check_schema_version",
    "field_path",
    "read_results_file",
    "results_schema",
    "validate_results",
]

#: The schema's file name inside the :mod:`audit.result` package.
SCHEMA_FILE = "results.schema.json"
#: Keywords whose errors mean "a key or name this version does not know": tolerated in
#: files of a newer minor version, whose additions this version cannot describe. An
#: unknown name of a key (propertyNames) fails its ``enum``, as does a new value of a
#: closed set (a metric, attack or accountant added since).
_ADDITION_KEYWORDS = frozenset({"additionalProperties", "unevaluatedProperties", "enum"})
_VERSION = re.compile(r"^(\d+)\.(\d+)$")
#: Keys written as ``.key`` in a field path; others (``tpr_at_fpr_0.1pct``, group names
#: with spaces) as ``['key']``, so the path can be read back unambiguously.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``results.json`` (draft 2020-12), as shipped in the package.

    Returns
    -------
    dict
        The parsed schema. Cached: do not modify it (copy it first).

    Examples
    --------
    >>> results_schema()["x-fairpriv-schema-version"] == SCHEMA_VERSION
    True
    """
    text = files("audit.result").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Validator:
    # jsonschema is imported here, not at module level: it is needed only to validate,
    # and importing it costs ``import audit`` about a tenth of a second.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(results_schema())


def _version(text: str) -> tuple[int, int] | None:
    match = _VERSION.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_schema_version(data: Mapping[str, Any]) -> tuple[int, int]:
    """The (major, minor) of a results file, or a DataFileError if this fairpriv cannot read it."""
    if "schema_version" not in data:
        raise DataFileError("not a fairpriv results file: schema_version: required field is missing")
    raw = data["schema_version"]
    version = _version(raw) if isinstance(raw, str) else None
    if version is None:
        raise DataFileError(f"schema_version: {raw!r} is not a version (MAJOR.MINOR, e.g. "
                            f"{SCHEMA_VERSION!r})")
    ours = _version(SCHEMA_VERSION)
    assert ours is not None
    if version[0] != ours[0]:
        raise DataFileError(
            f"results schema_version {raw!r} is not supported (this fairpriv reads "
            f"{ours[0]}.x and writes {SCHEMA_VERSION}); re-run the audit with this version."
        )
    return version


def field_path(parts: Iterable[str | int]) -> str:
    """A JSON location as ``arms[0].metrics.aggregate.overall['tpr_at_fpr_0.1pct']``.

    Examples
    --------
    >>> field_path(["arms", 0, "privacy", "mia", "loss", "by_group", "a b"])
    "arms[0].privacy.mia.loss.by_group['a b']"
    >>> field_path([])
    '(top level)'
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


def _is_addition(error: ValidationError) -> bool:
    """Whether ``error`` is only a key, name or value this version does not know."""
    return error.validator in _ADDITION_KEYWORDS or "propertyNames" in error.schema_path


def _describe(error: ValidationError) -> str:
    """One problem as ``<field path>: <what is wrong>``."""
    path = list(error.absolute_path)
    if error.validator == "required":
        # jsonschema reports a missing key at its parent; name the key itself.
        # One error per missing key, named (as its repr) at the start of the message.
        key = next((k for k in error.validator_value if error.message.startswith(repr(k))), None)
        if key is not None:
            return f"{field_path([*path, key])}: required field is missing"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        # The message lists the unexpected keys; for unevaluatedProperties the schema's
        # own "properties" are not all the allowed keys ($ref adds more), so read them there.
        extra = [k for k in error.instance if repr(k) in error.message]
        if extra:
            return f"{field_path([*path, extra[0]])}: unknown field (schema {SCHEMA_VERSION} has no such key)"
    if "propertyNames" in error.schema_path:
        # The name of a key is wrong (an unknown metric, attack, gap kind...): the schema
        # titles each such name.
        noun = error.schema.get("title", "key")
        choices = error.schema.get("enum")
        known = f"; known: {', '.join(map(str, choices))}" if choices else ""
        return f"{field_path([*path, error.instance])}: unknown {noun} {error.instance!r}{known}"
    return f"{field_path(path)}: {error.message}"


def validate_results(source: str | Path | Mapping[str, Any]) -> str:
    """Check a ``results.json`` against fairpriv's schema; raise if it does not conform.

    Parameters
    ----------
    source
        A parsed results file (a mapping, as ``json.load`` gives), the path of a
        ``results.json``, or a directory holding one (an audit's output folder).

    Returns
    -------
    str
        The file's ``schema_version``, e.g. ``"1.1"``.

    Raises
    ------
    DataFileError
        The file is missing, is not JSON, has a ``schema_version`` of another major
        version, or does not match the schema. The message names the first field at
        fault (``arms[0].metrics.aggregate.overall.error_rate.ci_low: 'abc' is not of
        type 'number', 'null'``) and how many other problems there are.

    Notes
    -----
    A file of a newer minor version than this fairpriv's may carry keys and names this
    version does not know (a minor bump only adds); they are not reported. The schema
    itself is :func:`results_schema`.

    Examples
    --------
    >>> dataset = {"name": "d", "rows": 2, "groups": {"a": 2}}
    >>> try:
    ...     validate_results({"schema_version": "1.1", "config": {"seeds": [0]},
    ...                       "dataset": dataset, "arms": []})
    ... except DataFileError as exc:
    ...     print(exc)
    not a valid results file: arms: [] should be non-empty
    """
    if isinstance(source, Mapping):
        data: Any = source
    else:
        data = read_results_file(source)
    if not isinstance(data, Mapping):
        raise DataFileError(f"not a fairpriv results file: the top level is a JSON "
                            f"{type(data).__name__}, not an object")
    version = check_schema_version(data)
    newer = version > (_version(SCHEMA_VERSION) or version)
    errors = [e for e in _validator().iter_errors(data) if not (newer and _is_addition(e))]
    if not errors:
        return str(data["schema_version"])
    # iter_errors walks the file in order, so the first error is the first field at fault.
    first = _describe(errors[0])
    others = len(errors) - 1
    more = f" (and {others} other problem{'s' if others != 1 else ''})" if others else ""
    raise DataFileError(f"not a valid results file: {first}{more}")


def read_results_file(source: str | Path) -> Any:
    """The parsed JSON of a results file, or of ``results.json`` in a directory.

    Raises
    ------
    DataFileError
        The path does not exist, or the file is not valid JSON text.
    """
    path = Path(source)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise DataFileError(f"results file not found: '{path}'")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataFileError(f"not a valid results JSON: '{path}' is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(f"not a valid results JSON: {exc}") from None
