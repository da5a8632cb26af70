"""fairpriv's reports: one content model rendered to PDF and to a self-contained HTML file.

Depends on :mod:`audit`, never the reverse::

    from reports import render_pdf, render_html
    render_pdf(result, "report.pdf"); render_html(result, "report.html")

Renderers are registered by format (``RENDERERS``) and only lay out what
:func:`build_report` produced, so both formats show the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from audit import AuditResult

from ._content import SECTION_TITLES, Report, build_report
from ._html import write_html
from ._pdf import write_pdf

__all__ = ["RENDERERS", "SECTION_TITLES", "Report", "build_report", "render_html", "render_pdf"]

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
