"""Datasets: loading, validation, built-in data and group-stratified splits.

A :class:`Dataset` is a validated table: model-input columns, a target (binary for
classification) and one or more sensitive columns whose combination labels each
row's group (``Female|Black``). Everything that can go wrong with user data is
checked here, once, with a message that names the column and the fix.
"""

from __future__ import annotations

import difflib
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._exceptions import ConfigError, DataError
from .._validation import Interval, Options, SequenceOf, Text, check_param, options_from_keywords
from ..defaults import (
    DEFAULT_MIN_GROUP_ROWS,
    DEFAULT_MISSING_TARGET,
    DEFAULT_SMALL_GROUPS,
    DEFAULT_SPLIT_SEED,
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    MISSING_TARGET_CHOICES,
    SMALL_GROUPS_CHOICES,
)
from ._preprocess import TARGET_LIMIT, check_numbers
from ._readers import DEFAULT_NA_VALUES, DELIMITER_ATTR, clean_frame, read_table

__all__ = [
    "BUILTIN_DATASETS",
    "BuiltinTable",
    "Dataset",
    "LoadOptions",
    "Splits",
    "builtin_table",
    "group_split_counts",
    "load_dataset",
    "make_synthetic",
    "split_dataset",
]

#: Names accepted by :func:`load_dataset` besides paths and frames.
BUILTIN_DATASETS: tuple[str, ...] = ("synthetic", "synthetic-regression", "adult")

Task = Literal["classification", "regression"]
MissingPolicy = Literal["drop", "error"]
SmallGroupPolicy = Literal["error", "merge"]

GROUP_SEPARATOR = "|"
MERGED_GROUP = "other"

ADULT_COLUMNS: tuple[str, ...] = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated table ready for auditing.

    Attributes
    ----------
    name
        Built-in name or file name.
    features
        Model-input columns as read (not yet encoded; encoding is fitted on
        training rows only, see :mod:`audit.data._preprocess`).
    y
        Target: 0/1 floats for classification, real numbers for regression.
    groups
        Group label of each row (several sensitive columns joined with ``|``).
    target, sensitive
        Column names.
    task
        ``"classification"`` or ``"regression"``.
    label_names
        ``(negative, positive)`` original target values, for classification.
    missing_values
        Per feature column, how many cells were missing (handled in preprocessing).
    dropped_rows
        Reason -> number of rows removed while loading.
    notes
        Plain-language decisions taken while loading (e.g. the default positive label).
    """

    name: str
    features: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    target: str
    sensitive: tuple[str, ...]
    task: Task = "classification"
    label_names: tuple[str, str] | None = None
    missing_values: Mapping[str, int] = field(default_factory=dict)
    dropped_rows: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    @property
    def group_labels(self) -> tuple[str, ...]:
        """Sorted group labels."""
        return tuple(str(g) for g in np.unique(self.groups))

    @property
    def positive_label(self) -> str | None:
        """The original target value counted as positive (classification only)."""
        return None if self.label_names is None else self.label_names[1]

    def group_counts(self) -> pd.Series:
        """Rows per group, sorted by label."""
        labels, counts = np.unique(self.groups, return_counts=True)
        return pd.Series(counts, index=pd.Index(labels, name="group"), name="n")

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary: name, rows, target, sensitive columns, groups with counts."""
        return {
            "name": self.name,
            "rows": self.n_rows,
            "task": self.task,
            "target": self.target,
            "positive_label": self.positive_label,
            "sensitive": list(self.sensitive),
            "features": list(self.features.columns),
            "groups": {str(k): int(v) for k, v in self.group_counts().items()},
            "missing_values": dict(self.missing_values),
            "dropped_rows": dict(self.dropped_rows),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class Splits:
    """Row indices of the train/validation/test splits and the groups they use.

    ``groups`` equals the dataset's groups unless small groups were merged into
    ``"other"`` (listed in ``merged``).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    groups: np.ndarray
    merged: tuple[str, ...] = ()

    def counts(self) -> pd.DataFrame:
        """Rows per group (index) and split (columns ``train``, ``val``, ``test``)."""
        return _split_counts(self.groups, {"train": self.train, "val": self.val, "test": self.test})


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """Options of :func:`load_dataset`, validated in one place (see its docstring)."""

    target: str | None = None
    sensitive: str | Sequence[str] | None = None
    positive_label: str | None = None
    task: Task | None = None
    features: Sequence[str] | None = None
    include_sensitive: bool = False
    na_values: Sequence[str] = DEFAULT_NA_VALUES
    encoding: str | None = None
    missing_target: MissingPolicy = DEFAULT_MISSING_TARGET
    path: str | Path | None = None
    n_rows: int | None = None
    seed: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.task is not None:
            check_param("", "task", self.task, Options(("classification", "regression")))
        check_param("", "missing_target", self.missing_target, Options(MISSING_TARGET_CHOICES))
        # Column roles are names: a number (sensitive=0) would fail deep inside the reader.
        # Stored as converted: a generator of names is read once, here, into a tuple.
        object.__setattr__(self, "target", check_param("", "target", self.target, Text(), None,
                                                       note="a column name"))
        object.__setattr__(self, "sensitive", check_param("", "sensitive", self.sensitive, Text(),
                                                          SequenceOf(Text()), None, note="column names"))
        object.__setattr__(self, "features", check_param("", "features", self.features, SequenceOf(Text()),
                                                         None, note="column names"))


def load_dataset(source: str | Path | pd.DataFrame, **options: Any) -> Dataset:
    """Load and validate a dataset for auditing.

    Parameters
    ----------
    source
        A built-in name (``"synthetic"``, ``"synthetic-regression"``, ``"adult"``),
        a path to a CSV/TSV/``.data``/Parquet file, or a pandas DataFrame.
    **options
        The fields of :class:`LoadOptions`:

        target
            Target column. Built-ins know theirs; files and frames need it.
        sensitive
            One or more sensitive columns; several give intersectional groups
            labelled ``"A|B"``.
        positive_label
            Which target value is the positive class. Default: ``1``/``True`` for 0/1 or
            boolean targets, otherwise the less frequent value (stated in ``notes``).
        task
            ``"classification"`` (binary target, default) or ``"regression"``.
        features
            Model-input columns; default: every column except the target and the
            sensitive columns.
        include_sensitive
            Also feed the sensitive columns to the model.
        na_values
            Cell values read as missing (after stripping whitespace).
        encoding
            Text encoding of a file (default UTF-8).
        missing_target
            Rows with a missing target or sensitive value: ``"drop"`` (counted in
            ``dropped_rows``) or ``"error"``.
        path
            For ``"adult"``: the UCI file (``adult.data`` or ``adult.test``, with or
            without a header line).
        n_rows, seed
            Size and seed of the synthetic built-ins.
        name
            Display name (default: built-in name or file name).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        With a message naming the column or value at fault and how to fix it.

    Examples
    --------
    >>> ds = load_dataset("synthetic", n_rows=500)
    >>> ds.group_labels
    ('majority', 'minority')
    >>> ds.task
    'classification'
    """
    opts = options_from_keywords(LoadOptions, "load_dataset", options)
    frame, opts, display = _read_source(source, opts)
    if frame.shape[0] == 0:
        raise DataError(f"dataset '{display}' has no rows.")
    if frame.shape[1] == 1:
        raise DataError(_one_column_message(frame, display, source), param="source")
    columns = list(frame.columns)
    target, sensitive_cols = _roles(columns, opts, display)
    frame, dropped = _drop_missing_roles(frame, target, sensitive_cols, opts)
    notes: list[str] = []
    if dropped:
        notes.append("dropped rows with a missing target/sensitive value: "
                     + ", ".join(f"{k}: {v}" for k, v in dropped.items()))
    if frame.shape[0] == 0:
        raise DataError(f"no rows left in '{display}' after dropping rows with missing values.")
    frame = frame.reset_index(drop=True)
    task = opts.task or "classification"
    y, label_names = _target_values(frame[target], target, task, opts.positive_label, notes)
    groups = _group_labels(frame, sensitive_cols)
    unique_groups = np.unique(groups)
    if unique_groups.shape[0] < 2:
        raise DataError(
            f"sensitive column(s) {list(sensitive_cols)} have only one group "
            f"({str(unique_groups[0])!r}); an audit compares at least two groups. "
            "Choose another sensitive column or add data from other groups."
        )
    feats = _feature_frame(frame, columns, target, sensitive_cols, opts, display, notes)
    missing_values = {str(c): int(n) for c, n in feats.isna().sum().items() if n > 0}
    if missing_values:
        notes.append(
            "missing feature values are imputed (numeric: training median plus a missing "
            "indicator; categorical: their own category): "
            + ", ".join(f"{c}: {n}" for c, n in missing_values.items())
        )
    return Dataset(
        name=display, features=feats, y=y, groups=groups, target=target,
        sensitive=sensitive_cols, task=task, label_names=label_names,
        missing_values=missing_values, dropped_rows=dropped, notes=tuple(notes),
    )


def _read_source(source: str | Path | pd.DataFrame,
                 opts: LoadOptions) -> tuple[pd.DataFrame, LoadOptions, str]:
    """The raw frame, the options with a built-in's own defaults filled in, the display name."""
    if isinstance(source, pd.DataFrame):
        return clean_frame(source, na_values=opts.na_values), opts, opts.name or "dataframe"
    if isinstance(source, str) and source in BUILTIN_DATASETS:
        frame, defaults = _load_builtin(source, path=opts.path, n_rows=opts.n_rows, seed=opts.seed,
                                        na_values=opts.na_values, encoding=opts.encoding)
        filled = replace(
            opts, target=opts.target if opts.target is not None else defaults["target"],
            sensitive=opts.sensitive if opts.sensitive is not None else defaults["sensitive"],
            task=opts.task if opts.task is not None else defaults["task"])
        return frame, filled, opts.name or source
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists() and isinstance(source, str) and "/" not in source and "." not in source:
            raise DataError(
                f"unknown dataset {source!r}: not a built-in ({', '.join(BUILTIN_DATASETS)}) "
                "and no such file. Pass a built-in name or a path to a CSV/Parquet file.",
                param="source"
            )
        return read_table(p, na_values=opts.na_values, encoding=opts.encoding), opts, opts.name or p.name
    raise ConfigError(
        f"source must be a built-in name, a path or a pandas DataFrame, not {type(source).__name__}"
    )


def _one_column_message(frame: pd.DataFrame, display: str, source: object) -> str:
    """Why a one-column table cannot be audited, and the likeliest cause: a wrong separator."""
    name = str(frame.columns[0])
    said = (f"'{display}' has only one column ({name!r}); an audit needs a target, a sensitive "
            "and at least one feature column.")
    inside = next((d for d in _DELIMITER_NAMES if d in name), None)
    spaced = " It looks like names separated by spaces." if len(name.split()) > 1 else ""
    if isinstance(source, pd.DataFrame):
        sep = repr(inside) if inside else "';'"
        return (f"{said}{spaced} If it was read from a file, read it with that file's separator "
                f"(e.g. pandas.read_csv(path, sep={sep})).")
    delimiter = frame.attrs.get(DELIMITER_ATTR)
    if delimiter is None:  # Parquet: columns are stored, not parsed
        return f"{said} Add the other columns to the file."
    if inside == delimiter:
        return (f"{said} It was read as {_DELIMITER_NAMES[delimiter]}-separated, but its lines "
                "are quoted as one field each; remove the quotes that wrap each line.")
    return (f"{said} No separator fairpriv recognises (comma, semicolon, tab or '|') appears on "
            f"every line.{spaced} If the file has more columns, save it with one of those between "
            "the fields (e.g. as CSV).")


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "'|'"}


def _roles(columns: list[Any], opts: LoadOptions, display: str) -> tuple[str, tuple[str, ...]]:
    """The target and sensitive columns, checked against the frame's columns."""
    target = opts.target
    if target is None:
        raise DataError(
            f"no target column given for '{display}'; pass target= with one of its columns: "
            f"{_list(columns)}", param="target"
        )
    _require_columns([target], columns, "target")
    sensitive_cols = _as_tuple(opts.sensitive)
    if not sensitive_cols:
        # load_dataset refuses one-column tables first, so there is always another column.
        raise DataError(
            f"no sensitive column given for '{display}'; pass sensitive= with one or more of "
            f"its columns, e.g. one of {_list(c for c in columns if c != target)}", param="sensitive"
        )
    _require_columns(sensitive_cols, columns, "sensitive")
    if target in sensitive_cols:
        raise DataError(f"column '{target}' cannot be both the target and a sensitive column.",
                        param="sensitive")
    if len(set(sensitive_cols)) != len(sensitive_cols):
        raise DataError(f"sensitive columns repeat a name: {list(sensitive_cols)}", param="sensitive")
    return target, sensitive_cols


def _drop_missing_roles(frame: pd.DataFrame, target: str, sensitive_cols: tuple[str, ...],
                        opts: LoadOptions) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with a missing target or sensitive value: dropped (counted) or an error."""
    dropped: dict[str, int] = {}
    for col in (target, *sensitive_cols):
        missing = frame[col].isna().to_numpy()
        if missing.any():
            role = "target" if col == target else "sensitive"
            rows = (np.flatnonzero(missing)[:5] + 1).tolist()
            if opts.missing_target == "error":
                raise DataError(
                    f"{role} column '{col}' has {int(missing.sum())} missing value(s) "
                    f"(first at data rows {rows}); fill them, or drop those rows "
                    "(missing_target='drop').", param="missing_target", fix={"missing_target": "drop"}
                )
            dropped[f"missing {role} '{col}'"] = int(missing.sum())
            frame = frame.loc[~missing]
    return frame, dropped


def _target_values(column: pd.Series, target: str, task: str, positive_label: str | None,
                   notes: list[str]) -> tuple[np.ndarray, tuple[str, str] | None]:
    if task == "classification":
        y, label_names, label_note = _binary_target(column, target, positive_label)
        notes.append(label_note)
        return y, label_names
    if positive_label is not None:
        raise ConfigError("positive_label applies to classification only", param="positive_label")
    if not pd.api.types.is_numeric_dtype(column):
        raise DataError(f"regression target '{target}' is not numeric (e.g. {column.iloc[0]!r}).",
                        param="target")
    check_numbers(column.to_frame(), role="target", limit=TARGET_LIMIT, param="target",
                  why="models train on squared errors in 32-bit floats, which cannot hold the "
                      f"square of a number beyond ±{TARGET_LIMIT:.3g}",
                  fix="Remove or cap those values, or rescale the target (e.g. in thousands).")
    return column.to_numpy(dtype=np.float64), None


def _feature_frame(frame: pd.DataFrame, columns: list[Any], target: str, sensitive_cols: tuple[str, ...],
                   opts: LoadOptions, display: str, notes: list[str]) -> pd.DataFrame:
    """The model-input columns: chosen, empty ones dropped (noted), infinite or too large
    numbers refused (:func:`~audit.data._preprocess.check_numbers`)."""
    if opts.features is None:
        excluded = {target} if opts.include_sensitive else {target, *sensitive_cols}
        feature_cols = [c for c in columns if c not in excluded]
    else:
        feature_cols = list(opts.features)
        _require_columns(feature_cols, columns, "feature")
        if target in feature_cols:
            raise DataError(f"the target '{target}' cannot also be a feature.")
        if opts.include_sensitive:
            feature_cols += [c for c in sensitive_cols if c not in feature_cols]
    empty_cols = [c for c in feature_cols if frame[c].isna().all()]
    if empty_cols:
        notes.append(f"ignored feature column(s) with no values: {empty_cols}")
        feature_cols = [c for c in feature_cols if c not in empty_cols]
    if not feature_cols:
        raise DataError(
            f"'{display}' has no feature columns besides the target and sensitive columns; "
            "the model needs at least one input."
        )
    feats = _dates_as_days(frame[feature_cols].copy(), notes)
    check_numbers(feats)
    return feats


_EPOCH = "1970-01-01"


def _dates_as_days(feats: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Date and duration feature columns as numbers of days (noted), so that the encoder
    standardises them like any number instead of making every date a category."""
    dates = [c for c in feats.columns if pd.api.types.is_datetime64_any_dtype(feats[c])]
    durations = [c for c in feats.columns if pd.api.types.is_timedelta64_dtype(feats[c])]
    seconds_a_day = 86400.0
    for c in dates:
        values = feats[c]
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)  # days since the UTC epoch
        feats[c] = (values - pd.Timestamp(_EPOCH)).dt.total_seconds() / seconds_a_day
    for c in durations:
        feats[c] = feats[c].dt.total_seconds() / seconds_a_day
    if dates:
        notes.append(f"date feature column(s) {dates} are read as days since {_EPOCH}")
    if durations:
        notes.append(f"duration feature column(s) {durations} are read as numbers of days")
    return feats



def split_dataset(
    dataset: Dataset,
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
    small_groups: SmallGroupPolicy = DEFAULT_SMALL_GROUPS,  # type: ignore[assignment]
) -> Splits:
    """Split rows into train/validation/test, stratified by group x label.

    Within each stratum (group and class; group alone for regression) the rows are
    shuffled with ``seed`` and cut in the given fractions, so every group keeps its
    share and base rate in every split.

    Parameters
    ----------
    min_group_rows
        Each group needs at least this many rows in every split.
    small_groups
        What to do with a group below the minimum: ``"error"`` (default) or
        ``"merge"`` it into a group called ``"other"`` (``"other (merged)"`` where the
        data has a group of that name in any case, such as COMPAS's ``"Other"``).

    Raises
    ------
    DataError
        A group is too small (message names it and its counts per split).
    """
    _check_fractions(val_fraction, test_fraction)
    check_param("", "small_groups", small_groups, Options(SMALL_GROUPS_CHOICES))
    min_group_rows = check_param("", "min_group_rows", min_group_rows, Interval(int, 1, None))
    idx = _split_rows(dataset, seed, val_fraction, test_fraction)
    groups = dataset.groups.copy()
    counts = _split_counts(groups, idx)
    small = counts[(counts < min_group_rows).any(axis=1)]
    merged: tuple[str, ...] = ()
    if not small.empty:
        detail = "; ".join(
            f"'{g}': train {r.train}, val {r.val}, test {r.test}" for g, r in small.iterrows()
        )
        if small_groups == "error":
            raise DataError(
                f"group(s) with fewer than {min_group_rows} rows in a split: {detail}. "
                "Merge them (small_groups='merge'), lower min_group_rows, or choose coarser "
                "sensitive columns.", param="small_groups", fix={"small_groups": "merge"}
            )
        merged = tuple(str(g) for g in small.index)
        # Never pour small groups into a real group that happens to be called "other".
        label = MERGED_GROUP
        taken = {str(g).lower() for g in counts.index if g not in merged}
        if label in taken:  # 'Other' beside 'other' would read as one group
            label = f"{MERGED_GROUP} (merged)"
        while label.lower() in taken:
            label = f"{label}*"
        groups = np.where(np.isin(groups, merged), label, groups)
        counts = _split_counts(groups, idx)
        if label in counts.index and (counts.loc[label] < min_group_rows).any():
            c = counts.loc[label]
            workable = _largest_workable_minimum(_split_counts(dataset.groups, idx), min_group_rows)
            lower = (f"Lower min_group_rows to {workable} (the largest minimum that merging "
                     "can meet)" if workable else "Lower min_group_rows")
            raise DataError(
                f"even after merging small groups into '{label}' it has too few rows "
                f"(train {c['train']}, val {c['val']}, test {c['test']}; minimum "
                f"{min_group_rows}). {lower} or choose coarser sensitive columns.",
                param="min_group_rows", fix={"min_group_rows": workable} if workable else None
            )
        if counts.shape[0] < 2:
            raise DataError(
                "after merging small groups only one group is left; an audit needs at least two."
            )
    return Splits(train=idx["train"], val=idx["val"], test=idx["test"], groups=groups,
                  merged=merged)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in (0, 1) "
            "and sum to less than 1", param="val_fraction"
        )


def _split_rows(dataset: Dataset, seed: int, val_fraction: float,
                test_fraction: float) -> dict[str, np.ndarray]:
    """Sorted row indices per split, cut within each group x label stratum."""
    rng = np.random.default_rng(seed)
    if dataset.task == "classification":
        strata = np.char.add(dataset.groups.astype(str), np.where(dataset.y > 0.5, "#1", "#0"))
    else:
        strata = dataset.groups.astype(str)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for stratum in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == stratum))
        n_test = int(round(rows.shape[0] * test_fraction))
        n_val = int(round(rows.shape[0] * val_fraction))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test:n_test + n_val])
        parts["train"].append(rows[n_test + n_val:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def group_split_counts(
    dataset: Dataset,
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
) -> pd.DataFrame:
    """Rows per group in each split, before any merging, and which groups are too small.

    The same split :func:`split_dataset` makes with these options, so a front end can
    say which groups an audit would refuse (or merge) before anything is trained.

    Returns
    -------
    DataFrame
        Index ``group``; columns ``train``, ``val``, ``test`` (row counts) and
        ``too_small`` (True where a split has fewer than ``min_group_rows`` rows).

    Examples
    --------
    >>> from audit import group_split_counts, load_dataset
    >>> ds = load_dataset("synthetic", n_rows=1000)
    >>> group_split_counts(ds)["too_small"].any()
    np.False_
    """
    _check_fractions(val_fraction, test_fraction)
    min_group_rows = check_param("", "min_group_rows", min_group_rows, Interval(int, 1, None))
    counts = _split_counts(dataset.groups, _split_rows(dataset, seed, val_fraction, test_fraction))
    return counts.assign(too_small=(counts < min_group_rows).any(axis=1))


@dataclass(frozen=True)
class BuiltinTable:
    """A built-in dataset as a plain table, with the columns it is audited on by default."""

    frame: pd.DataFrame
    target: str
    sensitive: tuple[str, ...]


def builtin_table(name: str, *, path: str | Path | None = None, n_rows: int | None = None,
                  seed: int = 0) -> BuiltinTable:
    """The raw table of a built-in dataset and its default target and sensitive columns.

    For front ends that show the table and let the user choose columns; the audit
    itself takes the name directly (``load_dataset(name)``).

    Examples
    --------
    >>> from audit import builtin_table
    >>> table = builtin_table("synthetic", n_rows=600)
    >>> table.target, table.sensitive
    ('y', ('group',))
    """
    if name not in BUILTIN_DATASETS:
        raise DataError(f"unknown built-in dataset {name!r}; valid: {', '.join(BUILTIN_DATASETS)}",
                        param="source")
    frame, defaults = _load_builtin(name, path=path, n_rows=n_rows, seed=seed,
                                    na_values=DEFAULT_NA_VALUES, encoding=None)
    return BuiltinTable(frame=frame, target=str(defaults["target"]),
                        sensitive=tuple(defaults["sensitive"]))


def make_synthetic(
    *,
    n_rows: int = 20_000,
    minority_share: float = 0.2,
    seed: int = 0,
    task: Task = "classification",
) -> pd.DataFrame:
    """Generate the built-in synthetic data (two groups, unequal feature variance).

    The classification model (documented so results can be reasoned about):

    * ``group`` is ``"minority"`` with probability ``minority_share``, else ``"majority"``.
    * Three latent signals, N(0, 1) unless said otherwise: ``t`` for everyone, seen
      through six redundant noisy proxies ``c1``..``c6`` (``t + N(0, 0.3^2)`` each);
      ``s1``, the majority's own signal (std 0.1 in the minority), seen through six
      proxies ``a1``..``a6`` in the same way; ``s2``, the minority's own signal (std
      0.1 in the majority), seen through the single column ``b``.
    * ``noise``: N(0, 1) for everyone; ``region``: categorical (4 values) with a small
      effect on the outcome.
    * ``y = 1[t + s1 + s2 + 0.1 * region_effect + N(0, 0.3^2) > 0]``.

    ``synthetic-regression`` follows DESIGN section 2's two-feature linear model
    instead: the majority varies along ``x1`` (std 1.0; ``x2`` std 0.1), the minority
    along ``x2`` (std 1.0; ``x1`` std 0.1); ``noise`` is N(0, 1) for everyone, and
    ``y = x1 + 2 x2 + N(0, 0.2^2)``. The features matter unequally, so one uniform
    rate shrinks the minority's (larger) signal more in absolute terms: at p=0.3 the
    exact dropout solution has test MSE about 0.13 (majority) vs 0.40 (minority).
    Rates per group move the shrinkage between ``x1`` and ``x2`` and can equalise it.

    Why uniform dropout creates a gap in ``synthetic``: input dropout acts as a
    data-dependent ridge penalty, ``p/(1-p) sum_i q_i (1 - q_i) x_ij^2`` on weight j
    (DESIGN section 2), that punishes reliance on any single input. The majority's own
    signal survives it through six redundant proxies; the minority's lives in one
    column, ``b``, whose weight dropout shrinks against the shared signal ``t``, so the
    minority's error grows with the rate while the baseline has almost no gap
    (measured with the default MLP, 20,000 rows: error about 0.075 for both groups
    without dropout; at p = 0.5 the majority stays at 0.075 and the minority rises to
    0.13). And because ``b`` varies only in the minority, its penalty comes from the
    minority's rows alone: rates per group under the same budget (minority 0, majority
    0.625 at a budget of 0.5) remove it, and both groups are back at about 0.075.
    """
    if not 0 < minority_share < 1:
        raise ConfigError(f"minority_share must be in (0, 1), not {minority_share}")
    if n_rows < 10:
        raise ConfigError(f"n_rows must be at least 10, not {n_rows}")
    rng = np.random.default_rng(seed)
    minority = rng.random(n_rows) < minority_share
    if task == "regression":
        return _synthetic_regression(rng, minority)
    shared = rng.normal(0.0, 1.0, n_rows)
    s1 = rng.normal(0.0, np.where(minority, 0.1, 1.0))
    s2 = rng.normal(0.0, np.where(minority, 1.0, 0.1))
    columns: dict[str, np.ndarray] = {f"c{j}": shared + rng.normal(0.0, 0.3, n_rows) for j in range(1, 7)}
    columns.update({f"a{j}": s1 + rng.normal(0.0, 0.3, n_rows) for j in range(1, 7)})
    columns["b"] = s2
    columns["noise"] = rng.normal(0.0, 1.0, n_rows)
    regions = np.array(["north", "south", "east", "west"])
    region_idx = rng.integers(0, 4, n_rows)
    region_effect = np.array([-1.0, -0.3, 0.3, 1.0])[region_idx]
    latent = shared + s1 + s2 + 0.1 * region_effect + rng.normal(0.0, 0.3, n_rows)
    frame = pd.DataFrame(columns)
    frame["region"] = regions[region_idx]
    frame["group"] = np.where(minority, "minority", "majority")
    frame["y"] = (latent > 0).astype(int)
    return frame


def _synthetic_regression(rng: np.random.Generator, minority: np.ndarray) -> pd.DataFrame:
    n_rows = minority.shape[0]
    x1 = rng.normal(0.0, np.where(minority, 0.1, 1.0))
    x2 = rng.normal(0.0, np.where(minority, 1.0, 0.1))
    noise = rng.normal(0.0, 1.0, n_rows)
    y = x1 + 2.0 * x2 + rng.normal(0.0, 0.2, n_rows)
    return pd.DataFrame({
        "x1": x1, "x2": x2, "noise": noise,
        "group": np.where(minority, "minority", "majority"), "y": y,
    })


# --------------------------------------------------------------------------- helpers


def _load_builtin(
    source: str, *, path: str | Path | None, n_rows: int | None, seed: int,
    na_values: Sequence[str], encoding: str | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    if source in ("synthetic", "synthetic-regression"):
        task: Task = "regression" if source == "synthetic-regression" else "classification"
        frame = make_synthetic(n_rows=n_rows or 20_000, seed=seed, task=task)
        return frame, {"target": "y", "sensitive": ("group",), "task": task}
    # adult
    if path is not None:
        frame = _read_adult_file(Path(path), na_values=na_values, encoding=encoding)
    else:
        frame = _fetch_adult_openml()
    return frame, {"target": str(frame.columns[-1]), "sensitive": ("sex",), "task": "classification"}


def _read_adult_file(path: Path, *, na_values: Sequence[str], encoding: str | None) -> pd.DataFrame:
    """Read a UCI Adult file, with or without a header line."""
    if not path.exists():
        raise DataError(f"Adult file not found: '{path}'. Pass the path of adult.data or adult.test.",
                        param="path")
    with path.open("rb") as fh:
        first = b""
        for line in fh:
            if line.strip() and not line.lstrip().startswith(b"|"):
                first = line
                break
    has_header = first.split(b",")[0].strip().lower() == b"age"
    return read_table(
        path, na_values=na_values, encoding=encoding, header=has_header,
        names=None if has_header else ADULT_COLUMNS, skip_prefix="|",
    )


def _fetch_adult_openml() -> pd.DataFrame:
    hint = (
        "Adult is not bundled with fairpriv; pass the UCI file adult.data or adult.test as "
        "path= (or load it as a table of your own with target= and sensitive=)."
    )
    if not _online("www.openml.org"):
        raise DataError(f"cannot reach OpenML (offline?). {hint}", param="path")
    try:
        from fairlearn.datasets import fetch_adult

        bunch = fetch_adult(as_frame=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"downloading Adult from OpenML failed ({exc}). {hint}", param="path") from None
    frame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return clean_frame(frame)


def _online(host: str, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _binary_target(
    col: pd.Series, name: str, positive_label: str | None
) -> tuple[np.ndarray, tuple[str, str], str]:
    values = col.map(_normalise_label)
    uniques = pd.unique(values)
    if len(uniques) != 2:
        shown = ", ".join(repr(str(v)) for v in list(uniques)[:6])
        more = "" if len(uniques) <= 6 else f", ... ({len(uniques)} in all)"
        many = len(uniques) > 2
        raise DataError(
            f"target column '{name}' has {len(uniques)} distinct value(s) ({shown}{more}); "
            "a binary classification target needs exactly two. Map it to two classes first"
            + (" or pass task='regression'." if many else "."),
            # One value: the column is at fault; several: perhaps the task is.
            param="task" if many else "target", fix={"task": "regression"} if many else None,
        )
    labels = sorted(uniques, key=str)
    if positive_label is not None:
        # Compare as text: the CLI passes '1' or 'True' for a numeric or boolean target.
        wanted = str(_normalise_label(positive_label)).lower()
        matches = [v for v in labels if str(v).lower() == wanted]
        if not matches:
            raise DataError(
                f"positive label {positive_label!r} is not a value of target '{name}'; "
                f"its values are {[str(v) for v in labels]}.", param="positive_label"
            )
        pos = matches[0]
        how = "as requested"
    elif set(labels) in ({0, 1}, {"0", "1"}) or all(isinstance(v, (bool, np.bool_)) for v in labels):
        pos = labels[1]
        how = "default for a 0/1 or boolean target"
    else:
        counts = values.value_counts()
        pos = min(labels, key=lambda v: (counts[v], -labels.index(v)))
        how = "default: the less frequent value; set positive_label to change"
    neg = next(v for v in labels if v != pos)
    y = (values == pos).to_numpy(dtype=np.float64)
    note = f"positive class of '{name}' is {str(pos)!r} ({how})"
    return y, (str(neg), str(pos)), note


def _normalise_label(value: Any) -> Any:
    if isinstance(value, str):
        # adult.test writes '<=50K.' where adult.data writes '<=50K'.
        return value.strip().rstrip(".")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value


def _group_labels(frame: pd.DataFrame, sensitive: Sequence[str]) -> np.ndarray:
    parts = [frame[c].map(_format_group_value).astype(str).to_numpy() for c in sensitive]
    if len(parts) > 1:
        for col, values in zip(sensitive, parts, strict=True):
            clash = sorted({v for v in values if GROUP_SEPARATOR in v})
            if clash:
                raise DataError(
                    f"sensitive column '{col}' has value(s) containing '{GROUP_SEPARATOR}' "
                    f"({clash[:3]}), which joins intersectional group labels; replace "
                    f"'{GROUP_SEPARATOR}' in those values first."
                )
    labels = parts[0].astype(str)
    for p in parts[1:]:
        labels = np.char.add(np.char.add(labels, GROUP_SEPARATOR), p.astype(str))
    return np.asarray(labels).astype(str)


def _format_group_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _require_columns(wanted: Sequence[str], columns: Sequence[str], role: str) -> None:
    for col in wanted:
        if col not in columns:
            by_lower = {str(c).lower(): str(c) for c in columns}
            close = difflib.get_close_matches(str(col).lower(), list(by_lower), n=1)
            hint = f" Did you mean '{by_lower[close[0]]}'?" if close else ""
            raise DataError(
                f"{role} column '{col}' not found.{hint} Available columns: {_list(columns)}",
                param={"feature": "features"}.get(role, role),
            )


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _list(items: Any) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:30]) + (f", ... ({len(items)} in all)" if len(items) > 30 else "")


def _largest_workable_minimum(counts: pd.DataFrame, below: int) -> int | None:
    """The largest minimum under ``below`` that merging small groups can meet, if any.

    ``counts`` are rows per group and split before merging; a minimum works when the
    groups under it, merged, reach it in every split and at least two groups remain.
    """
    for minimum in range(below - 1, 0, -1):
        small = (counts < minimum).any(axis=1)
        if small.any() and (counts[small].sum() < minimum).any():
            continue
        if (~small).sum() + (1 if small.any() else 0) >= 2:
            return minimum
    return None


def _split_counts(groups: np.ndarray, idx: Mapping[str, np.ndarray]) -> pd.DataFrame:
    labels = np.unique(groups)
    data = {k: [int(np.sum(groups[v] == g)) for g in labels] for k, v in idx.items()}
    return pd.DataFrame(data, index=pd.Index(labels, name="group"))
