"""PDF and HTML reports: content, layout robustness, non-Latin names, violations."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main
from pdf_checks import PDFFONTS, assert_pdf_sound, needs_pdf_tools, pdf_fonts
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

from audit import (
    AuditConfig,
    AuditResult,
    BaselineArm,
    DPSGDArm,
    GroupDropoutArm,
    MissingFeaturesConfig,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
)
from reports import SECTION_TITLES, Report, build_report, render_html, render_pdf, write_html, write_pdf
from reports._content import Figure, Table, fmt
from reports._fonts import cjk_font, cjk_font_file

POPPLER = shutil.which("pdftoppm") is not None
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm) not installed; "
                                   ".ci/run installs it")
FAST = dict(seeds=2, n_bootstrap=30, training=TrainingConfig(epochs=1, hidden=(8,)),
            privacy_audit=PrivacyAuditConfig(canaries=100, mia_bootstrap=20, mechanism_rows=20,
                                             mechanism_masks=8))


def grouped_frame(n_groups: int, rows_per_group: int = 60, names: list[str] | None = None,
                  seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = names or [f"group-{i:02d}" for i in range(n_groups)]
    g = np.repeat(labels, rows_per_group)
    x = rng.normal(size=(len(g), 3))
    y = (x[:, 0] + rng.normal(0, 1, len(g)) > 0).astype(int)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "g": g, "y": y})


@pytest.fixture(scope="module")
def result() -> AuditResult:
    # Every section of a full report: all arm kinds, and missing features measured.
    cfg = AuditConfig(arms=(BaselineArm(), UniformDropoutArm(), GroupDropoutArm(), DPSGDArm()),
                      missing=MissingFeaturesConfig(rates={"majority": 0.1, "minority": 0.3}, grid=(0.3,),
                                                    train_grid=(0.0, 0.3), draws=1),
                      **FAST)  # type: ignore[arg-type]
    return run_audit(load_dataset("synthetic", n_rows=3000), cfg)


def render_sound_pdf(res: AuditResult, path: Path) -> int:
    """``render_pdf``, then the checks every rendered PDF passes (:func:`assert_pdf_sound`).

    Only where no CJK TrueType font is installed may a report with Chinese text use the
    documented fallback, STSong-Light, not embedded (and warned about).
    """
    pages = render_pdf(res, path)
    if b"/BaseFont /STSong-Light" in path.read_bytes():
        assert cjk_font_file() is None, "STSong-Light used although a CJK TrueType font exists"
        return pages
    assert_pdf_sound(path)
    return pages


def cjk_font_name() -> str:
    """The name the PDF gives the CJK font (after a subset tag: ``AAAAAA+``), as ReportLab
    writes it: the font's PostScript name, with ``-N`` for face N of a collection."""
    font = cjk_font()
    if not font.embedded:
        return font.name
    face = pdfmetrics.getFont(font.name).face  # type: ignore[attr-defined]
    return (face.name + face.subfontNameX).decode()


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def html_text(path: Path) -> tuple[str, list[str]]:
    parser = _TextParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return " ".join(parser.text), parser.tags


def test_pdf_and_html_carry_every_section_and_the_json_numbers(result: AuditResult, tmp_path: Path) -> None:
    json_path = tmp_path / "results.json"
    result.to_json(json_path)
    data = json.loads(json_path.read_text())
    pages = render_sound_pdf(result, tmp_path / "r.pdf")
    render_html(result, tmp_path / "r.html")
    assert pages == len(PdfReader(str(tmp_path / "r.pdf")).pages)
    text = " ".join(pdf_text(tmp_path / "r.pdf").split())
    html, tags = html_text(tmp_path / "r.html")
    html = " ".join(html.split())
    assert {"table", "img", "h2"} <= set(tags)
    for title in SECTION_TITLES:
        assert title in text and title in html
    for arm in data["arms"]:
        eps = arm["privacy"]["epsilon"]
        eps_text = "no guarantee" if eps is None else fmt(eps, 2)
        gap = arm["metrics"]["aggregate"]["gaps"]["error_rate"]["difference"]
        gap_text = f"{fmt(gap['value'])} [{fmt(gap['ci_low'])}, {fmt(gap['ci_high'])}]"
        for doc in (text, html):
            assert arm["name"] in doc
            assert eps_text in doc
            assert gap_text in doc, (arm["name"], gap_text)


@needs_pdf_tools
def test_every_font_of_the_report_is_embedded(result: AuditResult, tmp_path: Path) -> None:
    """A demo-like report holds only embedded, subset DejaVu fonts with a Unicode map (text
    stays copyable): no base-14 Helvetica or Courier, which viewers would substitute."""
    render_pdf(result, tmp_path / "r.pdf")
    fonts = pdf_fonts(tmp_path / "r.pdf")
    assert {f["name"] for f in fonts} == {"AAAAAA+DejaVuSans", "AAAAAA+DejaVuSans-Bold",
                                          "AAAAAA+DejaVuSansMono"}
    assert all((f["type"], f["emb"], f["sub"], f["uni"]) == ("TrueType", "yes", "yes", "yes")
               for f in fonts), fonts
    assert_pdf_sound(tmp_path / "r.pdf")


def test_the_same_numbers_in_both_renderings(result: AuditResult, tmp_path: Path) -> None:
    report = build_report(result)
    render_sound_pdf(result, tmp_path / "r.pdf")
    render_html(result, tmp_path / "r.html")
    text = " ".join(pdf_text(tmp_path / "r.pdf").split())
    html = " ".join(html_text(tmp_path / "r.html")[0].split())
    cells = [c for s in report.sections for b in s.blocks if hasattr(b, "rows") for r in b.rows
             for c in r if any(ch.isdigit() for ch in c) and len(c) < 40]
    assert len(cells) > 100
    for cell in cells[:400]:
        assert cell in html
        assert cell.replace(" ", "") in text.replace(" ", "")


@needs_poppler
@pytest.mark.parametrize("n_groups", [2, 10, 50])
def test_pages_render_and_grow_with_groups(n_groups: int, tmp_path: Path) -> None:
    ds = load_dataset(grouped_frame(n_groups), target="y", sensitive="g")
    cfg = AuditConfig(arms=(BaselineArm(), DPSGDArm()), min_group_rows=3, **FAST)  # type: ignore[arg-type]
    res = run_audit(ds, cfg)
    pages = render_sound_pdf(res, tmp_path / "r.pdf")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "p")],
                   check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == pages == len(PdfReader(str(tmp_path / "r.pdf")).pages)
    text = pdf_text(tmp_path / "r.pdf")
    assert "group-00" in text and f"group-{n_groups - 1:02d}" in text
    # 50 groups x 2 arms = 100 rows: the per-group table must split across pages and
    # repeat its header row ("Selection" is its last column) on each of them.
    header_pages = sum("Selection" in (p.extract_text() or "")
                       for p in PdfReader(str(tmp_path / "r.pdf")).pages)
    assert header_pages >= (2 if n_groups == 50 else 1)


def test_page_count_is_monotone_in_groups(tmp_path: Path) -> None:
    counts = []
    for n in (2, 10, 50):
        ds = load_dataset(grouped_frame(n), target="y", sensitive="g")
        res = run_audit(ds, AuditConfig(arms=(BaselineArm(),), min_group_rows=3, **FAST))  # type: ignore[arg-type]
        counts.append(render_sound_pdf(res, tmp_path / f"r{n}.pdf"))
    assert counts[0] <= counts[1] < counts[2]


def test_chinese_group_names_come_out_as_text(tmp_path: Path) -> None:
    names = ["女性", "男性", "非常长的群体名称-a-very-long-group-name-that-keeps-going-on"]
    ds = load_dataset(grouped_frame(3, names=names), target="y", sensitive="g")
    res = run_audit(ds, AuditConfig(arms=(BaselineArm(),), min_group_rows=3, **FAST))  # type: ignore[arg-type]
    render_sound_pdf(res, tmp_path / "zh.pdf")
    render_html(res, tmp_path / "zh.html")
    text = pdf_text(tmp_path / "zh.pdf")
    for name in names[:2]:
        assert name in text
        assert name in (tmp_path / "zh.html").read_text(encoding="utf-8")
    # The Chinese names are set in the embedded CJK font (the fallback only without one).
    fonts = PdfReader(str(tmp_path / "zh.pdf")).pages[0]["/Resources"]["/Font"]
    base_fonts = {str(f.get_object()["/BaseFont"]) for f in fonts.values()}
    cjk = cjk_font_name()
    assert any(cjk in name for name in base_fonts), (cjk, base_fonts)
    if PDFFONTS:
        assert [(f["name"], f["emb"]) for f in pdf_fonts(tmp_path / "zh.pdf") if cjk in f["name"]] \
            == [(f"AAAAAA+{cjk}", "no" if cjk == "STSong-Light" else "yes")]


def test_violation_is_on_page_one(result: AuditResult, tmp_path: Path) -> None:
    data = result.to_dict()
    dp = next(a for a in data["arms"] if a["kind"] == "dp_sgd")
    for entry in dp["privacy"]["empirical"]["per_seed"]:
        entry["epsilon_lower_bound"], entry["dp_violation"] = 9.0, True
    bad = AuditResult.from_dict(data)
    render_sound_pdf(bad, tmp_path / "bad.pdf")
    first = PdfReader(str(tmp_path / "bad.pdf")).pages[0].extract_text()
    assert "DP VIOLATION" in first and "dp_sgd" in first
    render_html(bad, tmp_path / "bad.html")
    assert 'id="dp-violation"' in (tmp_path / "bad.html").read_text()
    render_sound_pdf(result, tmp_path / "ok.pdf")
    assert "DP VIOLATION" not in pdf_text(tmp_path / "ok.pdf")


def test_missing_arms_and_nan_metrics_render_as_na(tmp_path: Path) -> None:
    df = grouped_frame(2)
    df.loc[df["g"] == "group-01", "y"] = 1  # group-01 has no negatives: FPR undefined
    ds = load_dataset(df, target="y", sensitive="g")
    res = run_audit(ds, AuditConfig(arms=(UniformDropoutArm(),), min_group_rows=3, **FAST))  # type: ignore[arg-type]
    render_sound_pdf(res, tmp_path / "na.pdf")
    text = " ".join(pdf_text(tmp_path / "na.pdf").split())
    assert "n/a (no negatives)" in text
    # No group_dropout arm and one arm: no group-dropout section, no trade-offs.
    assert "Group-specific dropout" not in text and "Trade-offs" not in text
    assert "Why dropout is not differential privacy" in text  # a dropout arm


def test_cli_report_and_run_write_both_formats(result: AuditResult, tmp_path: Path) -> None:
    result.to_json(tmp_path / "results.json")
    res = CliRunner().invoke(main, ["report", str(tmp_path / "results.json"), "--pdf",
                                    str(tmp_path / "a.pdf"), "--html", str(tmp_path / "a.html")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert "<!DOCTYPE html>" in (tmp_path / "a.html").read_text()
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--dataset", "synthetic", "--rows", "1500", "--seeds", "1",
                                    "--arms", "baseline", "--epochs", "1", "--bootstrap", "10",
                                    "--canaries", "50", "--quiet", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {"results.json", "report.pdf", "report.html"}


def test_dollar_signs_and_mixed_scripts_in_group_names(tmp_path: Path) -> None:
    """'$...$' is text, not maths, and Latin text beside Chinese keeps its font."""
    names = ["$50k-$100k", "a$\\frac$", "女性 group"]
    ds = load_dataset(grouped_frame(3, names=names), target="y", sensitive="g")
    res = run_audit(ds, AuditConfig(arms=(BaselineArm(),), min_group_rows=3, **FAST))  # type: ignore[arg-type]
    # The group-error figure labels its rows with the names; read as maths, "a$\frac$"
    # would not even render.
    report = build_report(res)
    assert any(isinstance(b, Figure) for sec in report.sections for b in sec.blocks)
    render_sound_pdf(res, tmp_path / "d.pdf")
    render_html(res, tmp_path / "d.html")
    pdf_lines = pdf_text(tmp_path / "d.pdf").splitlines()
    html_doc = html_text(tmp_path / "d.html")[0]
    for name in names:
        assert name in pdf_lines  # a table cell holding exactly the name, dollars and all
        assert name in html_doc
    # In the PDF the Chinese run is set in the CJK font and the Latin word after it is not.
    runs: list[tuple[str, str]] = []
    for page in PdfReader(str(tmp_path / "d.pdf")).pages:
        page.extract_text(visitor_text=lambda text, cm, tm, font, size: runs.append(
            (text, str((font or {}).get("/BaseFont", "")))) if text.strip() else None)
    after = [runs[i + 1] for i, (text, _) in enumerate(runs[:-1]) if text == "女性"]
    assert after, runs
    assert all(cjk_font_name() in font for text, font in runs if "女性" in text)
    assert all(text.lstrip().startswith("group") and font.endswith("+DejaVuSans")
               for text, font in after), after


def test_infinite_ratio_intervals_do_not_break_json() -> None:
    from audit import audit_predictions

    # Group a has the higher FNR (1 of 2 positives missed: 0.5) and b the lower (2 of 20:
    # 0.1). A resample of a's 20 rows that keeps its true positive but not its false negative
    # (probability 0.95^20 (1 - (18/19)^20) = 0.24; dozens of the 200) has FNR 0 for a, and
    # b / a is infinite. Predictions are given, so nothing is random but the seeded bootstrap.
    y_true = [1, 1] + [0] * 18 + [1] * 20 + [0] * 20
    y_pred = [0, 1] + [0] * 18 + [0, 0] + [1] * 18 + [0] * 20
    frame = pd.DataFrame({"y_true": y_true, "y_pred": y_pred, "g": ["a"] * 20 + ["b"] * 40})
    res = audit_predictions(frame, sensitive="g", n_bootstrap=200, min_group_rows=3)
    data = json.loads(res.to_json())  # allow_nan=False inside: would raise on inf
    ratio = data["arms"][0]["metrics"]["aggregate"]["gaps"]["fnr"]["ratio"]
    assert ratio["value"] == pytest.approx(0.1 / 0.5)
    assert (ratio["max_group"], ratio["min_group"]) == ("a", "b")
    for end in ("ci_low", "ci_high"):
        assert ratio[end] is None or (isinstance(ratio[end], float) and 0 <= ratio[end] < np.inf)
    # Should an infinite interval end reach the result anyway, JSON writes null, not Infinity.
    for entry in data["arms"][0]["metrics"]["aggregate"]["gaps"].values():
        if entry.get("ratio"):
            entry["ratio"]["ci_high"] = float("inf")
    back = json.loads(AuditResult.from_dict(data).to_json())
    assert back["arms"][0]["metrics"]["aggregate"]["gaps"]["fnr"]["ratio"]["ci_high"] is None
    assert back["arms"][0]["metrics"]["aggregate"]["gaps"]["fnr"]["ratio"]["value"] == ratio["value"]


def test_privacy_claimed_vs_proven(result: AuditResult, tmp_path: Path) -> None:
    """Section 5 shows the claimed-vs-proven figure, one verdict per arm and audit (the
    engine's sentences, word for word), what each audit assumes, and which audit gave the
    table's lower bound."""
    from audit import CANARY_AUDITS, GAUSSIAN_DP_NOTE, largest_bounds
    from reports._content import Paragraph, Table

    privacy = build_report(result).sections[4]
    assert privacy.title == SECTION_TITLES[4]
    figures = [b for b in privacy.blocks if isinstance(b, Figure)]
    assert any(f.caption.startswith("Privacy: claimed vs proven") for f in figures)
    texts = [b.text for b in privacy.blocks if isinstance(b, Paragraph)]
    bounds = result.privacy_bounds()
    assert set(bounds["audit"]) == set(CANARY_AUDITS)
    for _, r in bounds.iterrows():
        assert f"{r['arm']}, {CANARY_AUDITS[r['audit']].label}: {r['verdict']}" in texts
    for info in CANARY_AUDITS.values():
        assert info.assumes in texts
    assert GAUSSIAN_DP_NOTE in texts
    table = next(b for b in privacy.blocks if isinstance(b, Table))
    assert table.header[-1] == "Largest proven lower bound (audit)"
    for _, top in largest_bounds(bounds).iterrows():
        cell = next(row[-1] for row in table.rows if row[0] == top["arm"])
        if top["epsilon_lower_bound"] > 0:
            assert cell.startswith(f"{top['epsilon_lower_bound']:.2f} ({CANARY_AUDITS[top['audit']].label})")
    render_html(result, tmp_path / "r.html")
    text, _ = html_text(tmp_path / "r.html")
    assert "Privacy: claimed vs proven" in text
    for verdict in bounds["verdict"]:
        assert verdict in text


def test_privacy_bounds_figure_ticks_are_plain_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tick labels are numbers, never mathtext markup such as $\\mathdefault{...}$; zero is
    on the axis; one row per arm, 'no guarantee' where there is none."""
    import matplotlib.pyplot as plt

    from reports import _figures, privacy_bounds_figure

    kept = {}
    monkeypatch.setattr(_figures, "_png", lambda fig: kept.setdefault("fig", fig) and b"png")
    bounds = pd.DataFrame({
        "arm": ["baseline", "baseline", "dp_sgd", "dp_sgd"],
        "kind": ["baseline", "baseline", "dp_sgd", "dp_sgd"],
        "audit": ["black_box", "white_box_rows", "black_box", "white_box_gradient"],
        "accountant_epsilon": [np.nan, np.nan, 2.0, 2.0], "epsilon_lower_bound": [0.0, 0.4, 0.0, 2.5],
        "epsilon_lower_bound_gdp": [0.0, 0.6, np.nan, 3.1], "dp_violation": [False, False, False, True]})
    privacy_bounds_figure(bounds, ["baseline", "dp_sgd"], labels={"black_box": "black-box"})
    fig = kept["fig"]
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("$" not in t and float(t) == float(t) for t in labels), labels
    assert "0" in labels and ax.get_xlim()[0] < 0 < ax.get_xlim()[1]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["baseline\nno guarantee",
                                                            "dp_sgd\nclaims ε = 2.00"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "black-box: proven lower bound" in legend
    assert any("Gaussian-DP estimate" in t for t in legend)
    assert any(t.get_text() == "violates its claim" for t in ax.texts)
    plt.close(fig)


def test_rmia_rows_and_panel_wherever_lira_appears(result: AuditResult, tmp_path: Path) -> None:
    cfg = AuditConfig(arms=(BaselineArm(), UniformDropoutArm()), seeds=1, n_bootstrap=0,
                      training=TrainingConfig(epochs=1, hidden=(8,)),
                      privacy_audit=PrivacyAuditConfig(mia="rmia", shadows=2, canaries=0, mia_bootstrap=0,
                                                       mechanism_rows=0))
    shadowed = build_report(run_audit(load_dataset("synthetic", n_rows=1500), cfg))
    default = build_report(result)

    def mia_rows(report: Report) -> list[list[str]]:
        tables = [b for s in report.sections for b in s.blocks
                  if isinstance(b, Table) and b.header[:3] == ["Arm", "Attack", "Group"]]
        assert len(tables) == 1
        return tables[0].rows

    def captions(report: Report) -> list[str]:
        return [b.caption for s in report.sections for b in s.blocks if isinstance(b, Figure)]

    rows = mia_rows(shadowed)
    for arm in ("baseline", "uniform_dropout"):
        attacks = [r[1] for r in rows if r[0] == arm]
        assert attacks == ["loss"] * 3 + ["LiRA"] * 3 + ["RMIA"] * 3  # overall and 2 groups each
        lira = [r[2] for r in rows if r[0] == arm and r[1] == "LiRA"]
        assert [r[2] for r in rows if r[0] == arm and r[1] == "RMIA"] == lira
    assert any("one panel per attack" in c for c in captions(shadowed))
    write_pdf(shadowed, tmp_path / "r.pdf")
    write_html(shadowed, tmp_path / "r.html")
    for doc in (pdf_text(tmp_path / "r.pdf"), html_text(tmp_path / "r.html")[0]):
        assert "RMIA" in doc and "LiRA" in doc
    # The default audit (loss only) keeps its single-panel figure and loss rows.
    assert {r[1] for r in mia_rows(default)} == {"loss"}
    assert any(c.startswith("Loss-threshold attack ROC curves (log axes; first seed).")
               for c in captions(default))
