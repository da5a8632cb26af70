"""Feature encoding fitted on training rows only.

Numeric columns: median imputation (plus a missing-value indicator where the
training rows have gaps) and standardisation; categorical columns: missing values
become their own category, then one-hot encoding. A category unseen in training
encodes as all zeros; in a column with more than ``MAX_CATEGORIES`` categories the
rare ones (and unseen ones) share one "infrequent" column.

Fitting on the training rows keeps validation and test rows out of every statistic;
note that these statistics *are* computed on the training rows, which the DP-SGD
guarantee does not cover (reported in every audit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .._exceptions import TrainingError

__all__ = ["TabularPreprocessor"]

MISSING_CATEGORY = "<missing>"
#: Rare categories beyond this many per column are pooled, bounding the input width.
MAX_CATEGORIES = 64


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
        """Learn medians, scales and category vocabularies from ``frame``."""
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
        self._transformer.fit(self._prepare(frame))
        names = [str(n) for n in self._transformer.get_feature_names_out()]
        self.feature_names = [n.replace("missingindicator_", "missing_") for n in names]
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` with the fitted statistics (float32 matrix)."""
        if self._transformer is None:
            raise TrainingError("TabularPreprocessor.transform called before fit; call fit first")
        out = self._transformer.transform(self._prepare(frame))
        return np.asarray(out, dtype=np.float32)

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        prepared = frame.copy()
        for c in self.numeric_columns:
            prepared[c] = prepared[c].astype(float)
        for c in self.categorical_columns:
            prepared[c] = prepared[c].astype(object).where(prepared[c].notna(), MISSING_CATEGORY)
            prepared[c] = prepared[c].map(str).astype(object)
        return prepared
