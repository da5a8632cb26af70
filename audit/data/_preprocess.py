"""Feature encoding fitted on training rows only.

Numeric columns: median imputation (plus a missing-value indicator where the
training rows have gaps) and standardisation; categorical columns: missing values
become their own category, then one-hot encoding. A category unseen in training
encodes as all zeros; in a column with more than ``MAX_CATEGORIES`` categories the
rare ones (and unseen ones) share one "infrequent" column.

Fitting on the training rows keeps validation and test rows out of every statistic;
note that these statistics *are* computed on the training rows, which the DP-SGD
guarantee does not cover (reported in every audit).

Numbers the encoder cannot take: infinite values, and values beyond ``FEATURE_LIMIT``
(the range of the 32-bit floats models compute in, about 3.4e38). Standardising
anything within it is safe (its squares stay far inside the 64-bit range the scaler
works in; beyond about 1e154 they overflow and the scaler returns NaN), so merely large
values are accepted. :func:`check_numbers` refuses the others with a message naming the
column, the values and their rows; :func:`~audit.load_dataset` calls it on the feature
columns, and the encoder again on whatever it is given.

A value within that range can still lie absurdly far from the training rows: a test
row of 1e30 in a column whose training rows are all 0 to 100, or a value 1e20 away from
the constant of a column constant on the training rows (scaled by 1). Standardised, it
would reach the model beyond ``STANDARDISED_LIMIT`` (about 1.8e19, the square root of
float32's range), where one product with a weight and a sum over a layer can already
overflow to infinity, and the model's predictions would be NaN.
:meth:`TabularPreprocessor.transform` refuses such values naming the column, the value,
its row and the training rows' range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .._exceptions import DataError, InternalError, TrainingError

__all__ = ["FEATURE_LIMIT", "STANDARDISED_LIMIT", "TARGET_LIMIT", "TabularPreprocessor", "check_numbers"]

MISSING_CATEGORY = "<missing>"
#: Rare categories beyond this many per column are pooled, bounding the input width.
MAX_CATEGORIES = 64
#: Largest magnitude of a numeric feature: the range of float32, which models compute in.
FEATURE_LIMIT = float(np.finfo(np.float32).max)
#: Largest magnitude of a regression target: its squared errors are computed in float32.
TARGET_LIMIT = float(np.sqrt(np.finfo(np.float32).max))
#: Largest magnitude of a standardised feature: a product of two such numbers stays in float32.
STANDARDISED_LIMIT = float(np.sqrt(np.finfo(np.float32).max))
_SHOWN = 5


_FEATURE_WHY = "models compute in 32-bit floats, which hold numbers up to about ±3.4e+38"
_FEATURE_FIX = ("Remove or cap those values, or empty those cells (missing feature values are "
                "imputed), or leave the column(s) out of features=.")


def check_numbers(frame: pd.DataFrame, columns: Sequence[str] | None = None, *,
                  role: str = "feature", limit: float = FEATURE_LIMIT, param: str | None = "features",
                  rows: np.ndarray | None = None, why: str = _FEATURE_WHY,
                  fix: str = _FEATURE_FIX) -> None:
    """Raise a :class:`DataError` if a numeric column holds an infinite value or one beyond ``limit``.

    The message names every such column with its count, first values and their rows
    (``rows``: the row number of each row, by default 1, 2, ...), then ``why`` (if a
    value is beyond the limit) and ``fix``. Missing values (NaN) are not checked: they
    are imputed or dropped elsewhere.
    """
    faults = []
    beyond = False
    for col in frame.columns if columns is None else columns:
        series = frame[col]
        if (not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
                or pd.api.types.is_integer_dtype(series)):
            continue  # integers are finite and within float32's range
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (np.abs(values) > limit)
        if not bad.any():
            continue
        where = np.flatnonzero(bad)
        numbers = rows if rows is not None else np.arange(1, values.shape[0] + 1)
        n_inf = int(np.isinf(values[where]).sum())
        kinds = [f"{n_inf} infinite value(s)"] if n_inf else []
        if where.shape[0] > n_inf:
            beyond = True
            kinds.append(f"{where.shape[0] - n_inf} value(s) beyond ±{limit:.3g}")
        shown = ", ".join(f"{values[i]:g}" for i in where[:_SHOWN])
        faults.append(f"{role} column '{col}' has {' and '.join(kinds)} (first at data rows "
                      f"{[int(numbers[i]) for i in where[:_SHOWN]]}: {shown})")
    if faults:
        reason = f"; {why}" if beyond else ""
        raise DataError(f"{'; '.join(faults)}{reason}. {fix}", param=param)


class TabularPreprocessor:
    """Encode a feature frame to a float matrix; fit on training rows only.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [20.0, 30.0, None], "job": ["a", "b", None]})
    >>> pre = TabularPreprocessor().fit(frame)
    >>> pre.transform(frame).shape
    (3, 5)
    >>> pre.feature_names[:2]
    ['age', 'missing_age']
    """

    def __init__(self) -> None:
        self._transformer: ColumnTransformer | None = None
        self.numeric_columns: list[str] = []
        self.categorical_columns: list[str] = []
        self.feature_names: list[str] = []

    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        """Learn medians, scales and category vocabularies from ``frame``.

        Raises :class:`~audit.DataError` if a numeric column holds an infinite value or
        one beyond :data:`FEATURE_LIMIT` (see :func:`check_numbers`).
        """
        self.numeric_columns = [
            c for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
        ]
        self.categorical_columns = [c for c in frame.columns if c not in self.numeric_columns]
        parts = []
        if self.numeric_columns:
            parts.append((
                "numeric",
                Pipeline([
                    ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                             keep_empty_features=True)),
                    ("scale", StandardScaler()),
                ]),
                self.numeric_columns,
            ))
        if self.categorical_columns:
            parts.append((
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
                              sparse_output=False),
                self.categorical_columns,
            ))
        self._transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
        try:
            self._transformer.fit(self._prepare(frame))
            names = [str(n) for n in self._transformer.get_feature_names_out()]
        except ValueError as exc:
            if "are not unique" not in str(exc):
                raise
            raise self._name_clash(str(exc)) from None
        self.feature_names = [n.replace("missingindicator_", "missing_") for n in names]
        return self

    def feature_sources(self) -> list[str]:
        """The feature (input column) each encoded column comes from, in encoded order.

        A numeric feature's value and missing-value indicator, and every one-hot column of
        a text feature, name that feature: when a feature goes missing, all of them do.

        Examples
        --------
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"age": [20.0, 30.0, None], "job": ["a", "b", None]})
        >>> TabularPreprocessor().fit(frame).feature_sources()
        ['age', 'age', 'job', 'job', 'job']
        """
        if self._transformer is None:
            raise InternalError("the preprocessor is not fitted")
        sources: list[str] = []
        for name, transformer, columns in self._transformer.transformers_:
            columns = [str(c) for c in columns]
            if name == "numeric":
                sources += columns
                indicator = transformer.named_steps["impute"].indicator_
                if indicator is not None:
                    sources += [columns[i] for i in indicator.features_]
            elif name == "categorical":
                # One column per frequent category, plus one shared by the infrequent ones.
                infrequent = getattr(transformer, "infrequent_categories_", None) or [None] * len(columns)
                for column, categories, rare in zip(columns, transformer.categories_, infrequent,
                                                    strict=True):
                    rare_count = 0 if rare is None else len(rare)
                    sources += [column] * (len(categories) - rare_count + (rare_count > 0))
        if len(sources) != len(self.feature_names):
            raise InternalError(f"{len(sources)} feature sources for {len(self.feature_names)} "
                                "encoded columns")
        return sources

    def _name_clash(self, message: str) -> DataError:
        """Which columns encode to the same feature name (a text column 'color' with the value
        'red' and a column named 'color_red'), from scikit-learn's message."""
        listed = message.split("names: ", 1)[-1].split(" are not unique", 1)[0]
        clashes = []
        for name in re.findall(r"'((?:[^'\\]|\\.)*)'", listed):
            sources = [f"column '{c}'" for c in self.numeric_columns if str(c) == name]
            sources += [f"the value '{name[len(str(c)) + 1:]}' of text column '{c}'"
                        for c in self.categorical_columns if name.startswith(f"{c}_")]
            clashes.append(f"'{name}' ({' and '.join(sources) or 'two columns'})")
        return DataError(
            f"two features would both be encoded as {', '.join(clashes)}: a text column's values "
            "become columns named <column>_<value>. Rename one of the columns.", param="features")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` with the fitted statistics (float32 matrix).

        Raises :class:`~audit.DataError` naming the column, value and row if a value
        standardises beyond :data:`STANDARDISED_LIMIT` (see the module docstring).
        """
        if self._transformer is None:
            raise TrainingError("TabularPreprocessor.transform called before fit; call fit first")
        prepared = self._prepare(frame)
        out = np.asarray(self._transformer.transform(prepared), dtype=np.float64)
        self._check_standardised(out, prepared)
        return out.astype(np.float32)

    def _check_standardised(self, encoded: np.ndarray, prepared: pd.DataFrame) -> None:
        """Refuse values that standardise beyond :data:`STANDARDISED_LIMIT` (in float64,
        before the cast to float32 could turn them into infinities)."""
        faults, rows = [], _row_numbers(prepared)
        # The numeric columns' scaled values come first, in their order (then the
        # missing-value indicators, scaled too but only ever 0 or 1 before, then one-hots).
        for j, name in enumerate(self.numeric_columns):
            bad = np.flatnonzero(~(np.abs(encoded[:, j]) <= STANDARDISED_LIMIT))
            if bad.shape[0] == 0:
                continue
            mean, scale = self._train_location(name)
            values = prepared[name].to_numpy(dtype=np.float64, na_value=np.nan)
            shown = ", ".join(f"{values[i]:g}" for i in bad[:_SHOWN])
            faults.append(
                f"feature column '{name}' has {bad.shape[0]} value(s) more than "
                f"{STANDARDISED_LIMIT:.3g} standard deviations from its training rows' mean "
                f"(first at data rows {[int(rows[i]) for i in bad[:_SHOWN]]}: {shown}; the training "
                f"rows have mean {mean:.4g} and standard deviation {scale:.4g})")
        if faults:
            raise DataError(
                f"{'; '.join(faults)}. Standardised, such values overflow the 32-bit floats models "
                f"compute in and the predictions become NaN. {_FEATURE_FIX}", param="features")

    def _train_location(self, column: str) -> tuple[float, float]:
        """The training rows' mean and standard deviation of numeric ``column``."""
        assert self._transformer is not None
        scaler = self._transformer.named_transformers_["numeric"].named_steps["scale"]
        j = self.numeric_columns.index(column)
        std = float(np.sqrt(scaler.var_[j])) if scaler.var_ is not None else float("nan")
        return float(scaler.mean_[j]), std

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        prepared = frame.copy()
        for c in self.numeric_columns:
            prepared[c] = prepared[c].astype(float)
        check_numbers(prepared, self.numeric_columns, rows=_row_numbers(frame))
        for c in self.categorical_columns:
            prepared[c] = prepared[c].astype(object).where(prepared[c].notna(), MISSING_CATEGORY)
            prepared[c] = prepared[c].map(str).astype(object)
        return prepared


def _row_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Data row numbers of ``frame``'s rows as its index labels count them (load_dataset's
    frames: label + 1), else 1, 2, ..."""
    index = frame.index.to_numpy()
    return index + 1 if np.issubdtype(index.dtype, np.integer) else np.arange(1, len(frame) + 1)
