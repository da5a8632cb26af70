import streamlit as st
from fairpriv_app.common import csv_bytes, result, show_error

from reports import (
    gap_curve_figure,
    group_error_figure,
    mechanism_figure,
    roc_figure,
    tradeoff_figure,
    tradeoff_points,
)

st.title("Results")
try:
    res = result()
    if res is None:
        st.warning("No audit yet: run one on page 3.")
    else:
        if res.dp_violations:
            st.error("DP VIOLATION: the empirical lower bound exceeds the accountant's epsilon for "
                     + ", ".join(res.dp_violations))
        st.code(res.summary(), language=None)
        arms = res.arm_names
        st.subheader("Error by group")
        st.image(group_error_figure(res.aggregate("by_group"), arms, ci_level=res.ci_level))
        for name in ("by_group", "overall", "gaps", "privacy"):
            frame = getattr(res, name)
            with st.expander(f"Table: {name}"):
                st.dataframe(frame, use_container_width=True)
                st.download_button(f"Download {name}.csv", csv_bytes(frame), f"{name}.csv", "text/csv",
                                   key=f"dl_{name}")
        st.subheader("Trade-offs")
        st.image(tradeoff_figure(tradeoff_points(res), arms))
        if not res.mia.empty:
            st.subheader("Membership inference by group")
            if {"lira", "rmia"} & set(res.mia["attack"]):
                st.caption("LiRA and RMIA attack the first seed's model with the same shadow models.")
            st.dataframe(res.mia[res.mia["seed"].isna()], use_container_width=True)
            st.download_button("Download mia.csv", csv_bytes(res.mia), "mia.csv", "text/csv", key="dl_mia")
        if not res.roc.empty:
            st.image(roc_figure(res.roc, arms))
        if not res.mechanism.empty:
            st.subheader("Why dropout is not differential privacy")
            st.image(mechanism_figure(res.mechanism, res.mechanism_reference, arms))
        for arm, sol in res.solutions.items():
            st.subheader(f"Group-specific dropout ({arm})")
            st.write(sol["verdict"])
            if len(sol["rates"]) == 2 and sol.get("curve"):
                st.image(gap_curve_figure(sol["curve"], sol["rates"],
                                          sol["uniform"]["validation"]["gap"], sol["budget"]))
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc)
