"""Setup: the arms and settings of the audit.

Every widget default and choice list is read from :mod:`audit.defaults` (or the
engine's registries), and arms are built with :func:`audit.make_arm`, so a default
or a new arm changes in the engine and nowhere here.
"""

from collections.abc import Sequence
from typing import Any

import streamlit as st
import torch
from fairpriv_app.common import show_error

from audit import (
    ARM_KINDS,
    AuditConfig,
    ConfigError,
    GroupDropoutArm,
    PrivacyAuditConfig,
    TrainingConfig,
    UniformDropoutArm,
    available_arms,
    available_trainers,
    make_arm,
    parse_hidden_layers,
)
from audit import defaults as d


def _delta(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"delta must be a number such as 1e-6 (or empty for the default), not {text!r}") from None


def _choice(where: Any, label: str, options: Sequence[str], default: str, key: str) -> str:
    """A selectbox (in column ``where``) over ``options``, starting on the engine's ``default``."""
    options = list(options)
    return str(where.selectbox(label, options, index=options.index(default), key=key))


def _arm_params(kind: str, p: float) -> dict[str, float]:
    """The page's settings for one arm kind; other kinds take their own defaults."""
    return {UniformDropoutArm.kind: {"p": p}, GroupDropoutArm.kind: {"budget": p}}.get(kind, {})


st.title("Setup")
arms = st.multiselect("Arms", list(available_arms()), default=list(ARM_KINDS), key="arms")
c1, c2, c3 = st.columns(3)
# The slider stops at the solver's largest rate: the same value is the group-dropout budget.
p = c1.slider("Uniform dropout rate p (= group-dropout budget)", 0.0, d.MAX_SOLVER_RATE, d.DEFAULT_DROPOUT,
              0.05, key="p")
epsilon = c2.number_input("DP-SGD target epsilon", 0.1, 50.0, d.DEFAULT_EPSILON, 0.1, key="epsilon")
delta_text = c3.text_input("DP-SGD delta (empty: min(1e-5, 1/(10 n)))", key="delta")
c4, c5, c6 = st.columns(3)
seeds = c4.number_input("Seeds", 1, 10, d.DEFAULT_SEEDS, key="seeds")
epochs = c5.number_input("Epochs", 1, 100, d.DEFAULT_EPOCHS, key="epochs")
hidden = c6.text_input("Hidden layers (e.g. 64,32; empty = linear)",
                       ",".join(str(w) for w in d.DEFAULT_HIDDEN), key="hidden")
c7, c8 = st.columns(2)
trainers = [d.DEFAULT_TRAINER, *(t for t in available_trainers() if t != d.DEFAULT_TRAINER)]
trainer = _choice(c7, "Trainer", trainers, d.DEFAULT_TRAINER, "trainer")
# CUDA is offered only where there is a GPU ("auto" picks it there).
devices = [dev for dev in d.DEVICE_CHOICES if dev != "cuda" or torch.cuda.is_available()]
device = _choice(c8, "Device", devices, d.DEFAULT_DEVICE, "device")
st.subheader("Privacy audit")
c9, c10, c11 = st.columns(3)
mia = _choice(c9, "Membership inference", d.MIA_CHOICES, d.DEFAULT_MIA, "mia")
shadowed = mia in ("lira", "rmia")
if shadowed:
    c9.caption(f"lira and rmia are the same audit: {d.DEFAULT_SHADOWS} shadow models per arm, "
               "trained once, scored by both LiRA and RMIA.")
canaries = c10.number_input("Canaries (0 = no one-run audit)", 0, 5000, d.DEFAULT_CANARIES, step=100,
                            key="canaries")
canary_kind = _choice(c11, "Canary labels", d.CANARY_KIND_CHOICES, d.DEFAULT_CANARY_KIND, "canary_kind")

try:
    arm_objs = tuple(make_arm(kind, **_arm_params(kind, p)) for kind in arms)
    config = AuditConfig(
        arms=arm_objs, seeds=int(seeds), epsilon=float(epsilon),
        delta=_delta(delta_text),
        training=TrainingConfig(hidden=parse_hidden_layers(hidden), epochs=int(epochs)),
        trainer=trainer, device=device,
        privacy_audit=PrivacyAuditConfig(mia=mia, canaries=int(canaries), canary_kind=canary_kind))
    st.session_state["config"] = config.to_dict()
    frame = st.session_state.get("frame")
    if frame is not None:
        # Rough, measured on a 2-core CPU: ~1.5 s per 10k rows x 10 epochs per model,
        # models = arms x seeds, doubled by the canary runs, plus the solver's candidates
        # and the shadow models (per arm, once).
        models = len(arm_objs) * int(seeds) * (2 if canaries else 1) + (
            30 if GroupDropoutArm.kind in arms else 0) + (
            len(arm_objs) * d.DEFAULT_SHADOWS if shadowed else 0)
        estimate = 1.5 * len(frame) / 10_000 * int(epochs) / 10 * models / 4 + 5
        st.info(f"Estimated run time on a 2-core CPU: about {estimate:.0f} s ({models} models).")
    st.success("Settings saved. Go to Run.")
except Exception as exc:  # noqa: BLE001 - shown, never a traceback
    st.session_state.pop("config", None)  # Run must not use stale settings
    show_error(exc)
