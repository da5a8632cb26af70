"""``results.json``: an :class:`audit.AuditResult` nested per arm (DESIGN section 5), and back.

Each arm carries its parameters, its privacy (accountant, membership inference, canary
audit), its metrics (the seed aggregate and every seed), its solver output and its
mechanism, DP-cost and ROC records. ``from_dict(to_dict())`` gives back equal frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._exceptions import DataFileError
from ._schema import (
    ARMS_COLUMNS,
    DP_COST_COLUMNS,
    EMPIRICAL_COLUMNS,
    GAP_CHANGE_COLUMNS,
    GAP_FIELDS,
    MECHANISM_COLUMNS,
    MIA_STAT_FIELDS,
    MISSING_COLUMNS,
    MISSING_MATCH_COLUMNS,
    PRIVACY_FIELDS,
    PRIVACY_FIELDS_SINCE_1_2,
    ROC_COLUMNS,
    SCHEMA_VERSION,
    STAT_FIELDS,
    frame_from_records,
    is_missing,
    json_safe,
    none_to_nan,
    normalise_empirical,
    normalise_frames,
    normalise_mia,
    nullable_bool,
)
from ._validate import check_schema_version, validate_results

if TYPE_CHECKING:
    from ._container import AuditResult

__all__ = ["result_from_dict", "result_from_json", "result_to_dict", "result_to_json"]

#: Key of the seed-aggregated block next to the per-seed ``"seeds"`` list.
AGGREGATE = "aggregate"
#: Frames stored per arm as plain record lists, under the frame's name.
_RECORD_FRAMES = ("mechanism", "dp_cost", "gap_changes", "roc", "missing")

# ------------------------------------------------------------------ encode


def result_to_dict(result: AuditResult) -> dict[str, Any]:
    """The ``results.json`` structure (DESIGN section 5), described by ``results.schema.json``."""
    return {
        # The layout written is always this version's, whatever file the result was read
        # from: an older file read and written again gains the current keys, so it must
        # not keep claiming the older version.
        "schema_version": SCHEMA_VERSION,
        "meta": result.meta,
        "config": result.config,
        "dataset": result.dataset,
        "dp_violation": None if result.empirical.empty else bool(result.dp_violations),
        "mechanism_reference": result.mechanism_reference,
        "missing_features": _missing_block(result),
        "arms": [_arm_entry(result, arm_row) for _, arm_row in result.arms.iterrows()],
    }


def _missing_block(result: AuditResult) -> dict[str, Any] | None:
    """How missing features were measured, and the p_train grid's rows (null when off)."""
    if not result.missing_setup:
        return None
    match = result.missing_match
    return {"setup": json_safe(result.missing_setup),
            "match": [{str(k): json_safe(v) for k, v in r.items()}
                      for r in match.to_dict(orient="records")] if not match.empty else []}


def result_to_json(result: AuditResult, path: str | Path | None = None, *, indent: int = 2) -> str:
    """Serialise to JSON (NaN as ``null``); also write it to ``path`` if given."""
    text = json.dumps(result_to_dict(result), indent=indent, allow_nan=False, ensure_ascii=False)
    if path is not None:
        Path(path).write_text(text + "\n", encoding="utf-8")
    return text


def _arm_entry(result: AuditResult, arm_row: pd.Series) -> dict[str, Any]:
    name = str(arm_row["arm"])
    seeds = [int(s) for s in result.overall.loc[
        (result.overall["arm"] == name) & result.overall["seed"].notna(), "seed"].unique()]
    entry = {
        "name": name, "kind": str(arm_row["kind"]), "params": arm_row["params"],
        "privacy": _privacy_block(result, name),
        "metrics": _by_seed(partial(_metrics_block, result, name), seeds),
        "solver": result.solutions.get(name),
    }
    for key in _RECORD_FRAMES:
        frame = getattr(result, key)
        entry[key] = _records(frame, name) if not frame.empty else None
    return entry


def _by_seed(block: Callable[[int | None], dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The aggregate block (seed ``None``) and one block per seed."""
    return {AGGREGATE: block(None), "seeds": [{"seed": s, **block(s)} for s in seeds]}


def _privacy_block(result: AuditResult, arm: str) -> dict[str, Any]:
    priv = result.privacy[result.privacy["arm"] == arm]
    agg_priv = priv[priv["seed"].isna()]
    privacy: dict[str, Any] = {k: json_safe(agg_priv[k].iloc[0]) if len(agg_priv) else None
                               for k in PRIVACY_FIELDS}
    privacy["per_seed"] = [
        {"seed": int(r["seed"]), **{k: json_safe(r[k]) for k in PRIVACY_FIELDS}}
        for _, r in priv[priv["seed"].notna()].iterrows()
    ]
    privacy["mia"] = _mia_block(result.mia, arm)
    privacy["empirical"] = _empirical_block(result.empirical, arm)
    # null, not false, when no canary audit ran: "not checked" is not "checked, fine"
    privacy["dp_violation"] = bool(privacy["empirical"]["dp_violation"]) \
        if privacy["empirical"] else None
    return privacy


def _seed_rows(df: pd.DataFrame, seed: int | None) -> pd.DataFrame:
    """The seed-aggregated rows (``seed`` None) or one seed's rows of ``df``."""
    return df[df["seed"].isna()] if seed is None else df[df["seed"] == seed]


def _metrics_block(result: AuditResult, arm: str, seed: int | None) -> dict[str, Any]:
    def rows(df: pd.DataFrame) -> pd.DataFrame:
        return _seed_rows(df[df["arm"] == arm], seed)

    overall = {str(r["metric"]): {**_fields(r, STAT_FIELDS), "ci_method": _method(r), "n": int(r["n"])}
               for _, r in rows(result.overall).iterrows()}
    by_group: dict[str, dict[str, Any]] = {}
    for _, r in rows(result.by_group).iterrows():
        by_group.setdefault(str(r["group"]), {})[str(r["metric"])] = {
            **_fields(r, STAT_FIELDS), "ci_method": _method(r), "n": int(r["n"])}
    gaps: dict[str, dict[str, Any]] = {}
    for _, r in rows(result.gaps).iterrows():
        gaps.setdefault(str(r["metric"]), {})[str(r["gap"])] = {
            **_fields(r, GAP_FIELDS), "ci_method": _method(r)}
    return {"overall": overall, "by_group": by_group, "gaps": gaps}


def _mia_block(mia: pd.DataFrame, arm: str) -> dict[str, Any] | None:
    if mia.empty:
        return None
    out: dict[str, Any] = {}
    for attack, by_attack in mia[mia["arm"] == arm].groupby("attack", sort=False):
        seeds = sorted(int(s) for s in by_attack["seed"].dropna().unique())
        out[str(attack)] = _by_seed(partial(_mia_seed_block, by_attack), seeds)
    return out


def _mia_seed_block(attack_rows: pd.DataFrame, seed: int | None) -> dict[str, Any]:
    """One attack's metrics for one seed (or the aggregate): overall and by group."""
    res: dict[str, Any] = {"overall": {}, "by_group": {}}
    for _, r in _seed_rows(attack_rows, seed).iterrows():
        entry = _fields(r, MIA_STAT_FIELDS)
        if r["group"] == "overall":
            res["overall"][str(r["metric"])] = entry
        else:
            res["by_group"].setdefault(str(r["group"]), {})[str(r["metric"])] = entry
    return res


def _empirical_block(empirical: pd.DataFrame, arm: str) -> dict[str, Any] | None:
    if empirical.empty:
        return None
    sel = empirical[empirical["arm"] == arm]
    if sel.empty:
        return None
    per_seed_fields = tuple(k for k in EMPIRICAL_COLUMNS if k not in ("arm", "kind"))
    # Per audit, the largest bounds over seeds (each seed is Bonferroni-corrected, so
    # the maximum holds at the result's confidence); read back from "per_seed" alone.
    by_audit = {
        str(audit): {"epsilon_lower_bound": json_safe(rows["epsilon_lower_bound"].max()),
                     "epsilon_lower_bound_gdp": json_safe(rows["epsilon_lower_bound_gdp"].max()),
                     "dp_violation": bool(rows["dp_violation"].any())}
        for audit, rows in sel.groupby("audit", sort=False)
    }
    return {
        "epsilon_lower_bound": float(sel["epsilon_lower_bound"].max()),
        "dp_violation": bool(sel["dp_violation"].any()),
        "by_audit": by_audit,
        "per_seed": [_fields(r, per_seed_fields) for _, r in sel.iterrows()],
    }


def _method(row: pd.Series) -> str | None:
    """An interval's method name; None for rows read from a file written before 1.1."""
    value = row.get("ci_method")
    return None if is_missing(value) else str(value)


def _fields(row: pd.Series, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: json_safe(row[k]) for k in names}


def _records(df: pd.DataFrame, arm: str) -> list[dict[str, Any]] | None:
    sel = df[df["arm"] == arm].drop(columns="arm")
    if sel.empty:
        return None
    return [{str(k): json_safe(v) for k, v in r.items()} for r in sel.to_dict(orient="records")]


# ------------------------------------------------------------------ decode


@dataclass
class _FrameRows:
    """Rows of every result frame, collected arm by arm while reading results.json."""

    arms: list[dict[str, Any]] = field(default_factory=list)
    by_group: list[dict[str, Any]] = field(default_factory=list)
    overall: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    privacy: list[dict[str, Any]] = field(default_factory=list)
    mia: list[dict[str, Any]] = field(default_factory=list)
    empirical: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {key: [] for key in _RECORD_FRAMES})

    def add_arm(self, arm: Mapping[str, Any]) -> None:
        name, kind = arm["name"], arm["kind"]
        self.arms.append({"arm": name, "kind": kind, "params": arm["params"]})
        for seed, block in _seed_blocks(arm["metrics"]):
            self._add_metrics(name, kind, seed, block)
        priv = arm["privacy"]
        for attack, blocks in (priv.get("mia") or {}).items():
            for seed, block in _seed_blocks(blocks):
                for group, metrics in [("overall", block["overall"]), *block["by_group"].items()]:
                    for metric, st in metrics.items():
                        self.mia.append({"arm": name, "kind": kind, "seed": seed, "attack": attack,
                                         "group": group, "metric": metric,
                                         **_restored(st, MIA_STAT_FIELDS)})
        for entry in (priv.get("empirical") or {}).get("per_seed", []):
            self.empirical.append({"arm": name, "kind": kind,
                                   **{k: none_to_nan(v) for k, v in entry.items()}})
        for key in _RECORD_FRAMES:
            self.records[key] += [{**r, "arm": name} for r in arm.get(key) or []]
        for entry in priv.get("per_seed", []):
            self.privacy.append({"arm": name, "kind": kind, "seed": entry["seed"],
                                 **_restored(entry, PRIVACY_FIELDS)})
        self.privacy.append({"arm": name, "kind": kind, "seed": None,
                             **_restored(priv, PRIVACY_FIELDS)})

    def _add_metrics(self, name: str, kind: str, seed: int | None, block: Mapping[str, Any]) -> None:
        at = {"arm": name, "kind": kind, "seed": seed}
        for metric, st in block["overall"].items():
            self.overall.append({**at, "metric": metric, **_restored(st, STAT_FIELDS),
                                 "ci_method": st.get("ci_method"), "n": st["n"]})
        for group, metrics in block["by_group"].items():
            for metric, st in metrics.items():
                self.by_group.append({**at, "group": group, "metric": metric,
                                      **_restored(st, STAT_FIELDS), "ci_method": st.get("ci_method"),
                                      "n": st["n"]})
        for metric, kinds in block["gaps"].items():
            for gap, st in kinds.items():
                self.gaps.append({**at, "metric": metric, "gap": gap, **_restored(st, STAT_FIELDS),
                                  "ci_method": st.get("ci_method"),
                                  "max_group": st["max_group"], "min_group": st["min_group"],
                                  "exceeds_uncertainty": nullable_bool(st["exceeds_uncertainty"])})


def _seed_blocks(blocks: Mapping[str, Any]) -> list[tuple[int | None, Mapping[str, Any]]]:
    """(seed, block) pairs of an aggregate-plus-seeds entry; the aggregate has seed None."""
    return [(None, blocks[AGGREGATE])] + [(b["seed"], b) for b in blocks["seeds"]]


def _restored(stats: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    # Fields added since a file was written are read as missing; the others are required.
    return {k: none_to_nan(stats.get(k) if k in PRIVACY_FIELDS_SINCE_1_2 else stats[k]) for k in names}


def result_from_dict(cls: type[AuditResult], data: Mapping[str, Any]) -> AuditResult:
    """Rebuild a result of class ``cls`` from :func:`result_to_dict` output."""
    check_schema_version(data)
    version = str(data["schema_version"])
    rows = _FrameRows()
    solutions: dict[str, Any] = {}
    for arm in data["arms"]:
        if arm.get("solver") is not None:
            solutions[arm["name"]] = arm["solver"]
        rows.add_arm(arm)
    arm_order = [a["arm"] for a in rows.arms]
    missing = data.get("missing_features") or {}
    by_group, overall, gaps, privacy = normalise_frames(
        pd.DataFrame(rows.by_group), pd.DataFrame(rows.overall), pd.DataFrame(rows.gaps),
        pd.DataFrame(rows.privacy), arm_order,
    )
    return cls(
        config=dict(data["config"]), dataset=dict(data["dataset"]),
        arms=pd.DataFrame(rows.arms, columns=list(ARMS_COLUMNS)),
        by_group=by_group, overall=overall, gaps=gaps, privacy=privacy,
        meta=dict(data.get("meta", {})), solutions=solutions,
        mia=normalise_mia(pd.DataFrame(rows.mia), arm_order),
        empirical=normalise_empirical(pd.DataFrame(rows.empirical), arm_order),
        mechanism=frame_from_records(rows.records["mechanism"], MECHANISM_COLUMNS),
        mechanism_reference=dict(data.get("mechanism_reference") or {}),
        dp_cost=frame_from_records(rows.records["dp_cost"], DP_COST_COLUMNS),
        gap_changes=frame_from_records(rows.records["gap_changes"], GAP_CHANGE_COLUMNS),
        roc=frame_from_records(rows.records["roc"], ROC_COLUMNS),
        missing=frame_from_records(rows.records["missing"], MISSING_COLUMNS),
        missing_match=frame_from_records(list(missing.get("match") or []), MISSING_MATCH_COLUMNS),
        missing_setup=dict(missing.get("setup") or {}),
        schema_version=version,
    )


def result_from_json(cls: type[AuditResult], source: str | Path) -> AuditResult:
    """Read a result of class ``cls`` from a JSON string or a ``results.json`` path."""
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
    # Checked against the schema first (tens of milliseconds, a small part of building
    # the frames): a corrupted file then fails with the field at fault named, not with a
    # KeyError from deep inside the reader.
    validate_results(data)
    try:
        return result_from_dict(cls, data)
    except (KeyError, TypeError) as exc:
        raise DataFileError(f"results JSON is missing or has a malformed field: {exc}") from None
