import streamlit as st
from fairpriv_app.common import DEMO_ROWS, SOURCES, commit_data, show_error

from audit import builtin_table

st.title("fairpriv")
st.subheader("What fairpriv does")
st.write(
    "fairpriv trains the same model on your table in several ways (the **arms**: as is, with "
    "dropout, with dropout rates per group, and with differential privacy) and measures two "
    "things for each: **does it err more for some groups than for others**, and **how much does "
    "it leak about the people it was trained on**. You get the numbers with their uncertainty, "
    "what each privacy claim is worth, and a PDF report.")
st.markdown(
    "1. **Data**: upload a table with a yes/no target and the column(s) that define groups.\n"
    "2. **Setup**: choose the arms and how thorough the audit is.\n"
    "3. **Run**: train and measure (it keeps running while you look around).\n"
    "4. **Results**: error by group and privacy loss, explained.\n"
    "5. **Report**: preview and download the PDF, HTML and the raw results.")
st.write("No data at hand? Try it on a built-in synthetic table of "
         f"{DEMO_ROWS:,} people in two groups, one small.")
if st.button("Use the demo data", type="primary", key="use_demo"):
    try:
        table = builtin_table("synthetic", n_rows=DEMO_ROWS)
        label = "demo data (synthetic)"
        commit_data(table.frame, {"target": table.target, "sensitive": list(table.sensitive),
                                  "positive_label": None, "name": label}, label, SOURCES[1])
        st.session_state.update(source=SOURCES[1], syn_rows=DEMO_ROWS, target=table.target,
                                sensitive=list(table.sensitive))
        st.session_state["data_notice"] = (
            f"The demo data is ready: {DEMO_ROWS:,} rows, target '{table.target}', groups from "
            f"'{', '.join(table.sensitive)}'. Choose the settings, then Run.")
        st.switch_page("views/setup.py")
    except Exception as exc:  # noqa: BLE001 - shown, never a traceback
        show_error(exc)
st.caption("Already have a trained model? 'Audit an existing model' audits its predictions "
           "without training anything.")
