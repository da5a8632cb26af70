"""Reading tabular files and cleaning raw frames.

Kept apart from :mod:`audit.data._datasets` so that the parsing rules (delimiter sniffing,
whitespace stripping, missing-value markers) can be tested on their own.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._exceptions import DataError, DataFileError, InternalError
from ..defaults import DEFAULT_NA_VALUES

__all__ = ["DEFAULT_NA_VALUES", "DELIMITER_ATTR", "clean_frame", "read_table"]

#: Key of ``frame.attrs`` under which :func:`read_table` records the delimiter of a text file.
DELIMITER_ATTR = "fairpriv_delimiter"

_CANDIDATE_DELIMITERS = ",;\t|"
_SNIFF_LINES = 50


def read_table(
    path: str | Path,
    *,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    encoding: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    skip_prefix: str | None = None,
) -> pd.DataFrame:
    """Read a CSV-like text file or a Parquet file into a cleaned frame.

    Parquet is recognised by its magic bytes, whatever the extension; anything
    else is read as delimited text with the delimiter sniffed from the first lines
    (``,``, ``;``, tab or ``|``).

    Parameters
    ----------
    path
        The file.
    na_values
        Cell values (after stripping whitespace) read as missing.
    encoding
        Text encoding; by default UTF-8 (with or without a byte-order mark).
    header
        Whether the first line holds the column names.
    names
        Column names to use when ``header`` is False.
    skip_prefix
        Lines starting with this string are ignored (UCI files start with ``|`` notes).

    Returns
    -------
    pandas.DataFrame
        Column names and string cells stripped, ``na_values`` as NaN, columns
        whose every present value is a number converted to numbers. For a text file,
        ``frame.attrs[DELIMITER_ATTR]`` is the delimiter it was read with.

    Raises
    ------
    DataFileError
        The file is missing, empty, binary, not decodable, or has ragged rows.
    DataError
        Column names are empty or duplicated.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"data file not found: '{path}'. Check the path.")
    if path.is_dir():
        raise DataFileError(f"'{path}' is a directory; pass the data file inside it.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFileError(f"data file '{path}' is empty; it needs a header line and data rows.")
    if raw[:4] == b"PAR1":
        return _read_parquet(path, na_values)
    if b"\x00" in raw[:65536] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataFileError(
            f"'{path}' looks binary (it contains NUL bytes), not a CSV/TSV text table or "
            "Parquet file. Export the data as CSV (UTF-8) or Parquet."
        )
    text = _decode(raw, path, encoding)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if skip_prefix is not None:
        lines = [ln for ln in lines if not ln.lstrip().startswith(skip_prefix)]
    if not lines:
        raise DataFileError(f"data file '{path}' has no lines with data.")
    delimiter = _sniff_delimiter(lines[:_SNIFF_LINES])
    rows = list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))
    if header:
        columns = [c.strip() for c in rows[0]]
        body = rows[1:]
    else:
        if names is None:
            names = [f"column_{i}" for i in range(len(rows[0]))]
        columns = list(names)
        body = rows
    _check_column_names(columns, str(path))
    if not body:
        raise DataFileError(
            f"data file '{path}' has a header line but no data rows."
        )
    width = len(columns)
    for line_no, row in enumerate(body, start=2 if header else 1):
        if len(row) != width:
            raise DataFileError(
                f"line {line_no} of '{path}' has {len(row)} fields but the header has {width} "
                f"(delimiter {delimiter!r}). Fix that line or quote fields that contain "
                "the delimiter."
            )
    frame = clean_frame(pd.DataFrame(body, columns=columns, dtype=object), na_values=na_values)
    frame.attrs[DELIMITER_ATTR] = delimiter
    return frame


def clean_frame(frame: pd.DataFrame, *, na_values: Sequence[str] = DEFAULT_NA_VALUES) -> pd.DataFrame:
    """Strip names and string cells, mark missing values, and convert numeric columns.

    The input frame is not modified.
    """
    columns = [str(c).strip() for c in frame.columns]
    _check_column_names(columns, "the data frame")
    out = frame.copy()
    out.columns = pd.Index(columns)
    na_set = {str(v).strip() for v in na_values}
    for name in columns:
        col = out[name]
        if _already_typed(col):
            continue
        stripped = col.map(lambda v: v.strip() if isinstance(v, str) else v)
        stripped = stripped.map(lambda v: np.nan if isinstance(v, str) and v in na_set else v)
        out[name] = _maybe_numeric(stripped)
    return out


def _already_typed(col: pd.Series) -> bool:
    """Numbers, booleans, dates and durations: nothing to strip or parse (dates and
    durations become numbers of days as features, in load_dataset)."""
    types = pd.api.types
    return bool(types.is_bool_dtype(col) or types.is_numeric_dtype(col) or types.is_datetime64_any_dtype(col)
                or types.is_timedelta64_dtype(col))


def _maybe_numeric(col: pd.Series) -> pd.Series:
    present = col.dropna()
    if present.empty:
        return col.astype(float)
    if all(isinstance(v, str) for v in present):
        lowered = {v.lower() for v in present}
        if lowered <= {"true", "false"}:
            return col.map(lambda v: v if not isinstance(v, str) else v.lower() == "true")
    converted = pd.to_numeric(col, errors="coerce")
    parsed = int(converted.notna().sum())
    if parsed == present.shape[0]:
        return converted
    if parsed >= 0.9 * present.shape[0]:
        # Almost all numbers: a few stray cells ('1,5', '-', 'N/A') would otherwise turn
        # the column into hundreds of categories without a word.
        bad = present[pd.to_numeric(present, errors="coerce").isna()]
        examples = sorted({str(v) for v in bad})[:5]
        raise DataError(
            f"column '{col.name}' is numeric except for {bad.shape[0]} cell(s) such as {examples}; "
            "fix those cells, or list them in na_values to read them as missing.", param="na_values"
        )
    return col.astype(object)


def _check_column_names(columns: Sequence[str], where: str) -> None:
    empty = [i + 1 for i, c in enumerate(columns) if c == ""]
    if empty:
        raise DataError(
            f"column(s) {empty} in {where} have an empty name; give every column a header."
        )
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise DataError(
            f"duplicate column name(s) {duplicates} in {where}; rename them so each column "
            "name is unique."
        )


def _decode(raw: bytes, path: Path, encoding: str | None) -> str:
    candidates = [encoding] if encoding else ["utf-8-sig"]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) and not encoding:
        candidates = ["utf-16"]
    for enc in candidates:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError as exc:
            raise DataFileError(
                f"cannot decode '{path}' as {enc} (invalid byte at position {exc.start}). "
                "Re-save the file as UTF-8, or pass its encoding (e.g. encoding='latin-1').",
                param="encoding", fix={"encoding": "latin-1"}
            ) from None
        except LookupError:
            raise DataFileError(
                f"unknown encoding {enc!r}; use a Python codec name such as 'utf-8' or 'latin-1'.",
                param="encoding"
            ) from None
    raise InternalError("unreachable: every candidate encoding returns or raises")  # pragma: no cover


def _sniff_delimiter(lines: Sequence[str]) -> str:
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=_CANDIDATE_DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on quoted or ragged samples; fall back to the candidate
    # present on every line, most often (ragged rows are reported later, by line).
    best, best_count = "", 0
    for delim in _CANDIDATE_DELIMITERS:
        fewest = min(ln.count(delim) for ln in lines)
        if fewest > best_count:
            best, best_count = delim, fewest
    if best:
        return best
    # One column: any delimiter parses it the same way.
    if all(not any(d in ln for d in _CANDIDATE_DELIMITERS) for ln in lines):
        return ","
    raise DataFileError(
        "cannot tell the delimiter: no ',', ';', tab or '|' appears on every line. "
        "Save the file as a regular CSV."
    )


def _read_parquet(path: Path, na_values: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(path.read_bytes()))
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise DataFileError(f"cannot read Parquet file '{path}': {exc}") from None
    if frame.shape[0] == 0:
        raise DataFileError(f"Parquet file '{path}' has no rows.")
    return clean_frame(frame, na_values=na_values)
