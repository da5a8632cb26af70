"""What every part of a report shares: the content blocks, number formatting, and the
facts about a result that decide which sections and sentences apply (its arm kinds,
whether it audits a model trained elsewhere, which rows were evaluated)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from audit import CANARY_AUDITS, AuditResult, format_interval, format_number

from ._figures import level_text

__all__ = ["Block", "Figure", "Paragraph", "Report", "Section", "Table", "fmt", "level_text"]

#: Arm kinds that train with dropout, and the kind of an audited external model.
DROPOUT_KINDS = frozenset({"uniform_dropout", "group_dropout"})
EXTERNAL_KIND = "external"


@dataclass
class Paragraph:
    text: str
    style: str = "body"  # body | finding | warning | note | code


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    png: bytes
    caption: str


Block = Paragraph | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    #: Which section this is ("overview", "findings", ...), whatever its number.
    key: str = ""


@dataclass
class Report:
    title: str
    violation: str | None
    sections: list[Section]


def fmt(value: Any, digits: int = 3, *, reason: str = "") -> str:
    """A number as shown everywhere in reports; missing values as 'n/a (reason)'."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return f"n/a ({reason})" if reason else "n/a"
    return format_number(value, digits)


def ci_cell(row: Any, digits: int = 3, *, signed: bool = False) -> str:
    """A table cell "value [low, high]" (only the value without an interval)."""
    return format_interval(row["value"], row["ci_low"], row["ci_high"], digits, signed=signed)


def ci_words(value: Any, low: Any, high: Any, level: float, digits: int = 3) -> str:
    """For sentences: "value (95% CI low to high)"."""
    return format_interval(value, low, high, digits, level=level)


#: Every section a report can have, in order: key -> name (numbered in the report).
SECTION_NAMES = {
    "overview": "Audit overview",
    "findings": "Findings",
    "fairness": "Fairness: error by group",
    "group_dropout": "Group-specific dropout",
    "privacy": "Privacy",
    "tradeoffs": "Trade-offs",
    "missing": "Missing features at test time",
    "mechanism": "Why dropout is not differential privacy",
    "limits": "Assumptions and limits",
    "appendix": "Appendix: glossary, configuration and per-seed numbers",
}


def section_titles(result: AuditResult) -> dict[str, str]:
    """The sections that apply to ``result``, key -> numbered title, in order.

    Left out where they do not apply: group-specific dropout without a group_dropout
    arm, the trade-offs with a single arm, missing features unless measured, why dropout
    is not DP without a dropout arm.
    An audit of a model trained elsewhere has no per-seed numbers in its appendix.
    """
    keys = list(SECTION_NAMES)
    if not has_kind(result, "group_dropout") and not result.solutions:
        keys.remove("group_dropout")
    if len(result.arm_names) < 2:
        keys.remove("tradeoffs")
    if not has_dropout(result):
        keys.remove("mechanism")
    if result.missing.empty:
        keys.remove("missing")
    names = dict(SECTION_NAMES)
    if is_external(result):
        names["appendix"] = "Appendix: glossary and configuration"
    return {k: f"{i}. {names[k]}" for i, k in enumerate(keys, 1)}


def arm_kinds(result: AuditResult) -> dict[str, str]:
    return {str(a): str(k) for a, k in zip(result.arms["arm"], result.arms["kind"], strict=True)}


def is_external(result: AuditResult) -> bool:
    """Whether ``result`` audits a model trained elsewhere (``audit_predictions``)."""
    kinds = set(arm_kinds(result).values())
    return bool(kinds) and kinds <= {EXTERNAL_KIND}


def has_dropout(result: AuditResult) -> bool:
    return bool(DROPOUT_KINDS & set(arm_kinds(result).values()))


def has_kind(result: AuditResult, kind: str) -> bool:
    return kind in set(arm_kinds(result).values())


def private_arms(result: AuditResult) -> list[str]:
    """The arms with a formal guarantee (an accountant's epsilon)."""
    return [a for a in result.arm_names if epsilon_text(result, a) != "no guarantee"]


def evaluated_rows(result: AuditResult) -> str:
    """Which rows the fairness metrics are on, for sentences."""
    ds = result.dataset
    if is_external(result) or "evaluated_rows" in ds:
        n = ds.get("evaluated_rows", ds.get("rows"))
        member = (ds.get("inputs") or {}).get("member")
        return (f"the uploaded predictions ({n} rows the model did not train on)" if member
                else f"the uploaded predictions (all {n} rows)")
    seeds = result.config.get("seeds", [])
    return ("the test rows, averaged over training seeds" if len(seeds) != 1
            else "the test rows (one training seed)")


def epsilon_text(result: AuditResult, arm: str) -> str:
    priv = result.aggregate("privacy")
    sel = priv[priv["arm"] == arm]
    if sel.empty or pd.isna(sel["epsilon"].iloc[0]):
        return "no guarantee"
    return fmt(sel["epsilon"].iloc[0], 2)


def gap_row(result: AuditResult, arm: str) -> pd.Series | None:
    gaps = result.aggregate("gaps")
    sel = gaps[(gaps["arm"] == arm) & (gaps["metric"] == "error_rate") & (gaps["gap"] == "difference")]
    return None if sel.empty else sel.iloc[0]


def accuracy(result: AuditResult, arm: str) -> float:
    ov = result.aggregate("overall")
    sel = ov[(ov["arm"] == arm) & (ov["metric"] == "error_rate")]
    return math.nan if sel.empty else 1.0 - float(sel["value"].iloc[0])


def audit_label(audit: str) -> str:
    info = CANARY_AUDITS.get(audit)
    return info.label if info is not None else audit


def within_noise_text(exceeds: Any) -> str:
    """A gap's reading against its uncertainty, for a table cell."""
    if exceeds is None or pd.isna(exceeds):
        return "no interval"
    return "yes" if bool(exceeds) else "no (within noise)"

