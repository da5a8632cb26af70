"""The content helpers a results page shows (summary_table, findings, reading_guide,
mia_table, glossary) are the report's own words, and a report of a model trained
elsewhere leaves out what does not apply to it (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pdf_checks import assert_pdf_sound
from pypdf import PdfReader

import reports
from audit import (
    AuditConfig,
    AuditResult,
    BaselineArm,
    DPSGDArm,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    audit_predictions,
    load_dataset,
    run_audit,
)
from reports import (
    build_report,
    findings,
    glossary,
    mia_table,
    reading_guide,
    render_html_text,
    render_pdf_bytes,
    summary_table,
)
from reports._content import Paragraph, Table

FAST = dict(seeds=1, n_bootstrap=30, training=TrainingConfig(epochs=1, hidden=(8,)),
            privacy_audit=PrivacyAuditConfig(canaries=100, mia_bootstrap=20, mechanism_rows=20,
                                             mechanism_masks=8))


@pytest.fixture(scope="module")
def trained() -> AuditResult:
    cfg = AuditConfig(arms=(BaselineArm(), UniformDropoutArm(), DPSGDArm()), **FAST)  # type: ignore[arg-type]
    return run_audit(load_dataset("synthetic", n_rows=2000), cfg)


def predictions(member: bool = True, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1200
    sex = rng.choice(["F", "M"], n, p=[0.35, 0.65])
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.25, n), 0.001, 0.999)
    df = pd.DataFrame({"y_true": y, "y_pred": (score > 0.5).astype(int), "score": score, "sex": sex})
    if member:
        df["member"] = rng.integers(0, 2, n)
    return df


@pytest.fixture(scope="module")
def external() -> AuditResult:
    return audit_predictions(predictions(), sensitive="sex", y_score="score", member="member",
                             name="loans_2024.csv", n_bootstrap=30, mia_bootstrap=20)


def texts(report: reports.Report) -> list[str]:
    out = []
    for s in report.sections:
        for b in s.blocks:
            if isinstance(b, Paragraph):
                out.append(b.text)
            elif isinstance(b, Table):
                out += [b.caption, *[c for r in b.rows for c in r]]
            else:
                out.append(b.caption)
    return out


def pdf_text(data: bytes, tmp_path: Path) -> str:
    (tmp_path / "r.pdf").write_bytes(data)
    assert_pdf_sound(tmp_path / "r.pdf")
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(str(tmp_path / "r.pdf")).pages).split())


def test_the_helpers_are_public_content_names() -> None:
    for name in ("summary_table", "findings", "reading_guide", "mia_table", "glossary"):
        assert name in reports.__all__
    # Grouped under content, before the renderers.
    assert reports.__all__.index("summary_table") < reports.__all__.index("RENDERERS")


def test_summary_table_one_readable_row_per_arm(trained: AuditResult) -> None:
    table = summary_table(trained)
    assert list(table["Arm"]) == trained.arm_names
    assert list(table.columns) == ["Arm", "Accuracy", "Error gap [95% CI]", "Gap beyond noise",
                                   "Epsilon (guarantee)", "Proven epsilon lower bound", "MIA AUC [CI]"]
    assert all(isinstance(v, str) for v in table.to_numpy().ravel())
    assert all(re.fullmatch(r"\d\.\d{3}", v) for v in table["Accuracy"])
    for cell in table["Error gap [95% CI]"]:
        assert re.fullmatch(r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", cell), cell
    eps = dict(zip(table["Arm"], table["Epsilon (guarantee)"], strict=True))
    assert eps["baseline"] == eps["uniform_dropout"] == "no guarantee"
    assert re.fullmatch(r"\d+\.\d{2}", eps["dp_sgd"])
    assert set(table["Gap beyond noise"]) <= {"yes", "no (within noise)", "no interval"}
    # Wider than a page no more: no column per group, every cell short.
    assert max(len(v) for v in table.to_numpy().ravel()) < 40


def test_summary_table_leaves_out_what_was_not_measured() -> None:
    cfg = AuditConfig(arms=(BaselineArm(), DPSGDArm()), seeds=1, n_bootstrap=0,
                      training=TrainingConfig(epochs=1, hidden=(8,)),
                      privacy_audit=PrivacyAuditConfig(mia="none", canaries=0, mechanism_rows=0))
    table = summary_table(run_audit(load_dataset("synthetic", n_rows=1500), cfg))
    assert "Proven epsilon lower bound" not in table and "MIA AUC [CI]" not in table
    # Error gaps have score intervals, which need no bootstrap resamples.
    assert set(table["Gap beyond noise"]) <= {"yes", "no (within noise)"}


def test_mia_table_is_a_readable_pivot(trained: AuditResult) -> None:
    table = mia_table(trained)
    assert list(table.columns) == ["Arm", "Attack", "Group", "AUC [CI]", "Advantage",
                                   "TPR @ FPR 1% [CI]", "TPR @ FPR 0.1% [CI]"]
    groups = sorted(trained.aggregate("by_group")["group"].unique())
    assert len(table) == len(trained.arm_names) * (1 + len(groups))
    for arm in trained.arm_names:
        assert list(table.loc[table["Arm"] == arm, "Group"]) == ["overall", *groups]
    for cell in table["AUC [CI]"]:
        assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", cell), cell
    for cell in table["TPR @ FPR 0.1% [CI]"]:
        assert re.fullmatch(r"\d\.\d{3}( \[\d\.\d{3}, \d\.\d{3}\])?|n/a \(.+\)", cell), cell


def test_the_report_shows_the_same_tables_and_words(trained: AuditResult, tmp_path: Path) -> None:
    report = build_report(trained)
    blocks = [b for s in report.sections for b in s.blocks]
    tables = [b for b in blocks if isinstance(b, Table)]
    summary, mia = summary_table(trained), mia_table(trained)
    assert any(t.header == list(summary.columns) and t.rows == summary.to_numpy().tolist() for t in tables)
    assert any(t.header == list(mia.columns) and t.rows == mia.to_numpy().tolist() for t in tables)
    shown = [b.text for b in blocks if isinstance(b, Paragraph)]
    for text in [*findings(trained), *reading_guide(trained)]:
        assert text in shown
    html = render_html_text(report)
    pdf = pdf_text(render_pdf_bytes(report)[0], tmp_path).replace(" ", "")
    for text in findings(trained)[:2] + reading_guide(trained)[:1]:
        assert text in html.replace("&#x27;", "'")
        assert text.replace(" ", "") in pdf
    # The glossary is in the report too, so that its wording agrees with the app's help texts.
    for term, meaning in glossary.items():
        assert term in html and meaning.replace(" ", "")[:60] in pdf


def test_findings_and_reading_guide_words(trained: AuditResult) -> None:
    found = findings(trained)
    assert found[0].startswith("Smallest error gap between groups: ")
    assert any("dropout, however strong, is not differential privacy (section 6)" in f for f in found)
    guide = " ".join(reading_guide(trained))
    assert "A bound of, say, 0.42" in guide
    assert "evidence of leakage, never a guarantee" in guide
    assert "below an arm's claimed epsilon it is consistent with the claim" in guide
    assert "A bound of 0 proves nothing" in guide
    assert "What the audits could have detected" in guide and "when every guess is right" in guide
    assert "Here: dp_sgd claims" in guide


def test_glossary_covers_the_terms_the_app_explains() -> None:
    for term in ("baseline", "uniform dropout", "group-specific dropout", "DP-SGD", "canaries", "flipped",
                 "LiRA", "RMIA", "trainer", "delta", "epsilon", "membership inference", "seeds", "epochs"):
        assert term in glossary and glossary[term].endswith(".") and len(glossary[term]) < 320, term


def test_an_uploaded_models_report_leaves_out_what_does_not_apply(external: AuditResult,
                                                                  tmp_path: Path) -> None:
    report = build_report(external)
    assert report.title == "fairpriv audit: loans_2024.csv"
    titles = [s.title for s in report.sections]
    assert titles == ["1. Audit overview", "2. Findings", "3. Fairness: error by group", "4. Privacy",
                      "5. Assumptions and limits", "6. Appendix: glossary and configuration"]
    words = " ".join(texts(report))
    for absent in ("Group-specific dropout", "dropout is not differential privacy", "Smallest error gap",
                   "Trade-offs", "seed", "test rows", "Only DP-SGD", "What the DP guarantee assumes"):
        assert absent not in words, absent
    assert "the uploaded predictions" in words
    assert findings(external)[0].startswith("Error gap between groups (the uploaded predictions): ")
    assert any("trained elsewhere" in f for f in findings(external))
    summary = external.summary()
    assert "test split" not in summary and "seed" not in summary
    assert "dropout is not differential privacy" not in summary
    assert "uploaded predictions" in summary and "trained elsewhere" in summary
    text = pdf_text(render_pdf_bytes(report)[0], tmp_path)
    assert "loans_2024.csv" in text and "dataframe" not in text
    assert "Group-specific dropout" not in text


def test_without_scores_the_report_says_membership_inference_did_not_run() -> None:
    res = audit_predictions(predictions(member=False), sensitive="sex", n_bootstrap=0)
    words = " ".join(texts(build_report(res)))
    assert "Membership inference was not run" in words
    assert "the uploaded predictions (all 1200 rows)" in words
    assert "rows the model did not train on" not in words
    assert build_report(res).title == "fairpriv audit: predictions"


def test_the_title_uses_the_name_given_to_load_dataset() -> None:
    df = predictions(member=False)
    df["x"] = np.random.default_rng(1).normal(size=len(df))
    ds = load_dataset(df[["x", "sex", "y_true"]], target="y_true", sensitive="sex", name="upload.csv")
    cfg = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0, min_group_rows=3,
                      training=TrainingConfig(epochs=1, hidden=(4,)),
                      privacy_audit=PrivacyAuditConfig(mia="none", canaries=0, mechanism_rows=0))
    res = run_audit(ds, cfg)
    assert build_report(res).title == "fairpriv audit: upload.csv"
    titles = [s.title for s in build_report(res).sections]
    assert not any("Trade-offs" in t or "Group-specific" in t or "Why dropout" in t for t in titles)
    assert titles[-1] == "6. Appendix: glossary, configuration and per-seed numbers"


def test_pdf_columns_fit_their_longest_word(trained: AuditResult) -> None:
    """Table columns are sized by content: no header word is split ("Accur acy"), and the
    columns fill the page width."""
    from reports._pdf import _PADDING, _column_widths, _text_width

    for block in [b for s in build_report(trained).sections for b in s.blocks if isinstance(b, Table)]:
        widths = _column_widths(block, 510.0)
        assert sum(widths) == pytest.approx(510.0)
        for j, head in enumerate(block.header):
            longest = max((_text_width(w, bold=True) for w in head.split()), default=0.0)
            assert widths[j] >= min(longest + _PADDING, 510.0 / len(widths)) - 1e-6, (head, widths)


@pytest.mark.parametrize("rows", [10, 24, 60])
def test_a_section_title_never_stands_alone_on_a_page(rows: int) -> None:
    """A section starting with a table taller than the space below its title (the
    appendix's glossary grew to that) must not leave a page holding only the title: a
    table and title kept together by row count alone were moved to the next page whole.
    Tables that fit still stay on one page with their title."""
    from io import BytesIO

    from reports._content import Report, Section

    long_text = "a term explained in words long enough to wrap onto a second and third line " * 3
    table = Table(["Term", "Meaning"], [[f"term {i}", long_text] for i in range(rows)], caption="Glossary.")
    report = Report(title="layout", violation=None, sections=[
        Section("1. Before", [Paragraph("Some text.")], key="overview"),
        Section("2. Appendix", [table], key="appendix"),  # the appendix starts a new page
    ])
    pdf, pages = render_pdf_bytes(report)
    texts = [(p.extract_text() or "").strip() for p in PdfReader(BytesIO(pdf)).pages]
    assert pages == len(texts)
    for text in texts:
        body = [line for line in text.splitlines() if "fairpriv report - page" not in line]
        assert body != ["2. Appendix"], texts
    assert "2. Appendix" in texts[1]  # the title opens the appendix's first page ...
    assert "term 0" in texts[1]  # ... with the table's first rows under it
    if rows == 10:
        assert "term 9" in texts[1] and "Glossary." in texts[1]  # it fits: kept on one page
