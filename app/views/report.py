import streamlit as st
import streamlit.components.v1 as components
from fairpriv_app.common import file_stem, no_result_notice, result, show_error

from audit import AuditResult
from reports import build_report, render_html_text, render_pdf_bytes


@st.cache_data(show_spinner="Rendering the report...", max_entries=8)
def report_files(result_json: str) -> tuple[bytes, str]:
    report = build_report(AuditResult.from_json(result_json))
    return render_pdf_bytes(report)[0], render_html_text(report)


st.title("5. Report")
try:
    res = result()
    if res is None:
        no_result_notice()
        st.stop()
    text = st.session_state["result_json"]
    stem = file_stem(st.session_state.get("result_label", res.dataset.get("name", "audit")))
    pdf, html = report_files(text)
    st.write("The same report in two formats, and the raw results (every number, for your own "
             "analysis or `fairpriv report`).")
    c1, c2, c3 = st.columns(3)
    # on_click="ignore": a download must not rerun the page (a rerun cancels a download
    # still in flight when the next button is clicked).
    c1.download_button("Download PDF report", pdf, f"{stem}-report.pdf", "application/pdf",
                       key="dl_pdf", on_click="ignore", type="primary")
    c2.download_button("Download HTML report", html.encode("utf-8"), f"{stem}-report.html",
                       "text/html", key="dl_html", on_click="ignore")
    c3.download_button("Download results.json", text.encode("utf-8"), f"{stem}-results.json",
                       "application/json", key="dl_json", on_click="ignore")
    st.subheader("Preview")
    components.html(html, height=900, scrolling=True)
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc)
