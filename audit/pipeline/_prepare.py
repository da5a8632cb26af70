"""Prepare: load, validate, split (by group x label) and encode the data of an audit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import ConfigError
from ..data._datasets import Dataset, Splits, load_dataset, split_dataset
from ..data._encoded import EncodedSplit
from ..data._preprocess import TabularPreprocessor
from ..training._trainer import TrainingRows
from ._config import AuditConfig

__all__ = ["EncodedSplit", "PreparedData", "prepare"]


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Everything the later stages need from the data, encoded once.

    ``train_rows`` is the one :class:`~audit.TrainingRows` object that every model
    trained on the training split shares, so that an executor can batch them.
    """

    dataset: Dataset
    splits: Splits
    preprocessor: TabularPreprocessor
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    group_labels: tuple[str, ...]
    train_rows: TrainingRows

    @property
    def n_train(self) -> int:
        return len(self.train)


def prepare(data: Dataset | str | Path | pd.DataFrame, config: AuditConfig,
            load_options: dict[str, Any]) -> PreparedData:
    """Load (unless ``data`` is a :class:`Dataset`), split and encode on training rows."""
    if isinstance(data, Dataset):
        if load_options:
            raise ConfigError(
                f"load options {sorted(load_options)} apply only when data is not already a Dataset")
        dataset = data
    else:
        dataset = load_dataset(data, **load_options)
    if dataset.task != "classification":
        raise ConfigError(
            f"run_audit needs a binary classification target; '{dataset.name}' is a "
            "regression dataset. Use a dataset with a two-valued target."
        )
    splits = split_dataset(
        dataset, seed=config.split_seed, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, min_group_rows=config.min_group_rows,
        small_groups=config.small_groups,  # type: ignore[arg-type]
    )
    pre = TabularPreprocessor().fit(dataset.features.iloc[splits.train])

    def encode(rows: np.ndarray) -> EncodedSplit:
        return EncodedSplit(pre.transform(dataset.features.iloc[rows]), dataset.y[rows], splits.groups[rows])

    train = encode(splits.train)
    return PreparedData(
        dataset=dataset, splits=splits, preprocessor=pre, train=train, val=encode(splits.val),
        test=encode(splits.test), group_labels=tuple(str(g) for g in np.unique(splits.groups)),
        train_rows=TrainingRows(train.X, train.y, name="train", feature_names=tuple(pre.feature_names)),
    )
