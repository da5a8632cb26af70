"""Fonts for the PDF report (and the CJK font its figures share), all embedded.

A PDF that names a font without embedding it (the base-14 Helvetica, or the CID font
STSong-Light) is drawn with whatever the viewer substitutes, so the same report looks
different, or loses its Chinese text, from one machine to the next. The report therefore
embeds subsets of TrueType fonts only:

* Latin, Greek, Cyrillic and the symbols the reports print (ε, ≤, ×, ±, arrows, dashes):
  DejaVu Sans (regular, bold, oblique, bold oblique) and DejaVu Sans Mono, read from
  matplotlib's own ``mpl-data/fonts/ttf`` -- matplotlib is a dependency, so they are
  always there, on every machine the same files.
* Anything DejaVu Sans lacks (Chinese, Japanese, Korean group names): a CJK TrueType font
  found on the system by :func:`cjk_font_file` (``FAIRPRIV_CJK_FONT``, then known paths --
  ``fonts-wqy-microhei`` first, which CI installs --, then fontconfig, then matplotlib's
  font list).

Fallback when no CJK TrueType font is found: such text is set in the standard PDF CID
font STSong-Light, which is *not* embedded (viewers with Adobe's Asian font packs, and
poppler with any CJK system font, still draw it; others show nothing or boxes), and a
:class:`UserWarning` says so each time a PDF uses it. Characters neither font has are
drawn as the font's "missing glyph" box.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont, TTFontFace

__all__ = ["BOLD", "BOLD_OBLIQUE", "CJK_FALLBACK", "MONO", "OBLIQUE", "SANS", "CJKFile", "CJKFont",
           "FALLBACK_WARNING", "cjk_font", "cjk_font_file", "covers"]

#: ReportLab names of the embedded Latin fonts (those of the TrueType files).
SANS = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
OBLIQUE = "DejaVuSans-Oblique"
BOLD_OBLIQUE = "DejaVuSans-BoldOblique"
MONO = "DejaVuSansMono"
#: The registered name of the embedded CJK font, when one is found.
CJK_EMBEDDED = "FairprivCJK"
#: The standard (not embedded) CID font used when no CJK TrueType font is found.
CJK_FALLBACK = "STSong-Light"

#: Characters a CJK font must have to be used (女性: "female", a common group name).
_PROBE = "女性男中文"
#: Known CJK TrueType files, most wanted first: the same font on every machine where it is
#: installed keeps reports alike (CI installs fonts-wqy-microhei). OpenType/CFF fonts
#: (e.g. most Noto Sans CJK files) are not listed: ReportLab cannot embed them.
_KNOWN_CJK = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian/Ubuntu fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",  # macOS
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",  # Windows: Microsoft YaHei
    "C:/Windows/Fonts/simhei.ttf",
)


def _register_latin() -> None:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in (SANS, BOLD, OBLIQUE, BOLD_OBLIQUE, MONO):
        pdfmetrics.registerFont(TTFont(name, str(folder / f"{name}.ttf")))
    # So that <b>/<i> in paragraph markup pick the matching face, as with Helvetica.
    for bold, italic, face in ((0, 0, SANS), (1, 0, BOLD), (0, 1, OBLIQUE), (1, 1, BOLD_OBLIQUE)):
        addMapping(SANS, bold, italic, face)
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(MONO, bold, italic, MONO)


_register_latin()


@functools.cache
def covers(font: str) -> frozenset[int]:
    """The code points the registered TrueType ``font`` has a glyph for."""
    face = pdfmetrics.getFont(font).face  # type: ignore[attr-defined]
    return frozenset(face.charToGlyph)


class CJKFont(NamedTuple):
    """The font the PDF sets CJK text in."""

    #: ReportLab font name to use in markup and ``stringWidth``.
    name: str
    #: The TrueType file it was read from and the face in it; ``None`` for the fallback.
    path: str | None
    face: int
    #: Whether the PDF embeds it (``False`` only for the CID fallback).
    embedded: bool


def _faces(path: str, index: int | None) -> list[int]:
    if index is not None:
        return [index]
    if not path.lower().endswith(".ttc"):
        return [0]
    try:
        return list(range(TTFontFace(path).numSubfonts))
    except Exception:  # noqa: BLE001 - an unreadable file is just not a candidate
        return []


def _candidates() -> Iterator[tuple[str, int | None]]:
    """CJK font files to try, in order (index ``None``: any face of a collection). A
    generator: the later, slower sources are asked only when the earlier ones fail."""
    env = os.environ.get("FAIRPRIV_CJK_FONT")
    if env:
        yield env, None
    for path in _KNOWN_CJK:
        yield path, None
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}\n%{index}\n", ":lang=zh-cn"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        file, index = (out.splitlines() + ["", ""])[:2]
        if file:
            yield file, int(index) if index.isdigit() else None
    from matplotlib import font_manager, ft2font

    # matplotlib's list may hold fonts fontconfig does not. FreeType reads a font's
    # character map far faster than ReportLab parses the whole file: it screens them.
    for entry in font_manager.fontManager.ttflist:
        if not entry.fname.lower().endswith((".ttf", ".ttc")):
            continue
        try:
            charmap = ft2font.FT2Font(entry.fname).get_charmap()
        except Exception:  # noqa: BLE001 - an unreadable file is just not a candidate
            continue
        if all(ord(c) in charmap for c in _PROBE):
            yield entry.fname, getattr(entry, "index", None)


class CJKFile(NamedTuple):
    """A CJK TrueType font on this machine."""

    path: str
    #: The face in a collection (``.ttc``); 0 for a single font.
    face: int
    #: Its family name, as matplotlib knows it (e.g. "WenQuanYi Micro Hei").
    family: str


@functools.cache
def cjk_font_file() -> CJKFile | None:
    """The CJK TrueType font to embed, or ``None`` if there is none.

    Tried in order: the file named by the environment variable ``FAIRPRIV_CJK_FONT``;
    known paths (WenQuanYi Micro Hei first); what fontconfig (``fc-match :lang=zh-cn``)
    picks; CJK fonts in matplotlib's font list. The first TrueType face that ReportLab can
    read and that has the probe characters (女性男中文) wins. Cached for the process.
    """
    seen: set[tuple[str, int]] = set()
    for path, index in _candidates():
        if not os.path.isfile(path):
            continue
        for i in _faces(path, index):
            if (path, i) in seen:
                continue
            seen.add((path, i))
            try:
                face = TTFontFace(path, subfontIndex=i)
            except Exception:  # noqa: BLE001 - e.g. CFF outlines, which ReportLab cannot embed
                continue
            if all(ord(c) in face.charToGlyph for c in _PROBE):
                return CJKFile(path, i, face.familyName.decode("utf-8", "replace"))
    return None


_LOCK = threading.Lock()

#: What the renderer warns when a PDF had to use the (not embedded) fallback font.
FALLBACK_WARNING = ("no CJK TrueType font found (install e.g. fonts-wqy-microhei, or set "
                    "FAIRPRIV_CJK_FONT to a .ttf/.ttc file): non-Latin text in the PDF uses the "
                    f"standard font {CJK_FALLBACK}, which is not embedded, so viewers without it "
                    "show boxes or nothing")


@functools.cache
def cjk_font() -> CJKFont:
    """The font for text DejaVu Sans has no glyph for, registered with ReportLab on first use.

    An embedded TrueType font (see :func:`cjk_font_file`) when there is one; otherwise the
    standard CID font STSong-Light, not embedded (the PDF renderer then warns with
    :data:`FALLBACK_WARNING`). Cached for the process.
    """
    with _LOCK:
        found = cjk_font_file()
        if found is not None:
            pdfmetrics.registerFont(TTFont(CJK_EMBEDDED, found.path, subfontIndex=found.face))
            return CJKFont(CJK_EMBEDDED, found.path, found.face, True)
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FALLBACK))
        return CJKFont(CJK_FALLBACK, None, 0, False)
