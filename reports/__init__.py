"""fairpriv's reports: one content model rendered to PDF and to a self-contained HTML file.

Depends on :mod:`audit`, never the reverse::

    from reports import render_pdf, render_html
    render_pdf(result, "report.pdf"); render_html(result, "report.html")

Renderers are registered by format (``RENDERERS``) and only lay out what
:func:`build_report` produced, so both formats show the same numbers. Front ends
that show a report piece by piece (the app) use the same public names: the figure
functions (PNG bytes; :func:`solution_tradeoff_figure` and its caption
:func:`dropout_tradeoff_caption` for a group-dropout solution, :func:`roc_caption` for
:func:`roc_figure`), :func:`tradeoff_points`,
and the in-memory renderers :func:`render_pdf_bytes` and :func:`render_html_text`.
A results page uses the report's own content helpers: :func:`summary_table` (one row
per arm), :func:`findings`, :func:`reading_guide`, :func:`mia_table` (membership
inference by arm and group) and :data:`glossary` (term -> one line, for help texts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from audit import AuditResult

from ._content import (
    SECTION_TITLES,
    Report,
    build_report,
    dropout_tradeoff_caption,
    glossary,
    guarantee_notes,
    has_group_errors,
    solution_tradeoff_figure,
    tradeoff_points,
)
from ._figures import (
    ArmStyle,
    arm_styles,
    dropout_tradeoff_figure,
    gap_curve_figure,
    group_error_figure,
    mechanism_figure,
    privacy_bounds_figure,
    roc_caption,
    roc_figure,
    tradeoff_figure,
)
from ._html import render_html_text, write_html
from ._missing import (
    MATCH_CAPTION,
    MATCH_TEXT,
    missing_captions,
    missing_error_figure,
    missing_match_figure,
    missing_tables,
)
from ._pdf import render_pdf_bytes, write_pdf
from ._sweep import (
    build_sweep_report,
    render_sweep_html,
    render_sweep_pdf,
    sweep_frontier_figure,
    sweep_gap_figure,
    sweep_group_error_figure,
)
from ._tables import dp_cost_caption, dp_cost_table, mia_table, summary_table
from ._words import findings, reading_guide

# Grouped by what they do: content, rendering, figures.
__all__ = [
    # content model: every number and sentence of a report, and the pieces a front end
    # shows on its own (the same words and numbers as the report)
    "MATCH_CAPTION",
    "MATCH_TEXT",
    "SECTION_TITLES",
    "Report",
    "build_report",
    "dropout_tradeoff_caption",
    "dp_cost_caption",
    "dp_cost_table",
    "findings",
    "glossary",
    "guarantee_notes",
    "has_group_errors",
    "mia_table",
    "missing_captions",
    "missing_tables",
    "reading_guide",
    "summary_table",
    "tradeoff_points",
    # renderers: a Report (or an AuditResult) to PDF / HTML
    "RENDERERS",
    "render_html",
    "render_html_text",
    "render_pdf",
    "render_pdf_bytes",
    "write_html",
    "write_pdf",
    # sweeps: the privacy-fairness frontier over epsilons and dropout budgets
    "build_sweep_report",
    "render_sweep_html",
    "render_sweep_pdf",
    "sweep_frontier_figure",
    "sweep_gap_figure",
    "sweep_group_error_figure",
    # figures: PNG bytes, one fixed style per arm
    "ArmStyle",
    "arm_styles",
    "dropout_tradeoff_figure",
    "gap_curve_figure",
    "group_error_figure",
    "missing_error_figure",
    "missing_match_figure",
    "mechanism_figure",
    "privacy_bounds_figure",
    "roc_caption",
    "roc_figure",
    "solution_tradeoff_figure",
    "tradeoff_figure",
]

#: format -> writer(report, path); returns the page count for paged formats.
RENDERERS: dict[str, Callable[[Report, str | Path], int | None]] = {
    "pdf": write_pdf,
    "html": write_html,
}


def render_pdf(result: AuditResult, path: str | Path) -> int:
    """Write the PDF report of ``result`` to ``path``; returns the number of pages."""
    return write_pdf(build_report(result), path)


def render_html(result: AuditResult, path: str | Path) -> None:
    """Write the self-contained HTML report of ``result`` to ``path``."""
    write_html(build_report(result), path)
