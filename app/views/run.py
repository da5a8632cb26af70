import json

import streamlit as st
from fairpriv_app.common import cached_audit, frame_hash, show_error

st.title("Run")
frame = st.session_state.get("frame")
load_kwargs = st.session_state.get("load_kwargs")
config = st.session_state.get("config")
if frame is None or load_kwargs is None:
    st.warning("Choose the data first (page 1, then 'Use this data').")
elif config is None:
    st.warning("Open Setup (page 2) once to choose the settings.")
else:
    st.write(f"{len(frame)} rows; arms: {', '.join(a['name'] for a in config['arms'])}; "
             f"{len(config['seeds'])} seed(s).")
    if st.button("Run audit", type="primary", key="run"):
        # Clicking any widget while this runs (e.g. Cancel) stops the run: Streamlit
        # interrupts the script at its next update.
        st.button("Cancel", key="cancel")
        with st.status("Training and measuring...", expanded=True) as status:
            bar = st.progress(0.0, text="starting")
            stages = {"solve": "training a group-dropout candidate",
                      "solved": "trained a group-dropout candidate", "train": "training",
                      "trained": "trained", "shadow": "trained a shadow model (LiRA, RMIA)",
                      "canary": "trained a canary run", "metrics": "measuring fairness",
                      "privacy": "membership inference", "canaries": "scoring the canary audit",
                      "done": "done"}

            def on_progress(event) -> None:  # type: ignore[no-untyped-def]
                where = f" {event.arm} seed {event.seed}" if event.seed is not None else (
                    f" {event.arm}" if event.arm else "")
                fraction = event.done / event.total if event.total else 0.0
                bar.progress(min(fraction, 1.0), text=f"{stages.get(event.stage, event.stage)}{where}"
                             f" ({event.done}/{event.total} models)")

            try:
                text = cached_audit(frame, frame_hash(frame), json.dumps(load_kwargs, sort_keys=True),
                                    json.dumps(config, sort_keys=True, default=str),
                                    progress=on_progress)
                st.session_state["result_json"] = text
                status.update(label="Audit finished", state="complete")
            except Exception as exc:  # noqa: BLE001 - shown, never a traceback
                status.update(label="Audit failed", state="error")
                show_error(exc)
    if st.session_state.get("result_json"):
        st.success("A finished audit is kept for this session: see Results and Report.")
