"""Training that fails clearly: non-finite losses, gradients, weights and predictions.

A model whose loss, gradient or weights turn NaN or infinite keeps "training" silently
and ends with NaN predictions, which surface much later as an unrelated error deep in a
metric ("Input contains NaN"). Every trainer instead watches each step and stops at the
first non-finite value with a :class:`~audit.TrainingError` that names the arm, the seed,
the step and what went non-finite, and suggests the likely cause
(:func:`divergence_error`); :meth:`~audit.FittedModel.predict` checks what a fitted model
predicts the same way (:func:`prediction_error`).

:class:`NonFiniteWatch` keeps its flags on the training device and is read only at the
trainer's progress points, so a GPU never waits for the host on every step; the step it
names is still the first bad one, recorded on the device as it happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._exceptions import TrainingError
from ..defaults import DEFAULT_LR
from ._config import TrainingConfig

if TYPE_CHECKING:
    from ._trainer import FitJob

__all__ = ["QUANTITIES", "Divergence", "NonFiniteWatch", "RunDiverged", "divergence_error",
           "finite_models", "prediction_error"]

#: What the watch checks each step, in the order a step computes them.
QUANTITIES = ("loss", "gradient", "weights")

#: A learning rate this many times the default or more is named as a likely cause.
LARGE_LR_FACTOR = 10.0
#: Regression targets beyond this size are named: 256 squared errors of 1e17 overflow float32.
LARGE_TARGET = 1e15
#: Standardised feature values beyond this many standard deviations are named as a likely
#: cause: a row that far out dominates every product with a weight.
EXTREME_FEATURE = 1e3


def finite_models(tensors: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
    """Whether every value of each of K stacked models is finite: ``(K,)`` booleans.

    Each tensor has the model axis first. One sum per tensor is enough: NaN or an
    infinity anywhere makes a model's sum non-finite (a sum that overflows float32 is
    flagged too, which only values near float32's limit can cause).
    """
    values = tensors.values() if isinstance(tensors, Mapping) else tensors
    total: torch.Tensor | None = None
    for t in values:
        part = t.detach().flatten(1).sum(dim=1)
        total = part if total is None else total + part
    if total is None:
        raise TrainingError("finite_models needs at least one tensor")
    return torch.isfinite(total)


@dataclass(frozen=True)
class Divergence:
    """The first non-finite value of a run: which model, at which step, in what."""

    model: int
    step: int  # 1-based
    quantity: str


class RunDiverged(TrainingError):
    """Raised by a training loop at its first non-finite value; a trainer that knows the
    jobs turns it into :func:`divergence_error`'s message (this one names the model by its
    position and seed only)."""

    def __init__(self, divergence: Divergence, *, seed: int | None, steps: int, steps_per_epoch: int) -> None:
        which = f"model {divergence.model}" + (f" (seed {seed})" if seed is not None else "")
        super().__init__(f"training diverged: the {divergence.quantity} of {which} became NaN or "
                         f"infinite at step {divergence.step} of {steps}")
        self.divergence, self.steps, self.steps_per_epoch = divergence, steps, steps_per_epoch


class NonFiniteWatch:
    """First step at which each of K models had a non-finite loss, gradient or weights.

    Call :meth:`loss`, :meth:`gradient` and :meth:`weights` during a step,
    :meth:`end_step` after it, and :meth:`first` at a progress point to read the result.
    """

    def __init__(self, models: int, device: torch.device) -> None:
        self._step = 0
        self._pending = torch.zeros((len(QUANTITIES), models), dtype=torch.bool, device=device)
        self._first = torch.full((len(QUANTITIES), models), -1, dtype=torch.long, device=device)

    def loss(self, per_row: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Per-row losses ``(K, rows)`` of a chunk; padding rows (``valid == 0``) are ignored."""
        # One sum per model, as in finite_models. Padding rows are training rows too (the
        # unsampled ones of a DP step), so a non-finite loss there is a diverged model all
        # the same.
        losses = per_row.detach() if valid is None else per_row.detach() * valid
        self._pending[0] |= ~torch.isfinite(losses.sum(dim=1))

    def gradient(self, update: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> None:
        """The update a step applies (the mean gradient, or DP-SGD's noisy clipped mean)."""
        self._pending[1] |= ~finite_models(update)

    def weights(self, params: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> None:
        """The parameters after the step."""
        self._pending[2] |= ~finite_models(params)

    def end_step(self) -> None:
        self._step += 1
        newly = self._pending & (self._first < 0)
        self._first = torch.where(newly, torch.full_like(self._first, self._step), self._first)
        self._pending.zero_()

    def first(self) -> Divergence | None:
        """The earliest non-finite value seen so far (a host sync), or ``None``."""
        seen = self._first >= 0
        if not bool(seen.any()):
            return None
        first = self._first.cpu().numpy()
        step = int(first[first >= 0].min())
        quantity, model = (int(i[0]) for i in np.nonzero(first == step))
        return Divergence(model=model, step=step, quantity=QUANTITIES[quantity])


_PURPOSES = {
    "arm": "the model of arm '{arm}'",
    "solver": "a group-dropout candidate model of arm '{arm}'",
    "canary": "a canary-audit run of arm '{arm}'",
    "shadow": "a shadow model of arm '{arm}' (for membership inference)",
}


def divergence_error(stopped: RunDiverged, job: FitJob, config: TrainingConfig) -> TrainingError:
    """The :class:`~audit.TrainingError` for ``job``, whose run raised ``stopped``.

    Names the arm, seed, step (and epoch) and what went non-finite, then the likely cause
    (:func:`likely_causes`) given the training ``config`` and the job's rows.
    """
    divergence, per_epoch = stopped.divergence, stopped.steps_per_epoch
    epoch, epochs = (divergence.step - 1) // per_epoch + 1, max(1, stopped.steps // per_epoch)
    what = _PURPOSES.get(job.purpose, _PURPOSES["arm"]).format(arm=job.arm.label)
    rows_name = "the training rows" if job.data.name == "train" else f"the rows '{job.data.name}'"
    causes, fix = likely_causes(config, job.data.X, job.data.feature_names, rows_name=rows_name,
                                y=job.data.y)
    message = (f"Training diverged: the {divergence.quantity} of {what} (seed {job.seed}) became NaN or "
               f"infinite at step {divergence.step} of {stopped.steps} (epoch {epoch} of {epochs}); training "
               f"was stopped. Likely cause: {causes}")
    return TrainingError(message, param="lr" if fix else None, fix=fix)


def likely_causes(config: TrainingConfig, X: np.ndarray, feature_names: Sequence[str] | None = None, *,
                  rows_name: str = "the training rows",
                  y: np.ndarray | None = None) -> tuple[str, dict[str, object] | None]:
    """Why a model's values would turn non-finite, most likely first, and the fix to suggest.

    A learning rate of :data:`LARGE_LR_FACTOR` times the default or more is named first
    (Adam's steps are about ``lr`` in size, so only a large rate drives the weights to
    infinity); then regression targets whose squared errors summed over a batch overflow
    float32; then feature values many standard deviations from the training mean (rows
    that reach a model without the audit's encoder, or test rows far out).
    """
    causes: list[str] = []
    fix: dict[str, object] | None = None
    if config.lr >= LARGE_LR_FACTOR * DEFAULT_LR:
        causes.append(f"a learning rate {config.lr / DEFAULT_LR:.3g} times the default; lower it, "
                      f"e.g. lr={DEFAULT_LR:g}")
        fix = {"lr": DEFAULT_LR}
    largest_target = float(np.nanmax(np.abs(y))) if y is not None and y.size else 0.0
    if largest_target > LARGE_TARGET:
        causes.append(f"target values as large as {largest_target:.3g}, whose squared errors summed "
                      "over a batch overflow 32-bit floats; rescale the target (e.g. in thousands)")
    extreme = _most_extreme_feature(X, feature_names, rows_name)
    if extreme is not None:
        causes.append(extreme)
    if not causes:
        causes.append(f"none of the usual ones (a learning rate {LARGE_LR_FACTOR:g} or more times the "
                      f"default {DEFAULT_LR:g}, huge targets, feature values far from their training "
                      "mean) applies; try a lower learning rate, and please report this with the "
                      "data's shape")
    return "; also possible: ".join(causes) + ".", fix


def _most_extreme_feature(X: np.ndarray, feature_names: Sequence[str] | None, rows_name: str,
                          row_numbers: np.ndarray | None = None) -> str | None:
    """The feature value farthest from its training mean, if it is beyond EXTREME_FEATURE
    (``row_numbers``: how to number the rows of ``X`` in the message, default 1, 2, ...;
    ``rows_name``: what the rows are)."""
    if X.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(np.asarray(X, dtype=np.float64))
    magnitude[~np.isfinite(magnitude)] = np.inf
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    value = float(magnitude[row, col])
    if value < EXTREME_FEATURE:
        return None
    name = (f"feature '{feature_names[int(col)]}'" if feature_names is not None and col < len(feature_names)
            else f"encoded feature {col + 1}")
    number = int(row_numbers[row]) if row_numbers is not None else int(row) + 1
    if not np.isfinite(value):
        return (f"{name} is NaN or infinite in row {number} of {rows_name}: give the model rows "
                "encoded by the audit's encoder, which never gives such values")
    return (f"{name} is {value:.3g} standard deviations from its training mean in row {number} "
            f"of {rows_name}: cap or remove such outliers")


def prediction_error(pred: np.ndarray, X: np.ndarray, *, arm: str | None, seed: int | None,
                     feature_names: Sequence[str] | None = None) -> TrainingError | None:
    """A :class:`~audit.TrainingError` if a fitted model predicted non-finite values, else ``None``."""
    bad = np.flatnonzero(~np.isfinite(pred))
    if bad.shape[0] == 0:
        return None
    who = f"the model of arm '{arm}' (seed {seed})" if arm is not None else "the model"
    rows = [int(i) + 1 for i in bad[:5]]
    extreme = _most_extreme_feature(X[bad], feature_names, "the rows it scored", row_numbers=bad + 1)
    cause = extreme if extreme is not None else (
        "weights that grew huge in training; lower the learning rate (lr=) or train fewer epochs")
    return TrainingError(
        f"{who} predicted NaN or infinite values for {bad.shape[0]} of {pred.shape[0]} rows (first "
        f"at rows {rows} of the rows it scored). Likely cause: {cause}.")
