"""The progress events of an audit, and the names of its stages and steps.

Every front end (the CLI's bar, notebooks, the app) shows the same events the same way:
:meth:`ProgressEvent.describe` is the one line of text, :attr:`ProgressEvent.fraction`
the bar. Stage keys and labels live here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PURPOSE_STAGES", "STAGES", "STEP_LABELS", "ProgressCallback", "ProgressEvent", "Stage",
           "format_duration"]


@dataclass(frozen=True)
class Stage:
    """A stage of an audit: its key (``ProgressEvent.stage``), label and what it counts."""

    key: str
    label: str
    #: What ``stage_done`` and ``stage_total`` count: ``"models"`` or ``"steps"``.
    unit: str


#: The stages, in the order an audit runs them (a stage with nothing to do is skipped).
STAGES: dict[str, Stage] = {stage.key: stage for stage in (
    Stage("solver", "Solving group-dropout rates", "models"),
    Stage("arms", "Training arms", "models"),
    Stage("shadows", "Training shadow models", "models"),
    Stage("canaries", "Training canary runs", "models"),
    Stage("measure", "Measuring", "steps"),
    Stage("done", "Done", "models"),
)}

#: The training stage of a model, by its job's purpose (:data:`audit.JOB_PURPOSES`).
PURPOSE_STAGES: dict[str, str] = {"solver": "solver", "arm": "arms", "shadow": "shadows",
                                  "canary": "canaries", "missing": "arms"}

#: What a piece of work that is not training is, as ``ProgressEvent.detail`` shows it.
STEP_LABELS: dict[str, str] = {
    "closed_form": "logistic closed form",
    "solver_scoring": "scoring the candidates",
    "metrics": "fairness metrics",
    "gap_changes": "gap changes",
    "membership": "membership inference",
    "canary_audit": "canary audit",
    "white_box": "white-box row-canary audit",
    "mechanism": "dropout noise curve",
    "missing_features": "missing features",
}


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"1 min 10 s"``, ``"2 h 5 min"``: whole seconds (rounded down, as a
    clock shows them) under an hour."""
    s = max(0, math.floor(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


@dataclass(frozen=True)
class ProgressEvent:
    """One report of an audit's progress, given to a progress callback.

    Events come when the audit starts (the totals are known from the first event,
    before any model is trained), as training advances (every few steps of every model
    or batch of models trained together, at least once an epoch), when each model
    finishes, when each measurement step starts and ends, and when the audit is done.

    Attributes
    ----------
    stage
        Key of the current stage (:data:`STAGES`): ``"solver"`` (group-dropout
        candidates, and the logistic closed form's fits that seed them), ``"arms"``,
        ``"shadows"`` (the shadow models LiRA and RMIA share), ``"canaries"`` (the
        one-run canary audit's runs), ``"measure"`` (fairness metrics, membership
        inference, canary and white-box scoring, the dropout-noise curve), ``"done"``.
    arm, seed
        The arm and seed the event is about; ``None`` when it is about several (a batch
        of models trained together) or none.
    done, total
        Models trained so far and in all, over every stage. ``total`` is known from the
        first event; it shrinks once, by the solver's folds, when the closed form's
        choice turns out to be a grid candidate already, and never grows.
    elapsed_s
        Seconds since the audit started.
    label
        The stage's human label, e.g. ``"Training arms"``.
    stage_done, stage_total
        Models (training stages) or steps (``"measure"``) of the current stage done and
        in all; at ``"done"``, all models.
    unit
        What ``stage_done`` counts: ``"models"`` or ``"steps"`` (empty: the stage's).
    detail
        What is happening now, e.g. ``"3 models together, epoch 4 of 10"`` or
        ``"membership inference"``; ``None`` when nothing more is known.
    fraction
        Share of the audit's estimated work done, 0 to 1: never decreases, 1 at
        ``"done"``. Work is estimated from each model's rows, epochs and batching and
        each measurement step's size, and rescaled by the time each kind of work takes.
    eta_s
        Estimated seconds left (``None`` until some work has been timed).

    Front ends show :meth:`describe` (one line) or :meth:`headline` and
    :meth:`eta_text` (a bar's description and postfix), so that all of them say the same.
    """

    stage: str
    arm: str | None
    seed: int | None
    done: int
    total: int
    elapsed_s: float
    label: str = ""
    stage_done: int = 0
    stage_total: int = 0
    unit: str = ""
    detail: str | None = None
    fraction: float = 0.0
    eta_s: float | None = None

    def headline(self) -> str:
        """Stage, counts and what is happening, e.g.
        ``"Training arms: 4/12 models (dp_sgd seed 1, epoch 3 of 10)"``."""
        label = self.label or (STAGES[self.stage].label if self.stage in STAGES else self.stage)
        if self.stage == "done":
            return f"{label}: {self.done} models trained in {format_duration(self.elapsed_s)}"
        where = []
        if self.arm is not None:
            where.append(self.arm if self.seed is None else f"{self.arm} seed {self.seed}")
        if self.detail:
            where.append(self.detail)
        unit = self.unit or (STAGES[self.stage].unit if self.stage in STAGES else "models")
        text = f"{label}: {self.stage_done}/{self.stage_total} {unit}"
        return f"{text} ({', '.join(where)})" if where else text

    def eta_text(self) -> str:
        """``"about 1 min 10 s left"``; empty when not yet estimated or done."""
        if self.eta_s is None or self.stage == "done" or not math.isfinite(self.eta_s):
            return ""
        if self.eta_s < 1:
            return "under a second left"
        return f"about {format_duration(self.eta_s)} left"

    def describe(self) -> str:
        """The one line every front end shows, e.g. ``"Training arms: 4/12 models
        (dp_sgd seed 1) · 37% · about 1 min 10 s left"``. The percentage is rounded
        down, so 100% means done."""
        if self.stage == "done":
            return self.headline()
        parts = [self.headline(), f"{math.floor(self.fraction * 100)}%"]
        if self.eta_text():
            parts.append(self.eta_text())
        return " · ".join(parts)


ProgressCallback = Callable[[ProgressEvent], None]
