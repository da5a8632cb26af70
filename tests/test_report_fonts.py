"""PDF fonts: every font embedded, the CJK font found and its fallback, and the checks
(``pdf_checks.assert_pdf_sound``) shown to reject what they should."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdf_checks import assert_pdf_sound, needs_pdf_tools, pdf_fonts, pdf_problems
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from reports import _figures, _fonts
from reports._content import Paragraph, Report, Section
from reports._pdf import _markup, _runs, render_pdf_bytes

needs_cjk_font = pytest.mark.skipif(_fonts.cjk_font_file() is None,
                                    reason="no CJK TrueType font installed; .ci/run installs "
                                           "fonts-wqy-microhei")

#: Non-Latin characters the reports print or group names may hold, besides CJK.
SYMBOLS = "ε δ ≤ ≥ × ± → ← — – … · √ ∞ ≈ ≠ ° µ ² é ü ß ñ Ω α β σ Я"


def small_report(*texts: str, code: str = "") -> Report:
    blocks = [Paragraph(t, "body") for t in texts] + ([Paragraph(code, "code")] if code else [])
    return Report(title="fonts", violation=None,
                  sections=[Section(key="overview", title="1. Fonts", blocks=blocks)])


@pytest.fixture()
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a machine without any CJK TrueType font."""
    monkeypatch.setattr(_fonts, "cjk_font_file", lambda: None)
    monkeypatch.setattr(_figures, "cjk_font_file", lambda: None)
    _fonts.cjk_font.cache_clear()
    yield
    _fonts.cjk_font.cache_clear()  # the next caller finds the real font again


def test_dejavu_has_every_symbol_and_only_cjk_goes_to_the_cjk_font() -> None:
    for font in (_fonts.SANS, _fonts.BOLD, _fonts.MONO):
        assert not [c for c in SYMBOLS if ord(c) not in _fonts.covers(font)], font
    cjk = _fonts.cjk_font().name
    runs = _runs(f"{SYMBOLS} 女性 group", _fonts.SANS)
    assert runs == [(_fonts.SANS, f"{SYMBOLS} "), (cjk, "女性"), (_fonts.SANS, " group")]
    assert _markup("a<b 女") == f'a&lt;b <font name="{cjk}">女</font>'


@needs_pdf_tools
@needs_cjk_font
def test_symbols_chinese_and_code_blocks_are_embedded_and_come_out_as_text(tmp_path: Path) -> None:
    text = f"{SYMBOLS} 女性 group"
    data, _ = render_pdf_bytes(small_report(text, code='groups: ["女性", "男性"]\n    ε ≤ 3'))
    (tmp_path / "f.pdf").write_bytes(data)
    assert_pdf_sound(tmp_path / "f.pdf")
    names = {f["name"].split("+", 1)[1] for f in pdf_fonts(tmp_path / "f.pdf")}
    assert {"DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"} < names
    assert "STSong-Light" not in names and len(names) == 4  # and the CJK font
    extracted = " ".join(PdfReader(str(tmp_path / "f.pdf")).pages[0].extract_text().split())
    assert text in extracted
    assert 'groups: ["女性", "男性"]' in extracted  # a code block holds Chinese too


@needs_pdf_tools
def test_the_check_rejects_base14_fonts(tmp_path: Path) -> None:
    """What every report was before: Helvetica and Courier named, not embedded."""
    path = tmp_path / "helvetica.pdf"
    canvas = Canvas(str(path))
    canvas.setFont("Helvetica", 12)
    canvas.drawString(72, 720, "Helvetica is not embedded")
    canvas.setFont("Courier", 12)
    canvas.drawString(72, 700, "nor is Courier")
    canvas.save()
    assert pdf_problems(path) == ["font Helvetica (Type 1) is not embedded",
                                  "font Courier (Type 1) is not embedded"]
    with pytest.raises(AssertionError, match="Helvetica"):
        assert_pdf_sound(path)


@needs_pdf_tools
def test_the_check_rejects_a_damaged_file(tmp_path: Path) -> None:
    data, _ = render_pdf_bytes(small_report("fine"))
    assert_pdf_sound(data)
    # Shift every object after the header by a byte: the cross-reference table now
    # points one byte off, which qpdf reports (and repairs) as damage.
    damaged = data.replace(b"\n", b"\n ", 2)
    problems = pdf_problems(_write(tmp_path / "damaged.pdf", damaged))
    assert len(problems) == 1 and problems[0].startswith("qpdf --check"), problems
    with pytest.raises(AssertionError, match="qpdf"):
        assert_pdf_sound(damaged)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@needs_pdf_tools
def test_without_a_cjk_font_the_fallback_is_warned_about_and_rejected(no_cjk_font: None,
                                                                      tmp_path: Path) -> None:
    """The documented fallback: STSong-Light, not embedded, with a warning -- and the
    suite's check catches it."""
    with pytest.warns(UserWarning, match="no CJK TrueType font found"):
        data, _ = render_pdf_bytes(small_report("女性 group"))
    path = _write(tmp_path / "fallback.pdf", data)
    assert [(f["name"], f["emb"]) for f in pdf_fonts(path) if f["emb"] == "no"] == [("STSong-Light", "no")]
    assert "女性 group" in PdfReader(str(path)).pages[0].extract_text()
    with pytest.raises(AssertionError, match="STSong-Light"):
        assert_pdf_sound(path)
    # Latin-only reports need no CJK font: no fallback, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_pdf_sound(render_pdf_bytes(small_report(f"{SYMBOLS} group"))[0])


@needs_cjk_font
def test_cjk_font_file_skips_what_it_cannot_embed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FAIRPRIV_CJK_FONT comes first, but a file that is no font, or a font without CJK
    glyphs (DejaVu), is passed over for the next candidate."""
    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    expected = _fonts.cjk_font_file()
    try:
        for bad in (_write(tmp_path / "not-a-font.ttf", b"no font"), dejavu, tmp_path / "missing.ttc"):
            monkeypatch.setenv("FAIRPRIV_CJK_FONT", str(bad))
            _fonts.cjk_font_file.cache_clear()
            assert _fonts.cjk_font_file() == expected
        assert expected is not None
        monkeypatch.setenv("FAIRPRIV_CJK_FONT", expected.path)
        _fonts.cjk_font_file.cache_clear()
        assert _fonts.cjk_font_file() == expected
    finally:
        _fonts.cjk_font_file.cache_clear()


@needs_cjk_font
def test_figures_draw_chinese_even_when_matplotlib_font_cache_predates_the_font(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib's font list is a cache built once; a CJK font installed later is not in
    it. The figures add the font the PDF embeds, so no glyph goes missing."""
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    found = _fonts.cjk_font_file()
    assert found is not None
    manager = font_manager.fontManager
    monkeypatch.setattr(manager, "ttflist", [e for e in manager.ttflist if e.name != found.family])
    with _figures.figure_style(), warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        fig = plt.figure()
        fig.text(0.1, 0.5, "女性 ε ≤ 3")
        fig.canvas.draw()
        plt.close(fig)
    assert found.family in {e.name for e in manager.ttflist}
