import streamlit as st
from fairpriv_app.common import TABLE_TYPES, keep_result, read_upload, show_error

from audit import audit_predictions

st.title("Audit an existing model")
st.write("Upload one row per person with the true label, the model's prediction, optionally its "
         "score (probability of the positive class) and membership (1 = was in training), and the "
         "group column(s). Nothing is trained.")
mode = st.radio("What do you have?", ["predictions file", "ONNX model + labelled data"],
                horizontal=True, key="m_mode")
if mode == "ONNX model + labelled data":
    model_up = st.file_uploader("ONNX model (run with onnxruntime; never unpickled)", type=["onnx"],
                                key="onnx_upload")
    data_up = st.file_uploader("Labelled data (CSV, TSV, .data or Parquet)", type=TABLE_TYPES,
                               key="onnx_data")
    if model_up is not None and data_up is not None:
        try:
            from audit import audit_onnx_model

            data = read_upload(data_up.name, data_up.getvalue())
            cols = list(data.columns)
            target = st.selectbox("Target column", cols, key="o_target")
            sensitive = st.multiselect("Group column(s)", cols, key="o_sensitive")
            member_col = st.selectbox("Membership (optional)", ["(none)", *cols], key="o_member")
            inputs = st.multiselect("Model input columns, in order",
                                    [c for c in cols if c not in {target, *sensitive, member_col}],
                                    key="o_inputs")
            if st.button("Audit model", type="primary", key="o_run"):
                res = audit_onnx_model(model_up.getvalue(), data, target=target, sensitive=sensitive,
                                       member=None if member_col == "(none)" else member_col,
                                       input_columns=inputs or None)
                keep_result(res, data_up.name)
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            show_error(exc)
    st.stop()
up = st.file_uploader("Predictions (CSV, TSV, .data or Parquet)", type=TABLE_TYPES,
                      key="pred_upload")
if up is not None:
    try:
        frame = read_upload(up.name, up.getvalue())
        cols = list(frame.columns)

        def pick(label: str, default: str, key: str, optional: bool = False) -> str | None:
            options = (["(none)"] if optional else []) + cols
            index = options.index(default) if default in options else (0 if optional else min(
                len(options) - 1, {"m_true": 0, "m_pred": 1}.get(key, 0)))
            choice = st.selectbox(label, options, index=index, key=key)
            return None if choice == "(none)" else choice

        y_true = pick("True label", "y_true", "m_true")
        y_pred = pick("Prediction", "y_pred", "m_pred")
        y_score = pick("Score (optional)", "y_score", "m_score", optional=True)
        member = pick("Membership (optional)", "member", "m_member", optional=True)
        guess = [c for c in cols if c in ("group", "grp", "sex", "race")][:1]
        sensitive = st.multiselect("Group column(s)", cols, default=guess, key="m_sensitive")
        positive = st.text_input("Positive label (optional)", key="m_positive")
        if st.button("Audit predictions", type="primary", key="m_run"):
            res = audit_predictions(frame, sensitive=sensitive or [], y_true=y_true or "",
                                    y_pred=y_pred or "", y_score=y_score, member=member,
                                    positive_label=positive or None, name=up.name)
            keep_result(res, up.name)
    except Exception as exc:  # noqa: BLE001 - shown, never a traceback
        show_error(exc)
