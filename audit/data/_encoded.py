"""Encoded rows of one split, as every stage after preparation sees them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EncodedSplit"]


@dataclass(frozen=True, eq=False)
class EncodedSplit:
    """One split's encoded features ``X``, targets ``y`` and sensitive-group labels."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.X, self.y, self.groups

    def take(self, rows: np.ndarray) -> EncodedSplit:
        """The given rows (positions or a mask) of this split."""
        return EncodedSplit(self.X[rows], self.y[rows], self.groups[rows])

    def __len__(self) -> int:
        return int(self.y.shape[0])
