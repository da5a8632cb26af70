import streamlit as st
from fairpriv_app.common import BUILTINS, read_upload, show_error

from audit import load_dataset, make_synthetic

st.title("Data")
st.write("Bring a table with a binary target and one or more sensitive columns, or use a "
         "built-in dataset.")
source = st.radio("Source", ["upload", *BUILTINS], horizontal=True, key="source")
frame = None
try:
    if source == "upload":
        up = st.file_uploader("CSV or Parquet file", type=["csv", "tsv", "txt", "data", "parquet"],
                              key="upload")
        if up is not None:
            frame = read_upload(up.name, up.getvalue())
    elif source == "synthetic":
        rows = st.number_input("Rows", 500, 200_000, 5_000, step=500, key="syn_rows")
        frame = make_synthetic(n_rows=int(rows))
    else:
        path = st.text_input("Path of adult.data on the server", key="adult_path")
        if path:
            ds = load_dataset("adult", path=path)
            frame = ds.features.assign(**{ds.target: ds.y, **{c: ds.groups for c in ds.sensitive}})
except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
    show_error(exc)

if frame is not None:
    st.caption(f"{len(frame)} rows, {frame.shape[1]} columns")
    st.dataframe(frame.head(20), use_container_width=True)
    columns = list(frame.columns)
    default_target = "y" if "y" in columns else columns[-1]
    target = st.selectbox("Target column (binary)", columns, index=columns.index(default_target),
                          key="target")
    candidates = [c for c in columns if c != target]
    default_sensitive = [c for c in ("group", "sex") if c in candidates][:1]
    sensitive = st.multiselect("Sensitive column(s)", candidates, default=default_sensitive,
                               key="sensitive")
    positive = st.text_input("Positive label (optional)", key="positive_label")
    if st.button("Use this data", type="primary", key="use_data"):
        try:
            ds = load_dataset(frame, target=target, sensitive=sensitive or None,
                              positive_label=positive or None)
            # The frame is committed together with its column choices, so Run never
            # audits an upload the user has not confirmed.
            st.session_state["frame"] = frame
            st.session_state["load_kwargs"] = {"target": target, "sensitive": sensitive,
                                               "positive_label": positive or None}
            st.session_state.pop("result_json", None)
            st.success(f"Ready: {ds.n_rows} rows, groups " + ", ".join(
                f"{g} ({n})" for g, n in ds.group_counts().items()))
            for note in ds.notes:
                st.info(note)
        except Exception as exc:  # noqa: BLE001
            show_error(exc)
