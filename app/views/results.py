import pandas as pd
import streamlit as st
from fairpriv_app.common import csv_bytes, result, show_error

from audit import CANARY_AUDITS, GAUSSIAN_DP_NOTE
from reports import (
    dropout_tradeoff_caption,
    gap_curve_figure,
    group_error_figure,
    has_group_errors,
    mechanism_figure,
    privacy_bounds_figure,
    roc_figure,
    solution_tradeoff_figure,
    tradeoff_figure,
    tradeoff_points,
)


def _eps(value: float, none: str) -> str:
    """An epsilon as shown in the verdict table; ``none`` where it is NaN."""
    return none if pd.isna(value) else f"{value:.2f}"


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
        bounds = res.privacy_bounds()
        if not bounds.empty:
            st.subheader("Privacy: claimed vs proven")
            labels = {name: info.label for name, info in CANARY_AUDITS.items()}
            st.image(privacy_bounds_figure(bounds, arms, labels=labels, confidence=res.confidence))
            st.caption("Per arm: the accountant's epsilon (grey bar; 'no guarantee' where there is "
                       "none), each canary audit's proven epsilon lower bound (filled marker) and its "
                       "Gaussian-DP estimate (hollow marker: an estimate that assumes a Gaussian "
                       "trade-off curve). A bound of 0 shows nothing.")
            verdicts = pd.DataFrame({
                "arm": bounds["arm"],
                "audit": bounds["audit"].map(lambda a: labels.get(a, a)),
                "claimed epsilon": bounds["accountant_epsilon"].map(lambda e: _eps(e, "no guarantee")),
                "proven lower bound": bounds["epsilon_lower_bound"].map(lambda e: _eps(e, "n/a")),
                "Gaussian-DP estimate": bounds["epsilon_lower_bound_gdp"].map(lambda e: _eps(e, "n/a")),
                "verdict": bounds["verdict"],
            })
            # A static table: the verdicts wrap and are read whole, never cut off in a cell.
            st.table(verdicts.set_index(["arm", "audit"]))
            for _, row in bounds[bounds["dp_violation"]].iterrows():
                st.error(f"{row['arm']}, {labels.get(row['audit'], row['audit'])}: {row['verdict']}")
            st.download_button("Download privacy_bounds.csv", csv_bytes(bounds), "privacy_bounds.csv",
                               "text/csv", key="dl_privacy_bounds")
            with st.expander("What each audit assumes"):
                for name in dict.fromkeys(bounds["audit"]):
                    if name in CANARY_AUDITS:
                        st.write(CANARY_AUDITS[name].assumes)
                st.write(GAUSSIAN_DP_NOTE)
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
            if has_group_errors(sol):
                st.image(solution_tradeoff_figure(sol))
                st.caption(dropout_tradeoff_caption(sol))
            elif len(sol["rates"]) == 2 and sol.get("curve"):  # a results.json from before
                st.image(gap_curve_figure(sol["curve"], sol["rates"],
                                          sol["uniform"]["validation"]["gap"], sol["budget"]))
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc)
