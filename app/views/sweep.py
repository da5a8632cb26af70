import json

import pandas as pd
import streamlit as st
from fairpriv_app.common import build_config, chosen_data, file_stem, settings, show_error, start_with

from audit import (
    ARM_KINDS,
    SweepConfig,
    SweepEvent,
    SweepResult,
    format_interval,
    format_number,
    load_dataset,
    parse_number_list,
    run_sweep,
)
from audit import defaults as d
from reports import (
    build_sweep_report,
    render_html_text,
    render_pdf_bytes,
    sweep_frontier_figure,
    sweep_gap_figure,
    sweep_group_error_figure,
)


@st.cache_data(show_spinner="Rendering the report...", max_entries=4)
def sweep_report_files(sweep_json: str) -> tuple[bytes, str]:
    report = build_sweep_report(SweepResult.from_dict(json.loads(sweep_json)))
    return render_pdf_bytes(report)[0], render_html_text(report)


def show_sweep(text: str, label: str) -> None:
    sweep = SweepResult.from_dict(json.loads(text))
    cfg = sweep.config
    knobs = [f"epsilons {', '.join(f'{e:g}' for e in cfg['epsilons'])}" if "dp_sgd" in cfg["arms"] else "",
             f"budgets {', '.join(f'{b:g}' for b in cfg['budgets'])}"
             if {"uniform_dropout", "group_dropout"} & set(cfg["arms"]) else ""]
    st.info(f"Result of the sweep of {label}: {', '.join(cfg['arms'])}; "
            f"{'; '.join(k for k in knobs if k)} ({len(sweep.points)} audits).")
    table = sweep.frontier()
    st.subheader("The frontier")
    st.table(pd.DataFrame({
        "point": table["arm"],
        "accuracy": table["accuracy"].map(lambda v: format_number(v, 3)),
        "error gap [CI]": [format_interval(g, lo, hi, 3) for g, lo, hi in
                           zip(table["gap"], table["gap_low"], table["gap_high"], strict=True)],
        "accountant ε": table["accountant_epsilon"].map(
            lambda v: format_number(v, 2, missing="no guarantee")),
        "ε lower bound": table["epsilon_lower_bound"].map(lambda v: format_number(v, 2)),
        "on the frontier": table["on_frontier"].map({True: "yes", False: ""}),
    }))
    st.caption("On the frontier: no other point is both more accurate and has a smaller error gap; "
               "overlapping intervals make it a shortlist, not a ranking. Accountant ε: the formal "
               "guarantee (DP-SGD only). ε lower bound: what the canary audit proved the training run "
               "leaks, at the audit's confidence.")
    st.image(sweep_frontier_figure(sweep))
    st.subheader("The error gap as epsilon and the dropout budget change")
    st.image(sweep_gap_figure(sweep))
    if (sweep.frame["kind"] == "dp_sgd").any():
        st.subheader("Each group's error under DP-SGD")
        st.caption("Solid: DP-SGD at each epsilon; dotted: the baseline. The distance between a group's "
                   "two lines is what DP costs that group.")
        st.image(sweep_group_error_figure(sweep))
    stem = file_stem(label)
    pdf, html = sweep_report_files(text)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download PDF report", pdf, f"{stem}-sweep.pdf", "application/pdf", key="dl_sweep_pdf",
                       on_click="ignore", type="primary")
    c2.download_button("Download HTML report", html.encode("utf-8"), f"{stem}-sweep.html", "text/html",
                       key="dl_sweep_html", on_click="ignore")
    c3.download_button("Download sweep.json", text.encode("utf-8"), f"{stem}-sweep.json", "application/json",
                       key="dl_sweep_json", on_click="ignore")


st.title("Sweep: the privacy-fairness frontier")
st.write("One audit compares the arms at one epsilon and one dropout rate. A sweep audits DP-SGD at "
         "several epsilons and the dropout arms at several budgets, on the same splits, to show what "
         "each choice costs each group.")
frame, load_kwargs, label = chosen_data()
start_with({"sweep_arms": list(settings()["arms"]) or list(ARM_KINDS),
            "sweep_epsilons": ",".join(f"{e:g}" for e in d.DEFAULT_SWEEP_EPSILONS),
            "sweep_budgets": ",".join(f"{b:g}" for b in d.DEFAULT_SWEEP_BUDGETS)})
st.multiselect("Arms", list(ARM_KINDS), key="sweep_arms",
               help="Each arm is audited once per value of its own knob: DP-SGD once per epsilon, the "
                    "dropout arms once per budget, the baseline once.")
st.text_input("Epsilons", key="sweep_epsilons", help="DP-SGD's target epsilons, comma-separated.")
st.text_input("Dropout budgets", key="sweep_budgets",
              help="Uniform dropout's rate, and group dropout's expected rate (its rates per group are "
                   "solved at it), comma-separated.")
try:
    sweep_config = SweepConfig(
        arms=tuple(st.session_state["sweep_arms"]),
        epsilons=parse_number_list(st.session_state["sweep_epsilons"], "epsilons"),
        budgets=parse_number_list(st.session_state["sweep_budgets"], "budgets"),
        audit=build_config(settings()))
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc, page="Sweep")
    st.stop()
points = sweep_config.points()
audit = sweep_config.audit
st.write(f"**{label}**: {len(points)} audits ({', '.join(p.label for p in points)}), each with "
         f"{len(audit.seed_list)} seed(s), {audit.training.epochs} epochs and the privacy audit of page 2 "
         "(Setup). A sweep takes about as long as that many audits of one arm.")
st.caption("The sweep's own arms, epsilons and budgets replace Setup's arms, DP-SGD epsilon and "
           "dropout rate; everything else comes from Setup.")
if st.session_state.pop("sweep_started", None) is not None:
    # Set when a sweep starts and cleared when it ends: still here, it was interrupted.
    st.warning("The last sweep was stopped when you left this page or changed a setting during it: "
               "a sweep runs only while this page stays open. Run it again.")
st.info("A sweep runs while this page stays open: leaving the page or changing a setting stops it.")
if st.button("Run sweep", type="primary", key="run_sweep",
             help="Stay on this page while it runs: leaving the page stops the sweep."):
    st.session_state.pop("sweep_json", None)  # never show an earlier result under a new run
    st.session_state["sweep_started"] = True
    bar = st.progress(0.0, text="Starting the sweep...")

    def show(event: SweepEvent) -> None:
        bar.progress(event.fraction, text=event.describe())

    try:
        dataset = load_dataset(frame, **load_kwargs)
        sweep = run_sweep(dataset, sweep_config, progress=show)
    except Exception as exc:  # noqa: BLE001 - shown, never a traceback
        st.session_state.pop("sweep_started", None)
        show_error(exc, page="Sweep")
        st.stop()
    st.session_state.pop("sweep_started", None)
    bar.progress(1.0, text=f"Done: {len(points)} audits.")
    st.session_state["sweep_json"] = json.dumps(sweep.to_dict())
    st.session_state["sweep_label"] = label
text = st.session_state.get("sweep_json")
if text is not None:
    try:
        show_sweep(text, st.session_state.get("sweep_label", label))
    except Exception as exc:  # noqa: BLE001 - shown, never a traceback
        show_error(exc, page="Sweep")
