"""Checks for every PDF the suite renders: every font embedded (``pdffonts``) and a sound
file structure (``qpdf --check``).

A font that is only named, not embedded (the base-14 Helvetica, the CID font
STSong-Light), is drawn with whatever the viewer substitutes: the same report then looks
different, or loses its Chinese text, from one machine to the next.

Both tools are system packages (poppler-utils, qpdf) that ``.ci/run`` installs. Where one
is missing, :func:`assert_pdf_sound` does the check it can and warns about the other (the
test keeps its own checks); tests about the checks themselves use :data:`needs_pdf_tools`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

PDFFONTS = shutil.which("pdffonts")
QPDF = shutil.which("qpdf")
needs_pdf_tools = pytest.mark.skipif(
    not (PDFFONTS and QPDF),
    reason="pdffonts (poppler-utils) or qpdf not installed; .ci/run installs both")


def pdf_fonts(path: Path) -> list[dict[str, str]]:
    """The rows of ``pdffonts PATH``: name, type, encoding, emb, sub, uni."""
    assert PDFFONTS, "pdffonts not installed"
    out = subprocess.run([PDFFONTS, str(path)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = []
    for line in lines[start:]:
        # name and type may hold spaces ("CID Type 0", "[none]"); the last six columns
        # never do: encoding emb sub uni object-number generation.
        *head, encoding, emb, sub, uni, _obj, _gen = line.split()
        rows.append({"name": head[0], "type": " ".join(head[1:]), "encoding": encoding,
                     "emb": emb, "sub": sub, "uni": uni})
    return rows


def pdf_problems(path: Path) -> list[str]:
    """What is wrong with the PDF at ``path``: fonts not embedded, qpdf's errors and
    warnings. Empty if sound; checks a missing tool cannot do are left out."""
    problems = []
    if PDFFONTS:
        problems += [f"font {f['name']} ({f['type']}) is not embedded" for f in pdf_fonts(path)
                     if f["emb"] != "yes"]
    if QPDF:
        # Exit status 0: clean; 2: errors; 3: warnings only. Either is a defect here.
        run = subprocess.run([QPDF, "--check", str(path)], capture_output=True, text=True)
        if run.returncode != 0 or "WARNING" in run.stdout + run.stderr:
            problems.append(f"qpdf --check (exit {run.returncode}): "
                            + (run.stdout + run.stderr).strip().replace("\n", " | "))
    return problems


def assert_pdf_sound(pdf: Path | bytes) -> None:
    """Assert that every font of ``pdf`` (a path or the file's bytes) is embedded and that
    ``qpdf --check`` finds nothing wrong with it."""
    missing = [name for name, tool in (("pdffonts", PDFFONTS), ("qpdf", QPDF)) if not tool]
    if missing:
        warnings.warn(f"{' and '.join(missing)} not installed: PDF not fully checked "
                      "(.ci/run installs poppler-utils and qpdf)", stacklevel=2)
    if isinstance(pdf, bytes):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "check.pdf"
            path.write_bytes(pdf)
            problems = pdf_problems(path)
    else:
        problems = pdf_problems(Path(pdf))
    assert not problems, problems
