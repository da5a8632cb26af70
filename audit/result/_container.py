"""The result of an audit: tidy DataFrames with a stable set of columns.

``AuditResult`` holds everything as long-format pandas frames, so that reports, the
app and notebooks never branch on types; :mod:`audit.result._schema` lists each
frame's columns. ``seed`` is ``<NA>`` on rows aggregated over seeds.
``results.json`` (:mod:`audit.result._json`) nests the same numbers per arm, and
``from_json(to_json())`` gives back equal frames; :mod:`audit.result._views` holds
the text summary and the notebook view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..defaults import DEFAULT_CI_LEVEL, DEFAULT_CONFIDENCE
from ._bounds import privacy_bounds
from ._json import result_from_dict, result_from_json, result_to_dict, result_to_json
from ._missing import best_p_train, missing_degradation, missing_findings, missing_scenario
from ._schema import SCHEMA_VERSION
from ._views import result_html, result_summary

__all__ = ["AuditResult"]

#: Level of intervals and bounds when a result's configuration does not say.


@dataclass(eq=False)
class AuditResult:
    """Everything an audit produced; see :mod:`audit.result._schema` for the frames' columns.

    Attributes
    ----------
    config
        The audit's configuration (``AuditConfig.to_dict()``, or the options of an
        external-model audit).
    dataset
        What was audited: name, rows, groups, splits.
    arms, by_group, overall, gaps, privacy
        One row per arm; metrics per group, overall and their gaps (per seed and
        aggregated); the accountant's privacy per arm and seed.
    meta
        Provenance: creation time, configuration hash, versions, device.
    solutions
        Arm name -> group-dropout solver output (``DropoutSolution.to_dict()``) for
        arms whose rates were solved.
    mia
        Membership-inference metrics per arm, seed, attack, group and metric.
    empirical
        One-run canary audit, one row per (arm, seed).
    mechanism, mechanism_reference
        The dropout-noise curve per row, and DP-SGD's fixed noise scale for
        comparison (empty without a DP arm).
    dp_cost
        Per-group cost of each DP arm against the baseline.
    gap_changes
        Each arm's gap against another's (every arm against the baseline, group dropout
        against uniform dropout), per rate metric, with a paired bootstrap interval of
        the change (:mod:`audit.fairness._gap_change`).
    roc
        Membership-inference ROC points (first seed, all groups pooled); ``resolvable``
        is False where fpr < 1/n_nonmembers.
    missing
        Each arm's error by group as features go missing at test time: one row per arm x
        group x ``p_test`` (the grid, and each group's own rate where ``scenario`` is
        True), with its interval and its change from no missing feature
        (:mod:`audit.fairness._missing`). Empty unless the audit measured it.
    missing_match
        The same for the uniform-dropout models of the ``p_train`` grid, one row per
        ``p_train`` x group (and ``"overall"``) x ``p_test``: which training rate copes
        best with each missing rate.
    missing_setup
        How missing features were measured: the treatment (in words), each group's rate,
        the grids, the masks per row; empty when it was not.
    schema_version
        Version of the ``results.json`` layout this result follows.
    """

    config: dict[str, Any]
    dataset: dict[str, Any]
    arms: pd.DataFrame
    by_group: pd.DataFrame
    overall: pd.DataFrame
    gaps: pd.DataFrame
    privacy: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    solutions: dict[str, Any] = field(default_factory=dict)
    mia: pd.DataFrame = field(default_factory=pd.DataFrame)
    empirical: pd.DataFrame = field(default_factory=pd.DataFrame)
    mechanism: pd.DataFrame = field(default_factory=pd.DataFrame)
    mechanism_reference: dict[str, Any] = field(default_factory=dict)
    dp_cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    gap_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    roc: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_match: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_setup: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    # ------------------------------------------------------------------ accessors

    @property
    def arm_names(self) -> list[str]:
        return [str(a) for a in self.arms["arm"]]

    @property
    def ci_level(self) -> float:
        """Level of the audit's bootstrap confidence intervals (``config["ci_level"]``)."""
        return float(self.config.get("ci_level", DEFAULT_CI_LEVEL))

    @property
    def confidence(self) -> float:
        """Confidence of the canary audit's epsilon lower bound, for all seeds together.

        ``config["privacy_audit"]["confidence"]``; an audit without a privacy-audit
        configuration (such as that of an external model) reports the default.
        """
        privacy_audit = self.config.get("privacy_audit") or {}
        return float(privacy_audit.get("confidence", DEFAULT_CONFIDENCE))

    @property
    def dp_violations(self) -> list[str]:
        """Arms whose empirical lower bound exceeds their accountant epsilon."""
        if self.empirical.empty:
            return []
        bad = self.empirical[self.empirical["dp_violation"].fillna(False).astype(bool)]
        return sorted(set(bad["arm"]), key=self.arm_names.index)

    def privacy_bounds(self) -> pd.DataFrame:
        """Claimed against proven privacy: one row per (arm, canary audit).

        Columns (:data:`audit.PRIVACY_BOUNDS_COLUMNS`): ``arm``, ``kind``, ``audit`` (one
        of :data:`audit.CANARY_AUDITS`), ``accountant_epsilon`` (the arm's claim; NaN
        without a guarantee), ``epsilon_lower_bound`` (Steinke et al., valid for any
        (epsilon, delta)-DP algorithm) and ``epsilon_lower_bound_gdp`` (the Gaussian-DP
        estimate, which assumes a Gaussian trade-off curve), each the largest over seeds
        (it holds at :attr:`confidence`: seeds are Bonferroni-corrected),
        ``run_epsilon`` (the canary run's accountant epsilon, which ``dp_violation``
        compares against), ``canaries``, ``guesses``, ``dp_violation`` (any seed) and
        ``verdict``: one plain sentence, the same in every front end. Empty (with these
        columns) when no canary audit ran.
        """
        return privacy_bounds(self)

    def aggregate(self, frame: str) -> pd.DataFrame:
        """The seed-aggregated rows of ``by_group``, ``overall``, ``gaps`` or ``privacy``."""
        df = getattr(self, frame)
        return df[df["seed"].isna()].drop(columns="seed").reset_index(drop=True)

    def error_table(self, metric: str = "error_rate") -> pd.DataFrame:
        """Arms x groups table of one metric (seed-aggregated values)."""
        agg = self.aggregate("by_group")
        agg = agg[agg["metric"] == metric]
        table = agg.pivot(index="arm", columns="group", values="value")
        return table.reindex(self.arm_names)

    def missing_degradation(self) -> pd.DataFrame:
        """Per arm, which group's error rises fastest as features go missing, and by how
        much more than the slowest group's (:func:`audit.result._missing.missing_degradation`)."""
        return missing_degradation(self)

    def missing_scenario(self) -> pd.DataFrame:
        """Each arm's error per group at the group's own missing rate, and without."""
        return missing_scenario(self)

    def best_p_train(self, group: str = "overall") -> pd.DataFrame:
        """For each ``p_test``, the uniform dropout rate ``p_train`` with the lowest error."""
        return best_p_train(self, group)

    def missing_findings(self) -> list[str]:
        """The missing-feature measurement in plain sentences (empty without it)."""
        return missing_findings(self)

    # ------------------------------------------------------------------ views

    def summary(self) -> str:
        """Plain-text comparison of the arms: epsilon, accuracy, group errors and the gap."""
        return result_summary(self)

    def _repr_html_(self) -> str:
        return result_html(self)

    def __repr__(self) -> str:
        return (f"AuditResult(dataset={self.dataset.get('name')!r}, arms={self.arm_names}, "
                f"seeds={self.config.get('seeds')})")

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` structure (DESIGN section 5)."""
        return result_to_dict(self)

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """Serialise to JSON (NaN as ``null``); also write it to ``path`` if given."""
        return result_to_json(self, path, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        """Rebuild a result from :meth:`to_dict` output."""
        return result_from_dict(cls, data)

    @classmethod
    def from_json(cls, source: str | Path) -> AuditResult:
        """Read a result from a JSON string or a ``results.json`` path."""
        return result_from_json(cls, source)
