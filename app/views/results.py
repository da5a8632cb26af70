import re

import pandas as pd
import streamlit as st
from fairpriv_app.common import csv_bytes, file_stem, no_result_notice, result, show_error

from audit import CANARY_AUDITS, GAUSSIAN_DP_NOTE
from reports import (
    MATCH_CAPTION,
    MATCH_TEXT,
    dp_cost_caption,
    dp_cost_table,
    dropout_tradeoff_caption,
    findings,
    gap_curve_figure,
    group_error_figure,
    guarantee_notes,
    has_group_errors,
    mechanism_figure,
    mia_table,
    missing_captions,
    missing_error_figure,
    missing_match_figure,
    missing_tables,
    privacy_bounds_figure,
    reading_guide,
    roc_figure,
    solution_tradeoff_figure,
    summary_table,
    tradeoff_figure,
    tradeoff_points,
)


def _eps(value: float, none: str) -> str:
    """An epsilon as shown in the verdict table; ``none`` where it is NaN."""
    return none if pd.isna(value) else f"{value:.2f}"


def _download(label: str, frame: pd.DataFrame, name: str, key: str) -> None:
    # on_click="ignore": a download must not rerun the page, which would cancel a
    # download still in flight when the next button is clicked.
    st.download_button(label, csv_bytes(frame), name, "text/csv", key=key, on_click="ignore")


st.title("4. Results")
try:
    res = result()
    if res is None:
        no_result_notice()
        st.stop()
    stem = file_stem(st.session_state.get("result_label", res.dataset.get("name", "audit")))
    if res.dp_violations:
        st.error("DP VIOLATION: the empirical lower bound exceeds the accountant's epsilon for "
                 + ", ".join(res.dp_violations))
    st.subheader("Summary")
    st.table(summary_table(res))
    st.subheader("What the audit found")
    # The PDF's section numbers do not exist on this page.
    st.markdown("\n".join(f"- {re.sub(r' ?[(]section [0-9]+[)]', '', line)}" for line in findings(res)))
    with st.expander("How to read this", expanded=False):
        st.markdown("\n".join(f"- {line}" for line in reading_guide(res)))
    arms = res.arm_names
    st.subheader("Error by group")
    st.image(group_error_figure(res.aggregate("by_group"), arms, ci_level=res.ci_level))
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
        with st.expander("What each audit assumes"):
            for name in dict.fromkeys(bounds["audit"]):
                if name in CANARY_AUDITS:
                    st.write(CANARY_AUDITS[name].assumes)
            st.write(GAUSSIAN_DP_NOTE)
    notes = guarantee_notes(res)
    if notes:
        with st.expander("What each epsilon covers, and what it assumes"):
            for note in notes:
                st.write(note)
    points = tradeoff_points(res)
    if len(points) > 1:
        st.subheader("Trade-offs")
        st.image(tradeoff_figure(points, arms))
    if not res.mia.empty:
        st.subheader("Membership inference by group")
        if {"lira", "rmia"} & set(res.mia["attack"]):
            st.caption("LiRA and RMIA attack the first seed's model with the same shadow models.")
        st.table(mia_table(res))
    cost = dp_cost_table(res)
    if not cost.empty:
        st.subheader("DP's cost per group")
        st.table(cost.set_index(["DP arm", "Versus", "Group"]))
        st.caption(dp_cost_caption(res))
    if not res.roc.empty:
        st.subheader("Membership attacks: true vs false positive rate")
        st.image(roc_figure(res.roc, arms))
    if not res.missing.empty:
        st.subheader("Missing features at test time")
        st.caption(res.missing_setup.get("treatment", ""))
        st.markdown("\n".join(f"- {line}" for line in res.missing_findings()))
        grid = res.missing_setup.get("grid") or sorted(res.missing["p_test"].unique())
        st.image(missing_error_figure(res.missing, arms, grid=grid, ci_level=res.ci_level))
        st.caption("Each group's error as features go missing (every group at the same rate "
                   "p_test); a star marks the group's error at its own missing rate.")
        tables, captions = missing_tables(res), missing_captions(res)
        for key, title in (("degradation", "How fast each group's error rises"),
                           ("scenario", "Each group at its own missing rate")):
            if key in tables:
                st.markdown(f"**{title}**")
                st.table(tables[key].set_index(tables[key].columns[0]))
                st.caption(captions[key])
        if not res.missing_match.empty:
            st.markdown("**Which training dropout rate copes best**")
            st.write(MATCH_TEXT)
            st.image(missing_match_figure(res.missing_match))
            st.caption(MATCH_CAPTION)
            st.table(tables["best_p_train"].set_index("p_test"))
        c1, c2 = st.columns(2)
        with c1:
            _download("Download the missing-feature errors (CSV)", res.missing, f"{stem}-missing.csv",
                      "dl_missing_section")
        if not res.missing_match.empty:
            with c2:
                _download("Download the p_train grid (CSV)", res.missing_match,
                          f"{stem}-missing_match.csv", "dl_missing_match_section")
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
    st.subheader("All numbers")
    tables = {"by_group": res.by_group, "overall": res.overall, "gaps": res.gaps,
              "privacy": res.privacy, "privacy_bounds": bounds, "mia": res.mia,
              "dp_cost": res.dp_cost, "missing": res.missing, "missing_match": res.missing_match}
    for name, frame in tables.items():
        if frame.empty:
            continue
        with st.expander(f"Table: {name} ({len(frame)} rows)"):
            st.dataframe(frame, width="stretch")
            _download(f"Download {name}.csv", frame, f"{stem}-{name}.csv", f"dl_{name}")
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc)
