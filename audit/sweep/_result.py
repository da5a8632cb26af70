"""A sweep's result: one tidy frame over every point, saved as ``sweep.json`` and Parquet.

The frame (:data:`SWEEP_COLUMNS`) has one row per point x arm x group x metric, each
with its interval, read from the points' :class:`~audit.AuditResult` objects
(seed-aggregated rows). ``scope`` says what a row describes:

``group``
    A group's rate (``error_rate``, ``fpr``, ``fnr``, ``selection_rate``, ...) with its
    score interval, as in ``AuditResult.by_group``.
``overall``
    The whole test set (group ``"all"``), with ``accuracy`` = 1 - error rate added.
``gap``
    The largest difference between groups of a rate (group ``"max - min"``), with its
    interval (Newcombe's), as in ``AuditResult.gaps``.
``privacy``
    ``accountant_epsilon`` (NaN without a guarantee) and ``epsilon_lower_bound`` (the
    largest one-run canary bound over the point's canary audits; NaN when none ran).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import DataFileError
from .._format import format_number
from ..result._bounds import largest_bounds
from ..result._container import AuditResult
from ._config import SweepPoint

__all__ = ["SWEEP_COLUMNS", "SWEEP_SCHEMA_VERSION", "SweepResult", "point_rows"]

SWEEP_SCHEMA_VERSION = "1.0"
SWEEP_COLUMNS = ["point", "arm", "kind", "epsilon", "budget", "scope", "group", "metric", "value",
                 "ci_low", "ci_high", "n", "ci_method"]
_GAP_GROUP = "max - min"


def point_rows(point: SweepPoint, result: AuditResult) -> pd.DataFrame:
    """The tidy rows of one point's audit (see the module docstring)."""
    parts = [_scoped(result.aggregate("by_group"), "group"),
             _scoped(result.aggregate("overall").assign(group="all"), "overall"),
             _accuracy(result.aggregate("overall")),
             _gaps(result.aggregate("gaps")),
             _privacy(result)]
    frame = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    frame["point"] = point.key
    frame["kind"] = point.kind
    frame["epsilon"] = np.nan if point.epsilon is None else point.epsilon
    frame["budget"] = np.nan if point.budget is None else point.budget
    for col in SWEEP_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return frame[SWEEP_COLUMNS]


def _scoped(rows: pd.DataFrame, scope: str) -> pd.DataFrame:
    out = rows[["arm", "group", "metric", "value", "ci_low", "ci_high", "n", "ci_method"]].copy()
    out["scope"] = scope
    return out


def _accuracy(overall: pd.DataFrame) -> pd.DataFrame:
    error = overall[overall["metric"] == "error_rate"]
    return pd.DataFrame({
        "arm": error["arm"], "group": "all", "metric": "accuracy", "value": 1 - error["value"],
        "ci_low": 1 - error["ci_high"], "ci_high": 1 - error["ci_low"], "n": error["n"],
        "ci_method": error["ci_method"], "scope": "overall"})


def _gaps(gaps: pd.DataFrame) -> pd.DataFrame:
    diff = gaps[gaps["gap"] == "difference"]
    return pd.DataFrame({
        "arm": diff["arm"], "group": _GAP_GROUP, "metric": diff["metric"], "value": diff["value"],
        "ci_low": diff["ci_low"], "ci_high": diff["ci_high"], "n": np.nan, "ci_method": diff["ci_method"],
        "scope": "gap"})


def _privacy(result: AuditResult) -> pd.DataFrame:
    rows = []
    privacy = result.aggregate("privacy")
    bounds = largest_bounds(result.privacy_bounds())
    for arm in result.arm_names:
        eps = privacy.loc[privacy["arm"] == arm, "epsilon"]
        rows.append({"arm": arm, "metric": "accountant_epsilon",
                     "value": float(eps.iloc[0]) if len(eps) and pd.notna(eps.iloc[0]) else math.nan})
        bound = bounds.loc[bounds["arm"] == arm, "epsilon_lower_bound"] if not bounds.empty else pd.Series()
        rows.append({"arm": arm, "metric": "epsilon_lower_bound",
                     "value": float(bound.iloc[0]) if len(bound) else math.nan})
    out = pd.DataFrame(rows)
    out["group"], out["scope"] = "all", "privacy"
    return out


@dataclass
class SweepResult:
    """Every point of a sweep in one tidy frame (:data:`SWEEP_COLUMNS`).

    Attributes
    ----------
    config
        The sweep's configuration (:meth:`audit.SweepConfig.to_dict`).
    dataset
        The data's name, rows and groups (as in ``results.json``).
    frame
        One row per point x arm x group x metric.
    meta
        Where and how long it ran: backend, elapsed seconds, points reused on resume.
    """

    config: dict[str, Any]
    dataset: dict[str, Any]
    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SWEEP_SCHEMA_VERSION

    @property
    def points(self) -> list[str]:
        return list(dict.fromkeys(self.frame["point"]))

    def metric(self, metric: str, scope: str = "group") -> pd.DataFrame:
        """The rows of one metric in one scope (``"group"``, ``"overall"``, ``"gap"``,
        ``"privacy"``)."""
        rows = self.frame[(self.frame["metric"] == metric) & (self.frame["scope"] == scope)]
        return rows.reset_index(drop=True)

    def frontier(self, metric: str = "error_rate") -> pd.DataFrame:
        """Per point: accuracy, the ``metric`` gap, both with intervals, epsilons, and whether
        the point is on the accuracy-gap frontier (no other point has higher accuracy and a
        smaller gap)."""
        acc = self.metric("accuracy", "overall").set_index("point")
        gap = self.metric(metric, "gap").set_index("point")
        eps = self.metric("accountant_epsilon", "privacy").set_index("point")["value"]
        bound = self.metric("epsilon_lower_bound", "privacy").set_index("point")["value"]
        out = pd.DataFrame({
            "arm": acc["arm"], "kind": acc["kind"], "epsilon": acc["epsilon"], "budget": acc["budget"],
            "accuracy": acc["value"], "accuracy_low": acc["ci_low"], "accuracy_high": acc["ci_high"],
            "gap": gap["value"], "gap_low": gap["ci_low"], "gap_high": gap["ci_high"],
            "accountant_epsilon": eps, "epsilon_lower_bound": bound})
        xs, ys = out["accuracy"].to_numpy(), out["gap"].to_numpy()
        out["on_frontier"] = [not ((xs >= x) & (ys <= y) & ((xs > x) | (ys < y))).any()
                              for x, y in zip(xs, ys, strict=True)]
        return out.reset_index()

    def summary(self) -> str:
        """A text table of the frontier, for the CLI and notebooks."""
        table = self.frontier()
        lines = [f"{'point':<28}{'accuracy':>10}{'error gap':>11}{'epsilon':>9}{'eps lower':>11}  frontier"]
        for _, row in table.iterrows():
            eps = format_number(row["accountant_epsilon"], 2, missing="none")
            low = format_number(row["epsilon_lower_bound"], 2, missing="-")
            lines.append(f"{row['arm']!s:<28}{row['accuracy']:>10.3f}{row['gap']:>11.3f}{eps:>9}{low:>11}  "
                         f"{'yes' if row['on_frontier'] else ''}")
        return "\n".join(lines)

    # ----------------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        # Every float as Python writes it (17 significant digits: read back exactly; pandas'
        # own to_json keeps 10), missing values as null.
        records = [{k: _plain(v) for k, v in row.items()} for row in self.frame.to_dict(orient="records")]
        return {"schema_version": self.schema_version, "kind": "sweep", "config": self.config,
                "dataset": self.dataset, "meta": self.meta, "rows": records}

    def save(self, directory: str | Path) -> Path:
        """Write ``sweep.json`` and ``sweep.parquet`` into ``directory``; return the JSON's path."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "sweep.json", json.dumps(self.to_dict(), indent=2))
        tmp = out / ".sweep.parquet.tmp"
        self.frame.to_parquet(tmp, index=False)
        tmp.replace(out / "sweep.parquet")
        return out / "sweep.json"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepResult:
        if data.get("kind") != "sweep" or "rows" not in data:
            raise DataFileError("not a sweep result (no 'kind': 'sweep' and 'rows'); a single audit's "
                                "results.json is read with audit.AuditResult.from_json")
        frame = _typed(pd.DataFrame.from_records(list(data["rows"]), columns=SWEEP_COLUMNS))
        return cls(config=dict(data["config"]), dataset=dict(data["dataset"]), frame=frame,
                   meta=dict(data.get("meta", {})), schema_version=str(data["schema_version"]))

    @classmethod
    def load(cls, source: str | Path) -> SweepResult:
        """Read ``sweep.json`` (or a folder holding one)."""
        path = Path(source)
        if path.is_dir():
            path = path / "sweep.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFileError(f"cannot read the sweep result '{path}': {exc}") from None
        return cls.from_dict(data)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader never sees half of it (temporary file,
    then a rename, which is atomic on one file system)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def concat_points(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return _typed(pd.DataFrame(columns=SWEEP_COLUMNS))
    return _typed(pd.concat(parts, ignore_index=True)[SWEEP_COLUMNS])


_NUMBERS = ("epsilon", "budget", "value", "ci_low", "ci_high", "n")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column, however the frame was made: floats, and text as objects."""
    for col in SWEEP_COLUMNS:
        if col in _NUMBERS:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        else:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame
