"""Interval levels and canary confidence come from the result, never a fixed "95%"."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import (
    AuditConfig,
    AuditResult,
    BaselineArm,
    PrivacyAuditConfig,
    TrainingConfig,
    audit_predictions,
    run_audit,
)
from audit.result._views import level_text as summary_level_text
from reports import render_html
from reports._figures import level_text as report_level_text


def report_text(result: AuditResult, path: Path) -> str:
    """The HTML report's text as a reader sees it (tags, and so embedded figures, removed)."""
    render_html(result, path)
    return html.unescape(re.sub(r"<[^>]*>", " ", path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def result_at_90() -> AuditResult:
    config = AuditConfig(
        arms=(BaselineArm(),), seeds=1, n_bootstrap=20, ci_level=0.9,
        training=TrainingConfig(epochs=1),
        privacy_audit=PrivacyAuditConfig(confidence=0.9, canaries=100, mia_bootstrap=20),
    )
    return run_audit("synthetic", config, n_rows=1000)


def test_the_result_reads_its_levels_from_the_config(result_at_90: AuditResult) -> None:
    assert result_at_90.ci_level == 0.9
    assert result_at_90.confidence == 0.9
    back = AuditResult.from_json(result_at_90.to_json())
    assert (back.ci_level, back.confidence) == (0.9, 0.9)


def test_a_config_without_levels_reads_the_defaults(result_at_90: AuditResult) -> None:
    data = result_at_90.to_dict()
    data["config"] = {"seeds": [0]}
    old = AuditResult.from_dict(data)
    assert (old.ci_level, old.confidence) == (0.95, 0.95)


def test_report_and_summary_say_90_percent_never_95(result_at_90: AuditResult, tmp_path: Path) -> None:
    assert not result_at_90.empirical.empty  # the canary texts are part of what is checked
    text = report_text(result_at_90, tmp_path / "report.html")
    summary = result_at_90.summary()
    for rendered in (text, summary):
        assert "90%" in rendered
        assert "95%" not in rendered
    assert "90% CI" in text and "90% confidence" in text
    assert "error gap [90% CI]" in summary and "90% confidence" in summary


def test_an_external_audit_has_its_ci_level_and_the_default_confidence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y_true": rng.integers(0, 2, 200), "y_pred": rng.integers(0, 2, 200),
                          "sex": ["F", "M"] * 100})
    result = audit_predictions(frame, sensitive="sex", n_bootstrap=20, ci_level=0.9)
    assert (result.ci_level, result.confidence) == (0.9, 0.95)
    text = report_text(result, tmp_path / "report.html")
    assert "90% CI" in text and "95% CI" not in text


@pytest.mark.parametrize("level_text", [summary_level_text, report_level_text])
@pytest.mark.parametrize(("level", "text"), [(0.95, "95%"), (0.9, "90%"), (0.995, "99.5%"),
                                             (0.57, "57%")])
def test_levels_are_written_as_percentages(level_text, level: float, text: str) -> None:  # type: ignore[no-untyped-def]
    assert level_text(level) == text
