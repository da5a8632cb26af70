import streamlit as st
from fairpriv_app.common import (
    build_config,
    chosen_data,
    current_job,
    job_panel,
    settings,
    show_error,
    start_audit,
)

st.title("3. Run")
frame, load_kwargs, label = chosen_data()
try:
    config = build_config(settings())
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    st.error("The settings on page 2 (Setup) are not valid yet:")
    show_error(exc)
    st.stop()
arms = ", ".join(arm.label for arm in config.arms)
st.write(f"**{label}**: {len(frame):,} rows; arms: {arms}; {len(config.seed_list)} seed(s), "
         f"{config.training.epochs} epochs; membership inference: {config.privacy_audit.mia}; "
         f"{config.privacy_audit.canaries} canaries"
         + (f"; missing features at p_test {', '.join(f'{p:g}' for p in config.missing.grid)}"
            if config.missing is not None else "")
         + ". (Change them on page 2, Setup.)")
job = current_job()
running = job is not None and job.state == "running"
if st.button("Run audit", type="primary", key="run", disabled=running,
             help="Runs in the background of this session: you can look at other pages meanwhile; "
                  "'Stop the audit' stops it."):
    start_audit(frame, load_kwargs, config, label)
    st.rerun()  # redraw the page with the button disabled while the audit runs
job_panel(full=True)
