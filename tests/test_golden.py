"""Behaviour pinned across refactors: a small audit's results.json, field by field.

``tests/golden/small_audit.json`` was written by ``tests/golden/make_golden.py`` before
the engine was restructured. A change that alters numbers on purpose regenerates it in
the same commit and says why in the message.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).with_name("golden")
#: Attacks the engine gained after the golden file was written. The golden audit trains
#: shadow models, so it scores them too; the file is not regenerated for them (no number
#: it holds changed, and the default audit, ``mia="loss"``, does not run them), so they
#: are checked to be there and then set aside before the comparison.
ATTACKS_AFTER_GOLDEN = ("rmia",)


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differences(expected: Any, actual: Any, path: str = "$") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}: keys {sorted(set(expected) ^ set(actual))} differ"] if set(expected) != set(
            actual) else []
        for key in sorted(set(expected) & set(actual)):
            out += _differences(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(expected)} != {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in _differences(e, a, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, float) and _close(expected, actual):
        return []
    return [] if expected == actual and type(expected) is type(actual) else [
        f"{path}: {expected!r} != {actual!r}"]


#: Floats match to this relative tolerance. The audit is deterministic on CPU for fixed seeds
#: within one environment, and that is checked exactly elsewhere (test_runner's
#: test_same_seed_gives_identical_metrics, test_training's bit-identical seeds); across
#: releases of numpy, pandas or torch, float32 training and numpy's own routines round the
#: last digits differently (in December 2026 a fresh install moved 140 fields by at most
#: 4e-7 relative). 1e-5 is far above that noise and far below any change that alters a
#: reported number (rates and gaps print with 3 decimals).
FLOAT_RTOL = 1e-5


def _close(expected: float, actual: float) -> bool:
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    return abs(expected - actual) <= FLOAT_RTOL * max(abs(expected), abs(actual)) + 1e-12


def _set_aside_later_attacks(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Drop from ``actual`` the attacks of :data:`ATTACKS_AFTER_GOLDEN` that ``expected``
    lacks, after checking that every arm has their metrics and ROC points."""
    for want, got in zip(expected["arms"], actual["arms"], strict=True):
        for attack in ATTACKS_AFTER_GOLDEN:
            if attack in (want["privacy"]["mia"] or {}):
                continue  # the golden file has it: compared like everything else
            assert attack in got["privacy"]["mia"], f"arm {got['name']}: no {attack} metrics"
            del got["privacy"]["mia"][attack]
            later = [r for r in got["roc"] if r["attack"] == attack]
            assert later, f"arm {got['name']}: no {attack} ROC points"
            got["roc"] = [r for r in got["roc"] if r["attack"] != attack]


def test_small_audit_matches_the_golden_file() -> None:
    generator = _load_generator()
    expected = json.loads(generator.GOLDEN.read_text())
    actual = json.loads(json.dumps(generator.golden_result(), sort_keys=True))
    _set_aside_later_attacks(expected, actual)
    diffs = _differences(expected, actual)
    assert not diffs, f"{len(diffs)} fields differ from the golden file, e.g.:\n" + "\n".join(diffs[:15])


def test_the_comparison_sees_a_changed_number() -> None:
    golden = {"arms": [{"metrics": {"error": 0.125, "label": "a"}}]}
    changed = {"arms": [{"metrics": {"error": 0.12502, "label": "a"}}]}
    rounding = {"arms": [{"metrics": {"error": 0.1250000001, "label": "a"}}]}
    assert _differences(golden, golden) == [] and _differences(golden, rounding) == []
    assert _differences(golden, changed) == ["$.arms[0].metrics.error: 0.125 != 0.12502"]
    assert _differences({"x": float("nan")}, {"x": float("nan")}) == []
    assert _differences({"x": float("nan")}, {"x": 0.0})
    assert _differences({"a": 1}, {"a": 1.0})  # a type change counts too
