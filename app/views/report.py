import streamlit as st
from fairpriv_app.common import result, show_error

from audit import AuditResult
from reports import build_report, render_html_text, render_pdf_bytes


@st.cache_data(show_spinner="Rendering the report...", max_entries=8)
def report_files(result_json: str) -> tuple[bytes, str]:
    report = build_report(AuditResult.from_json(result_json))
    return render_pdf_bytes(report)[0], render_html_text(report)


st.title("Report")
try:
    res = result()
    if res is None:
        st.warning("No audit yet: run one on page 3.")
    else:
        pdf, html = report_files(st.session_state["result_json"])
        st.download_button("Download PDF report", pdf, "report.pdf", "application/pdf", key="dl_pdf")
        st.download_button("Download HTML report", html.encode("utf-8"), "report.html", "text/html",
                           key="dl_html")
        st.download_button("Download results.json", st.session_state["result_json"].encode("utf-8"),
                           "results.json", "application/json", key="dl_json")
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc)
