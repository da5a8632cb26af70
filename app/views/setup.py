import streamlit as st
from fairpriv_app.common import show_error

from audit import (
    ARM_KINDS,
    AuditConfig,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    GroupDropoutArm,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    parse_hidden_layers,
)


def _delta(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"delta must be a number such as 1e-6 (or empty for the default), not {text!r}") from None


st.title("Setup")
arms = st.multiselect("Arms", list(ARM_KINDS), default=list(ARM_KINDS), key="arms")
c1, c2, c3 = st.columns(3)
p = c1.slider("Uniform dropout rate p (= group-dropout budget)", 0.0, 0.9, 0.5, 0.05, key="p")
epsilon = c2.number_input("DP-SGD target epsilon", 0.1, 50.0, 3.0, 0.1, key="epsilon")
delta_text = c3.text_input("DP-SGD delta (empty: min(1e-5, 1/(10 n)))", key="delta")
c4, c5, c6 = st.columns(3)
seeds = c4.number_input("Seeds", 1, 10, 3, key="seeds")
epochs = c5.number_input("Epochs", 1, 100, 10, key="epochs")
hidden = c6.text_input("Hidden layers (e.g. 64,32; empty = linear)", "64", key="hidden")
c7, c8 = st.columns(2)
trainer = c7.selectbox("Trainer", ["auto", "batched", "reference"], key="trainer")
import torch  # noqa: E402

devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
device = c8.selectbox("Device", devices, key="device")
st.subheader("Privacy audit")
c9, c10, c11 = st.columns(3)
mia = c9.selectbox("Membership inference", ["loss", "lira", "none"], key="mia")
canaries = c10.number_input("Canaries (0 = no one-run audit)", 0, 5000, 1000, step=100, key="canaries")
canary_kind = c11.selectbox("Canary labels", ["flipped", "natural"], key="canary_kind")

try:
    arm_objs = []
    for kind in arms:
        arm_objs.append({"baseline": BaselineArm, "uniform_dropout": lambda: UniformDropoutArm(p=p),
                         "group_dropout": lambda: GroupDropoutArm(budget=p),
                         "dp_sgd": DPSGDArm}[kind]())
    config = AuditConfig(
        arms=tuple(arm_objs), seeds=int(seeds), epsilon=float(epsilon),
        delta=_delta(delta_text),
        training=TrainingConfig(hidden=parse_hidden_layers(hidden), epochs=int(epochs)),
        trainer=trainer, device=device,
        privacy_audit=PrivacyAuditConfig(mia=mia, canaries=int(canaries), canary_kind=canary_kind))
    st.session_state["config"] = config.to_dict()
    frame = st.session_state.get("frame")
    if frame is not None:
        # Rough, measured on a 2-core CPU: ~1.5 s per 10k rows x 10 epochs per model,
        # models = arms x seeds, doubled by the canary runs, plus the solver's candidates.
        models = len(arm_objs) * int(seeds) * (2 if canaries else 1) + (
            30 if "group_dropout" in arms else 0)
        estimate = 1.5 * len(frame) / 10_000 * int(epochs) / 10 * models / 4 + 5
        st.info(f"Estimated run time on a 2-core CPU: about {estimate:.0f} s ({models} models).")
    st.success("Settings saved. Go to Run.")
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    st.session_state.pop("config", None)  # Run must not use stale settings
    show_error(exc)
