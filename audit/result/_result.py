"""The result of an audit: tidy DataFrames, a JSON round trip and text/HTML views.

``AuditResult`` holds everything as long-format pandas frames with a stable set
of columns, so that reports, the app and notebooks never branch on types:

* ``arms``      -- arm, kind, params (one row per arm, in audit order)
* ``by_group``  -- arm, kind, seed, group, metric, value, std, ci_low, ci_high, n
* ``overall``   -- arm, kind, seed, metric, value, std, ci_low, ci_high, n
* ``gaps``      -- arm, kind, seed, metric, gap, value, std, ci_low, ci_high,
  max_group, min_group, exceeds_uncertainty
* ``privacy``   -- arm, kind, seed, epsilon, delta, noise_multiplier, sample_rate,
  steps, accountant, max_grad_norm, guarantee

``seed`` is ``<NA>`` on rows aggregated over seeds. ``results.json`` nests the
same numbers per arm (DESIGN section 5); ``from_json(to_json())`` gives back
equal frames.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import DataFileError
from ..fairness._metrics import BY_GROUP_COLUMNS, GAP_ONLY_METRICS, GAPS_COLUMNS, METRICS, OVERALL_COLUMNS
from ..privacy._mia import MIA_METRICS

__all__ = ["SCHEMA_VERSION", "AuditResult"]

#: Version of the ``results.json`` layout; bumped on any incompatible change.
SCHEMA_VERSION = "1.0"

PRIVACY_FIELDS = (
    "epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "accountant",
    "max_grad_norm", "guarantee",
)  # fmt: skip
_STAT_FIELDS = ("value", "std", "ci_low", "ci_high")
_GAP_FIELDS = (*_STAT_FIELDS, "max_group", "min_group", "exceeds_uncertainty")
AGGREGATE = "aggregate"


@dataclass(eq=False)
class AuditResult:
    """Everything an audit produced; see the module docstring for the frames' columns."""

    config: dict[str, Any]
    dataset: dict[str, Any]
    arms: pd.DataFrame
    by_group: pd.DataFrame
    overall: pd.DataFrame
    gaps: pd.DataFrame
    privacy: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    #: arm name -> group-dropout solver output (``DropoutSolution.to_dict()``) for
    #: arms whose rates were solved.
    solutions: dict[str, Any] = field(default_factory=dict)
    #: membership-inference metrics: arm, kind, seed, attack, group, metric, value, std,
    #: ci_low, ci_high, n_members, n_nonmembers, available, reason
    mia: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one-run canary audit, one row per (arm, seed): see ``EMPIRICAL_COLUMNS``
    empirical: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: dropout-noise curve: arm, kind, row, group, rate, grad_norm, noise_norm, noise_std
    mechanism: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: DP-SGD's fixed noise scale for comparison (empty without a DP arm)
    mechanism_reference: dict[str, Any] = field(default_factory=dict)
    #: per-group cost of each DP arm against the baseline
    dp_cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: membership-inference ROC points (first seed, all groups pooled): arm, kind, seed,
    #: attack, fpr, tpr, resolvable (False where fpr < 1/n_nonmembers)
    roc: pd.DataFrame = field(default_factory=pd.DataFrame)
    schema_version: str = SCHEMA_VERSION

    # ------------------------------------------------------------------ views

    @property
    def arm_names(self) -> list[str]:
        return [str(a) for a in self.arms["arm"]]

    @property
    def dp_violations(self) -> list[str]:
        """Arms whose empirical lower bound exceeds their accountant epsilon."""
        if self.empirical.empty:
            return []
        bad = self.empirical[self.empirical["dp_violation"].fillna(False).astype(bool)]
        return sorted(set(bad["arm"]), key=self.arm_names.index)

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

    def summary(self) -> str:
        """Plain-text comparison of the arms: epsilon, accuracy, group errors and the gap."""
        by_group = self.aggregate("by_group")
        overall = self.aggregate("overall")
        gaps = self.aggregate("gaps")
        privacy = self.aggregate("privacy")
        groups = sorted(by_group["group"].unique())
        level = round(100 * float(self.config.get("ci_level", 0.95)))
        header = ["arm", "epsilon", "accuracy", *[f"error[{g}]" for g in groups],
                  f"error gap [{level}% CI]", "", "MIA AUC", "eps lower bound"]
        rows = []
        for arm in self.arm_names:
            eps = privacy.loc[privacy["arm"] == arm, "epsilon"]
            eps_text = _fmt(eps.iloc[0], 2) if len(eps) and not _isnan(eps.iloc[0]) else "none"
            err = overall[(overall["arm"] == arm) & (overall["metric"] == "error_rate")]
            acc = "n/a" if err.empty else _fmt(1 - err["value"].iloc[0], 3)
            cells = []
            for g in groups:
                r = by_group[(by_group["arm"] == arm) & (by_group["group"] == g)
                             & (by_group["metric"] == "error_rate")]
                cells.append("n/a" if r.empty else _fmt(r["value"].iloc[0], 3))
            gap = gaps[(gaps["arm"] == arm) & (gaps["metric"] == "error_rate")
                       & (gaps["gap"] == "difference")]
            if gap.empty:
                gap_text, flag = "n/a", ""
            else:
                g0 = gap.iloc[0]
                gap_text = f"{_fmt(g0['value'], 3)} [{_fmt(g0['ci_low'], 3)}, {_fmt(g0['ci_high'], 3)}]"
                exceeds = g0["exceeds_uncertainty"]
                flag = "" if (not _isnan(exceeds) and bool(exceeds)) else "within noise"
            rows.append([arm, eps_text, acc, *cells, gap_text, flag, self._mia_text(arm),
                         self._bound_text(arm)])
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths).rstrip())
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in rows]
        if self.dp_violations:
            lines.insert(0, "!!! DP VIOLATION: the empirical epsilon lower bound exceeds the "
                         f"accountant's epsilon for {', '.join(self.dp_violations)}; the DP "
                         "implementation or its accounting is wrong. !!!")
        ds = self.dataset
        merged = ds.get("splits", {}).get("merged_groups", [])
        notes = [
            f"dataset: {ds.get('name')} ({ds.get('rows')} rows; groups "
            + ", ".join(f"{k}: {v}" for k, v in ds.get("groups", {}).items()) + ")"
            + (f"; merged into one group for the audit: {', '.join(merged)}" if merged else ""),
            f"positive class: {ds.get('positive_label')!r}; errors on the test split, "
            f"mean over {len(self.config.get('seeds', []))} seed(s); CI: bootstrap over test rows.",
            "epsilon 'none' = no formal privacy guarantee (dropout is not differential privacy).",
        ]
        if not self.mia.empty:
            notes.append("MIA AUC: loss-threshold membership inference, training rows vs as many "
                         "test rows (0.5 = no leakage).")
        if not self.empirical.empty:
            e = self.empirical.iloc[0]
            notes.append(
                f"eps lower bound: one-run canary audit ({int(e['canaries'])} {e['canary_kind']} "
                f"canaries, {int(e['guesses'])} guesses, delta {float(e['delta']):.2g}); the "
                f"largest over seeds, {100 * float(e['family_confidence']):.0f}% confidence for "
                "all seeds together (Bonferroni).")
        return "\n".join([*lines, "", *notes])

    def _mia_text(self, arm: str) -> str:
        if self.mia.empty:
            return ""
        sel = self.mia[(self.mia["arm"] == arm) & self.mia["seed"].isna()
                       & (self.mia["attack"] == "loss") & (self.mia["group"] == "overall")
                       & (self.mia["metric"] == "auc")]
        return "n/a" if sel.empty else _fmt(sel["value"].iloc[0], 3)

    def _bound_text(self, arm: str) -> str:
        if self.empirical.empty:
            return ""
        sel = self.empirical[self.empirical["arm"] == arm]
        if sel.empty:
            return "n/a"
        text = _fmt(sel["epsilon_lower_bound"].max(), 2)
        return text + (" VIOLATION" if sel["dp_violation"].any() else "")

    def _repr_html_(self) -> str:
        table = self.error_table().round(4)
        privacy = self.aggregate("privacy")[["arm", "kind", "epsilon", "delta", "guarantee"]]
        privacy = privacy.assign(epsilon=privacy["epsilon"].map(
            lambda e: "no guarantee" if _isnan(e) else f"{e:.3g}"))
        banner = ""
        if self.dp_violations:
            banner = ("<p style='color:#b00;font-weight:bold'>DP VIOLATION: the empirical "
                      "epsilon lower bound exceeds the accountant's epsilon for "
                      + html.escape(", ".join(self.dp_violations)) + ".</p>")
        return (
            banner
            + f"<h4>fairpriv audit: {html.escape(str(self.dataset.get('name')))}</h4>"
            "<p>Error rate per group (test split, mean over seeds)</p>"
            + table.to_html()
            + "<p>Privacy</p>"
            + privacy.to_html(index=False)
        )

    def __repr__(self) -> str:
        return (f"AuditResult(dataset={self.dataset.get('name')!r}, arms={self.arm_names}, "
                f"seeds={self.config.get('seeds')})")

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` structure (DESIGN section 5)."""
        arms_out = []
        for _, arm_row in self.arms.iterrows():
            name = str(arm_row["arm"])
            priv = self.privacy[self.privacy["arm"] == name]
            agg_priv = priv[priv["seed"].isna()]
            privacy = {k: _clean(agg_priv[k].iloc[0]) if len(agg_priv) else None
                       for k in PRIVACY_FIELDS}
            privacy["per_seed"] = [
                {"seed": int(r["seed"]), **{k: _clean(r[k]) for k in PRIVACY_FIELDS}}
                for _, r in priv[priv["seed"].notna()].iterrows()
            ]
            seeds = [int(s) for s in self.overall.loc[
                (self.overall["arm"] == name) & self.overall["seed"].notna(), "seed"].unique()]
            metrics = {AGGREGATE: self._metrics_block(name, None),
                       "seeds": [{"seed": s, **self._metrics_block(name, s)} for s in seeds]}
            privacy["mia"] = self._mia_block(name)
            privacy["empirical"] = self._empirical_block(name)
            # null, not false, when no canary audit ran: "not checked" is not "checked, fine"
            privacy["dp_violation"] = bool(privacy["empirical"]["dp_violation"]) \
                if privacy["empirical"] else None
            arms_out.append({
                "name": name, "kind": str(arm_row["kind"]), "params": arm_row["params"],
                "privacy": privacy, "metrics": metrics, "solver": self.solutions.get(name),
                "mechanism": _records(self.mechanism, name) if not self.mechanism.empty else None,
                "dp_cost": _records(self.dp_cost, name) if not self.dp_cost.empty else None,
                "roc": _records(self.roc, name) if not self.roc.empty else None,
            })
        return {
            "schema_version": self.schema_version,
            "meta": self.meta,
            "config": self.config,
            "dataset": self.dataset,
            "dp_violation": None if self.empirical.empty else bool(self.dp_violations),
            "mechanism_reference": self.mechanism_reference,
            "arms": arms_out,
        }

    def _mia_block(self, arm: str) -> dict[str, Any] | None:
        if self.mia.empty:
            return None
        out: dict[str, Any] = {}
        sel = self.mia[self.mia["arm"] == arm]
        for attack, by_attack in sel.groupby("attack", sort=False):
            def block(df: pd.DataFrame) -> dict[str, Any]:
                res: dict[str, Any] = {"overall": {}, "by_group": {}}
                for _, r in df.iterrows():
                    entry = {k: _clean(r[k]) for k in MIA_STAT_FIELDS}
                    if r["group"] == "overall":
                        res["overall"][str(r["metric"])] = entry
                    else:
                        res["by_group"].setdefault(str(r["group"]), {})[str(r["metric"])] = entry
                return res

            seeds = sorted(int(s) for s in by_attack["seed"].dropna().unique())
            out[str(attack)] = {
                AGGREGATE: block(by_attack[by_attack["seed"].isna()]),
                "seeds": [{"seed": s, **block(by_attack[by_attack["seed"] == s])} for s in seeds],
            }
        return out

    def _empirical_block(self, arm: str) -> dict[str, Any] | None:
        if self.empirical.empty:
            return None
        sel = self.empirical[self.empirical["arm"] == arm]
        if sel.empty:
            return None
        per_seed = [{k: _clean(r[k]) for k in EMPIRICAL_COLUMNS if k not in ("arm", "kind")}
                    for _, r in sel.iterrows()]
        return {
            "epsilon_lower_bound": float(sel["epsilon_lower_bound"].max()),
            "dp_violation": bool(sel["dp_violation"].any()),
            "per_seed": per_seed,
        }

    def _metrics_block(self, arm: str, seed: int | None) -> dict[str, Any]:
        def rows(df: pd.DataFrame) -> pd.DataFrame:
            sel = df[df["arm"] == arm]
            return sel[sel["seed"].isna()] if seed is None else sel[sel["seed"] == seed]

        overall = {str(r["metric"]): {**{k: _clean(r[k]) for k in _STAT_FIELDS}, "n": int(r["n"])}
                   for _, r in rows(self.overall).iterrows()}
        by_group: dict[str, dict[str, Any]] = {}
        for _, r in rows(self.by_group).iterrows():
            by_group.setdefault(str(r["group"]), {})[str(r["metric"])] = {
                **{k: _clean(r[k]) for k in _STAT_FIELDS}, "n": int(r["n"])}
        gaps: dict[str, dict[str, Any]] = {}
        for _, r in rows(self.gaps).iterrows():
            gaps.setdefault(str(r["metric"]), {})[str(r["gap"])] = {
                k: _clean(r[k]) for k in _GAP_FIELDS}
        return {"overall": overall, "by_group": by_group, "gaps": gaps}

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """Serialise to JSON (NaN as ``null``); also write it to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        """Rebuild a result from :meth:`to_dict` output."""
        version = str(data.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise DataFileError(
                f"results schema_version {version!r} is not supported (this fairpriv reads "
                f"{SCHEMA_VERSION}); re-run the audit with this version."
            )
        arms_rows, bg, ov, gp, pv = [], [], [], [], []
        mia_rows: list[dict[str, Any]] = []
        emp_rows: list[dict[str, Any]] = []
        mech_rows: list[dict[str, Any]] = []
        cost_rows: list[dict[str, Any]] = []
        roc_rows: list[dict[str, Any]] = []
        solutions: dict[str, Any] = {}
        for arm in data["arms"]:
            name, kind = arm["name"], arm["kind"]
            if arm.get("solver") is not None:
                solutions[name] = arm["solver"]
            arms_rows.append({"arm": name, "kind": kind, "params": arm["params"]})
            blocks = [(None, arm["metrics"][AGGREGATE])] + [
                (b["seed"], b) for b in arm["metrics"]["seeds"]]
            for seed, block in blocks:
                for metric, st in block["overall"].items():
                    ov.append({"arm": name, "kind": kind, "seed": seed, "metric": metric,
                               **{k: _unclean(st[k]) for k in _STAT_FIELDS}, "n": st["n"]})
                for group, metrics in block["by_group"].items():
                    for metric, st in metrics.items():
                        bg.append({"arm": name, "kind": kind, "seed": seed, "group": group,
                                   "metric": metric,
                                   **{k: _unclean(st[k]) for k in _STAT_FIELDS}, "n": st["n"]})
                for metric, kinds in block["gaps"].items():
                    for gap, st in kinds.items():
                        gp.append({"arm": name, "kind": kind, "seed": seed, "metric": metric,
                                   "gap": gap, **{k: _unclean(st[k]) for k in _STAT_FIELDS},
                                   "max_group": st["max_group"], "min_group": st["min_group"],
                                   "exceeds_uncertainty": _na(st["exceeds_uncertainty"])})
            priv = arm["privacy"]
            for attack, blocks in (priv.get("mia") or {}).items():
                parts = [(None, blocks[AGGREGATE])] + [(b["seed"], b) for b in blocks["seeds"]]
                for seed, block in parts:
                    for group, metrics in [("overall", block["overall"]),
                                           *block["by_group"].items()]:
                        for metric, st in metrics.items():
                            mia_rows.append({"arm": name, "kind": kind, "seed": seed,
                                             "attack": attack, "group": group, "metric": metric,
                                             **{k: _unclean(st[k]) for k in MIA_STAT_FIELDS}})
            for entry in (priv.get("empirical") or {}).get("per_seed", []):
                emp_rows.append({"arm": name, "kind": kind,
                                 **{k: _unclean(v) for k, v in entry.items()}})
            mech_rows += [{**r, "arm": name} for r in arm.get("mechanism") or []]
            cost_rows += [{**r, "arm": name} for r in arm.get("dp_cost") or []]
            roc_rows += [{**r, "arm": name} for r in arm.get("roc") or []]
            for entry in priv.get("per_seed", []):
                pv.append({"arm": name, "kind": kind, "seed": entry["seed"],
                           **{k: _unclean(entry[k]) for k in PRIVACY_FIELDS}})
            pv.append({"arm": name, "kind": kind, "seed": None,
                       **{k: _unclean(priv[k]) for k in PRIVACY_FIELDS}})
        by_group, overall, gaps, privacy = normalise_frames(
            pd.DataFrame(bg), pd.DataFrame(ov), pd.DataFrame(gp), pd.DataFrame(pv),
            [a["arm"] for a in arms_rows],
        )
        arm_order = [a["arm"] for a in arms_rows]
        return cls(
            config=dict(data["config"]), dataset=dict(data["dataset"]),
            arms=pd.DataFrame(arms_rows, columns=["arm", "kind", "params"]),
            by_group=by_group, overall=overall, gaps=gaps, privacy=privacy,
            meta=dict(data.get("meta", {})), solutions=solutions,
            mia=normalise_mia(pd.DataFrame(mia_rows), arm_order),
            empirical=normalise_empirical(pd.DataFrame(emp_rows), arm_order),
            mechanism=_frame_from_records(mech_rows, MECHANISM_COLUMNS),
            mechanism_reference=dict(data.get("mechanism_reference") or {}),
            dp_cost=_frame_from_records(cost_rows, DP_COST_COLUMNS),
            roc=_frame_from_records(roc_rows, ROC_COLUMNS),
            schema_version=version,
        )

    @classmethod
    def from_json(cls, source: str | Path) -> AuditResult:
        """Read a result from a JSON string or a ``results.json`` path."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            path = Path(source)
            if not path.exists():
                raise DataFileError(f"results file not found: '{path}'")
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"not a valid results JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as exc:
            raise DataFileError(f"results JSON is missing or has a malformed field: {exc}") from None


def normalise_frames(
    by_group: pd.DataFrame, overall: pd.DataFrame, gaps: pd.DataFrame, privacy: pd.DataFrame,
    arm_order: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Give the four frames the canonical columns, dtypes and row order used everywhere.

    Rows are ordered by arm (audit order), seed (aggregate last), metric, group, gap.
    """
    return (
        _ordered(_typed(by_group, ("arm", "kind", *BY_GROUP_COLUMNS)), arm_order),
        _ordered(_typed(overall, ("arm", "kind", *OVERALL_COLUMNS)), arm_order),
        _ordered(_typed(gaps, ("arm", "kind", *GAPS_COLUMNS)), arm_order),
        _ordered(_typed(privacy, ("arm", "kind", "seed", *PRIVACY_FIELDS)), arm_order),
    )


_METRIC_ORDER = {m: i for i, m in enumerate((*METRICS, *GAP_ONLY_METRICS, *MIA_METRICS))}

MIA_STAT_FIELDS = ("value", "std", "ci_low", "ci_high", "n_members", "n_nonmembers", "available",
                   "reason")
MIA_COLUMNS = ("arm", "kind", "seed", "attack", "group", "metric", *MIA_STAT_FIELDS)
EMPIRICAL_COLUMNS = (
    "arm", "kind", "seed", "canaries", "canary_kind", "included", "k_plus", "k_minus", "guesses",
    "correct", "delta", "confidence", "family_confidence", "epsilon_lower_bound", "run_epsilon",
    "dp_violation",
)  # fmt: skip
ROC_COLUMNS = ("arm", "kind", "seed", "attack", "fpr", "tpr", "resolvable")
MECHANISM_COLUMNS = ("arm", "kind", "row", "group", "rate", "grad_norm", "noise_norm", "noise_std")
DP_COST_COLUMNS = (
    "arm", "group", "metric", "baseline", "cost", "std", "ci_low", "ci_high", "overall_cost",
    "excess", "excess_ci_low", "excess_ci_high", "flagged", "seeds",
)  # fmt: skip


def normalise_mia(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    """Canonical columns, dtypes and order of the membership-inference frame."""
    if df.empty:
        return pd.DataFrame(columns=list(MIA_COLUMNS))
    df = df.reindex(columns=list(MIA_COLUMNS)).reset_index(drop=True)
    for col in ("value", "std", "ci_low", "ci_high"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("seed", "n_members", "n_nonmembers"):
        df[col] = pd.array([None if _isnan(v) else int(v) for v in df[col]], dtype="Int64")
    df["available"] = df["available"].astype(bool)
    for col in ("arm", "kind", "attack", "group", "metric"):
        df[col] = pd.Series([str(v) for v in df[col]], dtype=object)
    df["reason"] = pd.Series(["" if _isnan(v) else str(v) for v in df["reason"]], dtype=object)
    arm_rank = {a: i for i, a in enumerate(arm_order)}
    keys = pd.DataFrame({
        "arm": df["arm"].map(arm_rank), "attack": df["attack"],
        "aggregate": df["seed"].isna(), "seed": df["seed"].fillna(-1).astype("int64"),
        "overall": df["group"] != "overall", "group": df["group"],
        "metric": df["metric"].map(lambda m: _METRIC_ORDER.get(m, 99)),
    })
    return df.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


def normalise_empirical(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    """Canonical columns, dtypes and order of the canary-audit frame."""
    if df.empty:
        return pd.DataFrame(columns=list(EMPIRICAL_COLUMNS))
    df = df.reindex(columns=list(EMPIRICAL_COLUMNS)).reset_index(drop=True)
    for col in ("delta", "confidence", "family_confidence", "epsilon_lower_bound", "run_epsilon"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("seed", "canaries", "included", "k_plus", "k_minus", "guesses", "correct"):
        df[col] = df[col].astype("int64")
    df["dp_violation"] = df["dp_violation"].astype(bool)
    for col in ("arm", "kind", "canary_kind"):
        df[col] = pd.Series([str(v) for v in df[col]], dtype=object)
    rank = df["arm"].map({a: i for i, a in enumerate(arm_order)})
    return df.assign(_r=rank).sort_values(["_r", "seed"], kind="stable").drop(columns="_r") \
        .reset_index(drop=True)


def _records(df: pd.DataFrame, arm: str) -> list[dict[str, Any]] | None:
    sel = df[df["arm"] == arm].drop(columns="arm")
    if sel.empty:
        return None
    return [{str(k): _clean(v) for k, v in r.items()} for r in sel.to_dict(orient="records")]


def _frame_from_records(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).reindex(columns=list(columns))
    for col in df.columns:
        if df[col].map(lambda v: v is None).all():
            continue
        if col not in ("arm", "kind", "group", "metric", "baseline", "flagged", "attack",
                       "resolvable"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df.reset_index(drop=True)


def _ordered(df: pd.DataFrame, arm_order: list[str]) -> pd.DataFrame:
    arm_rank = {a: i for i, a in enumerate(arm_order)}
    keys = pd.DataFrame({
        "arm": df["arm"].map(arm_rank),
        "aggregate": df["seed"].isna(),
        "seed": df["seed"].fillna(-1).astype("int64"),
    })
    if "metric" in df:
        keys["metric"] = df["metric"].map(lambda m: _METRIC_ORDER.get(m, len(_METRIC_ORDER)))
        keys["metric_name"] = df["metric"]
    for col in ("group", "gap"):
        if col in df:
            keys[col] = df[col]
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


_FLOAT_COLUMNS = {"value", "std", "ci_low", "ci_high", "epsilon", "delta", "noise_multiplier",
                  "sample_rate", "max_grad_norm"}
_OBJECT_COLUMNS = {"arm", "kind", "group", "metric", "gap", "max_group", "min_group",
                   "accountant", "guarantee"}


def _typed(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    df = df.reindex(columns=list(columns)).reset_index(drop=True)
    for col in df.columns:
        if col in _FLOAT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        elif col in ("seed", "n", "steps"):
            df[col] = pd.array(
                [None if v is None or _isnan(v) else int(v) for v in df[col]], dtype="Int64")
        elif col == "exceeds_uncertainty":
            df[col] = pd.array([_na(v) for v in df[col]], dtype="boolean")
        elif col in _OBJECT_COLUMNS:
            df[col] = pd.Series([None if _isnan(v) else str(v) for v in df[col]], dtype=object)
    return df


def _isnan(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


def _na(value: Any) -> Any:
    return pd.NA if value is None or value is pd.NA else bool(value)


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN/NA -> None, numpy scalars -> Python."""
    if _isnan(value):
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        # JSON has no infinity; an infinite statistic is undefined for the reader too
        return float(value) if math.isfinite(value) else None
    return value


def _unclean(value: Any) -> Any:
    return float("nan") if value is None else value


def _fmt(value: Any, digits: int) -> str:
    return "n/a" if _isnan(value) else f"{float(value):.{digits}f}"
