"""fairpriv app: audit a dataset (or a model's predictions) in the browser.

Run with ``fairpriv app`` or ``streamlit run app/main.py``. The pages (``views/``) are run
as scripts by Streamlit; they import their shared helpers from the package this folder
is installed as, ``fairpriv_app.common`` (an editable install maps it to this folder),
never through ``sys.path``.
"""

import streamlit as st
from fairpriv_app.common import collect_finished_job, job_panel, keep_settings, remember_settings

st.set_page_config(page_title="fairpriv", layout="wide")
# Before any page: settings survive page changes, and a finished audit reaches every page.
keep_settings()
collect_finished_job()

pages = [
    st.Page("views/start.py", title="Start", default=True),
    st.Page("views/data.py", title="1. Data"),
    st.Page("views/setup.py", title="2. Setup"),
    st.Page("views/run.py", title="3. Run"),
    st.Page("views/results.py", title="4. Results"),
    st.Page("views/report.py", title="5. Report"),
    st.Page("views/sweep.py", title="Sweep: epsilons and budgets"),
    st.Page("views/model.py", title="Audit an existing model"),
]
page = st.navigation(pages)
if page.title != "3. Run":
    with st.sidebar:
        job_panel(full=False)
try:
    page.run()
finally:  # st.stop/st.rerun end a page early: what it set is kept all the same
    remember_settings()
