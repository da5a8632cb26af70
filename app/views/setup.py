"""Setup: the arms and settings of the audit.

Every widget starts on the engine's default (:mod:`audit.defaults`, through
``SETUP_DEFAULTS``), choice lists come from the engine's registries, and the
configuration is built by ``build_config``, which Run uses too: what this page shows
is what Run audits, also after leaving the page and coming back.
"""

import json

import streamlit as st
import torch
from fairpriv_app.common import (
    CI_LEVELS,
    SETUP_DEFAULTS,
    build_config,
    frame_hash,
    settings,
    show_error,
    start_with,
)

from audit import (
    MISSING_TREATMENT,
    AuditConfig,
    Dataset,
    available_arms,
    available_trainers,
    estimate_audit,
    level_text,
    load_dataset,
)
from audit import defaults as d
from reports import glossary


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@st.cache_resource(max_entries=4, show_spinner=False)
def _dataset(_frame: object, data_hash: str, load_json: str) -> Dataset:
    # Loaded once per data and load options: the estimate (per configuration) and the
    # rates' placeholder both read it, and neither changes it.
    return load_dataset(_frame, **json.loads(load_json))


def _rates_example() -> str:
    """The placeholder of the per-group rates, in the chosen data's own group names."""
    frame = st.session_state.get("frame")
    try:
        labels = ([str(g) for g in _dataset(frame, frame_hash(frame), json.dumps(
            st.session_state["load_kwargs"], sort_keys=True)).group_labels] if frame is not None else [])
    except Exception:  # noqa: BLE001 - the data's own error is shown on the Data page
        labels = []
    if not labels:
        return "e.g. Female=0.3,Male=0.1"
    shown = ",".join(f"{g}={0.3 if i % 2 == 0 else 0.1}" for i, g in enumerate(labels[:4]))
    return f"e.g. {shown}" + (",..." if len(labels) > 4 else "")


#: One line per setting; the terms the report also explains use the report's words.
HELP = {
    "arms": (f"{glossary['arm']} baseline: {glossary['baseline']} uniform_dropout: "
             f"{glossary['uniform dropout']} group_dropout: {glossary['group-specific dropout']} "
             f"dp_sgd: {glossary['DP-SGD']} dp_sgd_f: {glossary['DPSGD-F']}"),
    "p": ("The share of hidden units zeroed at each training step in the uniform-dropout arm; "
          "the group-dropout arm spends the same average rate, split between the groups."),
    "hidden": "Widths of the model's hidden layers, comma-separated; empty trains a logistic regression.",
    "device": "Where the models train: 'auto' uses a GPU when there is one.",
    "mia": (f"{glossary['membership inference']} loss: {glossary['loss-threshold attack']} "
            f"lira: {glossary['LiRA']} rmia: {glossary['RMIA']} none: no attack."),
    "canary_kind": f"{glossary['flipped']} natural: test rows with their own labels.",
    "simultaneous_ci": (f"{glossary['simultaneous intervals']} Worth it with many groups (several "
                        "sensitive columns); each interval is wider."),
    "missing": ("Measure how each group's error grows when features are missing when the model "
                "predicts: at a grid of rates for every group, and at each group's own rate."),
    "missing_rates": ("Each group's missing rate, e.g. Female=0.3,Male=0.1 (one number: the same for "
                      "every group; empty: the grid only; group names with commas: a JSON object such "
                      "as {\"Black, Hispanic\": 0.3, \"White\": 0.1}). Records are often sparser for "
                      "some groups."),
    "missing_grid": ("Comma-separated missing rates (0 to 0.95) at which every group is measured; 0 is "
                     "always added, and at least one rate above 0 is needed."),
    "missing_train_grid": ("Comma-separated dropout rates: one extra uniform-dropout model per rate and "
                           "seed shows which training rate copes best with each missing rate (empty: "
                           "none)."),
    "white_box": ("Also audit with crafted canaries the auditor can see in the model's updates: "
                  "the strongest audit, which can prove an epsilon lower bound for dropout (dropout "
                  "itself gives none); trains one more run per arm and seed."),
}

start_with(SETUP_DEFAULTS)
st.title("2. Setup")
notice = st.session_state.pop("data_notice", None)
if notice:
    st.success(notice)
st.write("Choose which ways of training to compare (the arms) and how thorough the audit is. "
         "Every setting is kept while you move between pages; Run uses exactly what is shown here.")
st.multiselect("Arms", list(available_arms()), key="arms", help=HELP["arms"])
c1, c2, c3 = st.columns(3)
# The slider stops at the solver's largest rate: the same value is the group-dropout budget.
c1.slider("Uniform dropout rate p (= group-dropout budget)", 0.0, d.MAX_SOLVER_RATE, step=0.05,
          key="p", help=HELP["p"])
c2.number_input("DP-SGD target epsilon", 0.1, 50.0, step=0.1, key="epsilon", help=glossary["epsilon"])
c3.text_input("DP-SGD delta (empty: min(1e-5, 1/(10 n)))", key="delta", help=glossary["delta"])
c4, c5, c6 = st.columns(3)
c4.number_input("Seeds", 1, 10, key="seeds", help=glossary["seeds"])
c5.number_input("Epochs", 1, 100, key="epochs", help=glossary["epochs"])
c6.text_input("Hidden layers (e.g. 64,32; empty = linear)", key="hidden", help=HELP["hidden"])
c7, c8 = st.columns(2)
c7.selectbox("Trainer", [d.DEFAULT_TRAINER, *(t for t in available_trainers() if t != d.DEFAULT_TRAINER)],
             key="trainer", help=glossary["trainer"])
# CUDA is offered only where there is a GPU ("auto" picks it there).
c8.selectbox("Device", [dev for dev in d.DEVICE_CHOICES if dev != "cuda" or torch.cuda.is_available()],
             key="device", help=HELP["device"])
st.subheader("Privacy audit")
c9, c10, c11, c12 = st.columns(4)
mia = c9.selectbox("Membership inference", list(d.MIA_CHOICES), key="mia", help=HELP["mia"])
if mia in ("lira", "rmia"):
    c9.caption(f"lira and rmia are the same audit: {d.DEFAULT_SHADOWS} shadow models per arm, "
               "trained once, scored by both LiRA and RMIA.")
c10.number_input("Canaries (0 = no one-run audit)", 0, 5000, step=100, key="canaries",
                 help=glossary["canaries"])
c11.selectbox("Canary labels", list(d.CANARY_KIND_CHOICES), key="canary_kind", help=HELP["canary_kind"])
c12.checkbox("White-box audit", key="white_box", help=HELP["white_box"])
st.subheader("Intervals")
c13, c14 = st.columns(2)
c13.selectbox("Confidence level", list(CI_LEVELS), key="ci_level", format_func=level_text,
              help=glossary["confidence interval"])
c14.checkbox("Simultaneous across groups", key="simultaneous_ci", help=HELP["simultaneous_ci"])
st.subheader("Missing features at test time")
st.checkbox("Measure missing features", key="missing_on", help=HELP["missing"])
if st.session_state["missing_on"]:
    st.caption(MISSING_TREATMENT)
    m1, m2, m3 = st.columns(3)
    m1.text_input("Missing rate per group", key="missing_rates", placeholder=_rates_example(),
                  help=HELP["missing_rates"])
    m2.text_input("Missing rates p_test for every group", key="missing_grid", help=HELP["missing_grid"])
    m3.text_input("Training dropout rates p_train", key="missing_train_grid",
                  help=HELP["missing_train_grid"])



@st.cache_data(max_entries=16, show_spinner="Counting the models the audit trains...")
def _estimate(_frame: object, data_hash: str, load_json: str,
              config_json: str) -> tuple[dict[str, int], float]:
    estimate = estimate_audit(_dataset(_frame, data_hash, load_json),
                              AuditConfig.from_dict(json.loads(config_json)))
    return estimate.models, estimate.seconds


#: How the estimate names the models of each purpose.
PURPOSES = {"arm": "for the arms", "solver": "group-dropout candidates", "shadow": "shadow models",
            "canary": "canary runs", "missing": "uniform-dropout models for the missing-feature p_train grid"}
try:
    config = build_config(settings())
    frame = st.session_state.get("frame")
    if frame is not None:
        models, seconds = _estimate(frame, frame_hash(frame),
                                    json.dumps(st.session_state["load_kwargs"], sort_keys=True),
                                    json.dumps(config.to_dict(), sort_keys=True, default=str))
        parts = ", ".join(f"{n} {PURPOSES.get(k, k)}" for k, n in models.items())
        st.info(f"This audit trains {sum(models.values())} models ({parts}); on a 2-core CPU it "
                f"takes roughly {_duration(seconds)}.")
    else:
        st.info("Choose the data on page 1 to see how long this audit takes.")
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    show_error(exc, page="Setup")
st.button("Restore the defaults", key="restore_defaults",
          on_click=lambda: st.session_state.update(SETUP_DEFAULTS))
