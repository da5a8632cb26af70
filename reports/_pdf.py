"""PDF renderer (ReportLab platypus) for the report content model.

Every font in the PDF is embedded (subsets of TrueType fonts, see :mod:`reports._fonts`):
DejaVu Sans and DejaVu Sans Mono from matplotlib's own files for Latin text and symbols,
and a CJK system font for what DejaVu lacks. When no CJK TrueType font is installed, such
text falls back to the standard CID font STSong-Light, not embedded, with a warning.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
    XPreformatted,
)

from ._content import Figure, Report
from ._content import Paragraph as TextBlock
from ._content import Table as TableBlock
from ._fonts import BOLD, CJK_FALLBACK, FALLBACK_WARNING, MONO, SANS, cjk_font, covers

__all__ = ["render_pdf_bytes"]

_BASE = getSampleStyleSheet()
# The sample sheet's styles name Helvetica (not embedded): every style sets its font.
_SANS = {"fontName": SANS, "bulletFontName": SANS}
_BOLD = {"fontName": BOLD, "bulletFontName": BOLD}
STYLES = {
    "title": ParagraphStyle("t", parent=_BASE["Title"], fontSize=18, leading=22, **_BOLD),
    "h1": ParagraphStyle("h1", parent=_BASE["Heading2"], fontSize=13, leading=16, spaceBefore=8,
                         keepWithNext=1, **_BOLD),
    "body": ParagraphStyle("b", parent=_BASE["BodyText"], fontSize=9, leading=12, alignment=TA_LEFT,
                           **_SANS),
    "finding": ParagraphStyle("f", parent=_BASE["BodyText"], fontSize=9.5, leading=12.5,
                              leftIndent=8, bulletIndent=0, spaceAfter=3, **_SANS),
    "note": ParagraphStyle("n", parent=_BASE["BodyText"], fontSize=8.5, leading=11,
                           textColor=colors.HexColor("#444444"), **_SANS),
    "warning": ParagraphStyle("w", parent=_BASE["BodyText"], fontSize=11, leading=14,
                              textColor=colors.HexColor("#b00020"),
                              borderColor=colors.HexColor("#b00020"), borderWidth=1.2,
                              borderPadding=6, spaceBefore=6, spaceAfter=10, **_BOLD),
    "cell": ParagraphStyle("c", parent=_BASE["BodyText"], fontSize=7.5, leading=9, **_SANS),
    "head": ParagraphStyle("hd", parent=_BASE["BodyText"], fontSize=7.5, leading=9, **_BOLD),
    "caption": ParagraphStyle("cap", parent=_BASE["BodyText"], fontSize=8, leading=10,
                              textColor=colors.HexColor("#333333"), spaceAfter=6, **_SANS),
    "code": ParagraphStyle("code", fontName=MONO, bulletFontName=MONO, fontSize=6.5, leading=7.5),
}


def _runs(text: str, font: str) -> list[tuple[str, str]]:
    """``text`` cut into ``(font, run)`` pieces: characters ``font`` has a glyph for stay
    in it, the others (Chinese etc.) go to the CJK font, looked up only when needed."""
    have = covers(font)
    other: str | None = None
    runs: list[tuple[str, str]] = []
    for ch in text:
        use = font
        if ord(ch) not in have and ch not in "\n\r\t":
            other = other or cjk_font().name
            use = other
        if runs and runs[-1][0] == use:
            runs[-1] = (use, runs[-1][1] + ch)
        else:
            runs.append((use, ch))
    return runs


def _markup(text: str, font: str = SANS) -> str:
    """Escape for ReportLab's mini-HTML, with the runs ``font`` has no glyphs for in the
    CJK font."""
    return "".join(escape(run) if name == font else f'<font name="{name}">{escape(run)}</font>'
                   for name, run in _runs(text, font))


def _para(text: str, style: str) -> Paragraph:
    return Paragraph(_markup(text, STYLES[style].fontName), STYLES[style])


def _fits(flow: list, width: float, height: float) -> bool:
    """Whether ``flow`` fits on one page: only then can KeepTogether keep it together.
    Kept together but taller than a page, ReportLab moves it to a fresh page all the
    same and leaves the one before blank but for what came first (a section title)."""
    # The frame pads its content by 6 pt on each side.
    return sum(f.wrap(width, height)[1] for f in flow) <= height - 12


def _table(block: TableBlock, width: float) -> list:
    header = [_para(h, "head") for h in block.header] if any(block.header) else None
    data = [[_para(c, "cell") for c in row] for row in block.rows]
    if header:
        data.insert(0, header)
    if not data:
        return []
    table = Table(data, repeatRows=1 if header else 0, hAlign="LEFT",
                  colWidths=_column_widths(block, width))
    style = [
        # Cells hold Paragraphs, but ReportLab selects the cell font (default Helvetica,
        # not embedded) before drawing each one.
        ("FONTNAME", (0, 0), (-1, -1), SANS),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf5")))
    table.setStyle(TableStyle(style))
    return [table, _para(block.caption, "caption")] if block.caption else [table]


#: Cells longer than this (in points) wrap instead of widening their column further.
_CELL_CAP = 190.0
#: Left plus right padding of a table cell, in points (ReportLab's default 6 + 6), and a
#: little slack for the bold header font.
_PADDING = 13.0


def _text_width(text: str, bold: bool = False) -> float:
    style = STYLES["head" if bold else "cell"]
    return sum(float(pdfmetrics.stringWidth(run, font, style.fontSize))
               for font, run in _runs(text, style.fontName))


def _column_widths(block: TableBlock, width: float) -> list[float]:
    """Column widths from their content: every column at least as wide as its longest
    word (header or cell), so that no word is split; the room left goes to the columns
    whose cells would otherwise wrap, in proportion to what they need."""
    n = max([len(block.header), *(len(r) for r in block.rows)])
    least, want = [], []
    for j in range(n):
        head = block.header[j] if j < len(block.header) else ""
        cells = [r[j] for r in block.rows if j < len(r)]
        words = [w for text in [head, *cells] for w in text.split()]
        longest = max([_text_width(w, bold=True) for w in head.split()]
                      + [_text_width(w) for w in words], default=0.0)
        full = max([_text_width(head, bold=True)] + [_text_width(c) for c in cells], default=0.0)
        least.append(longest + _PADDING)
        want.append(max(longest, min(full, _CELL_CAP)) + _PADDING)
    if sum(least) >= width:  # even single words do not fit: shrink all alike
        return [width * w / sum(least) for w in least]
    if sum(want) <= width:  # everything fits on one line: spread the rest evenly
        return [w * width / sum(want) for w in want]
    spare = width - sum(least)
    extra = [w - m for w, m in zip(want, least, strict=True)]
    return [m + spare * e / sum(extra) for m, e in zip(least, extra, strict=True)]


def _figure(block: Figure, width: float, max_height: float) -> list:
    from reportlab.lib.utils import ImageReader

    reader = ImageReader(io.BytesIO(block.png))
    w, h = reader.getSize()
    scale = min(width / w, max_height / h)
    img = Image(io.BytesIO(block.png), width=w * scale, height=h * scale)
    return [img, _para(block.caption, "caption")]


def render_pdf_bytes(report: Report) -> tuple[bytes, int]:
    """Lay out ``report`` as a PDF; returns the bytes and the number of pages.

    Every font is embedded, except where no CJK TrueType font is installed and the report
    holds text DejaVu Sans cannot draw: that text is then set in the standard CID font
    STSong-Light, not embedded, and a :class:`UserWarning` says so.
    """
    buf = io.BytesIO()
    pages = {"n": 0}

    def footer(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        pages["n"] = doc.page
        canvas.saveState()
        canvas.setFont(SANS, 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(15 * mm, 10 * mm, f"fairpriv report - page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=18 * mm, title=report.title,
                            author="fairpriv",
                            # else each page's preamble selects Helvetica, not embedded
                            initialFontName=SANS)
    width, height = doc.width, doc.height
    story: list = [_para(report.title, "title")]
    if report.violation:
        story.append(_para(report.violation, "warning"))
    for i, section in enumerate(report.sections):
        if section.key in ("fairness", "appendix") and i > 0:  # they start on a new page
            story.append(PageBreak())
        for j, block in enumerate(section.blocks):
            if isinstance(block, TextBlock):
                if block.style == "code":
                    # Preformatted would set Chinese in the monospace font, as boxes.
                    flow: list = [XPreformatted(_markup(block.text, MONO), STYLES["code"])]
                else:
                    flow = [_para(block.text, block.style)]
            elif isinstance(block, TableBlock):
                flow = _table(block, width)
            else:
                flow = _figure(block, width, height * 0.45)
            if j == 0:
                flow = [_para(section.title, "h1"), *flow]
            # A table or figure stays with its caption, and a section's title with what
            # follows it, when they fit on one page; a longer table is free to split.
            story.extend([KeepTogether(flow)] if _fits(flow, width, height) else flow)
            story.append(Spacer(1, 4))
        if not section.blocks:
            story.append(_para(section.title, "h1"))
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    data = buf.getvalue()
    if f"/BaseFont /{CJK_FALLBACK}".encode() in data:
        warnings.warn(FALLBACK_WARNING, UserWarning, stacklevel=2)
    return data, pages["n"]


def write_pdf(report: Report, path: str | Path) -> int:
    data, pages = render_pdf_bytes(report)
    Path(path).write_bytes(data)
    return pages
