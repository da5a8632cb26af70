"""What a white-box auditor plants in a canary run and observes at every step.

Two kinds of canary, both fixed before training and included by coin flips drawn in
the plan (:mod:`audit.privacy._canaries`):

* **Row canaries** are ordinary rows (test rows with flipped labels). At every step the
  trainer records, for each of them, the projection of the step's update (the
  privatised gradient for DP-SGD, the minibatch mean gradient otherwise, dropout masks
  and all) on the unit direction of that canary's own gradient at the current
  parameters (without dropout: the auditor does not see the masks). Every arm gets them.
* **Gradient canaries** (DP-SGD only) are Dirac vectors: canary ``j`` is a gradient of
  norm ``norm * C`` on coordinate ``j`` of an audit block of parameters appended to the
  model's (:data:`AUDIT_BLOCK`). The model never reads the block, so real rows'
  gradients are exactly zero there and their norms are unchanged; the block is
  privatised with the model's parameters (the noise is drawn for every coordinate).
  When included, a canary is one more row of the run, Poisson-sampled at each step
  and clipped and noised by the same
  :class:`~audit.training._privatizer.DPSGDPrivatizer` methods as real rows. DP-SGD's
  analysis does not depend on the dimension, so the accountant's epsilon holds for the
  extended parameter vector. The trainer records the privatised update on each
  canary's coordinate at every step, in units of ``C / expected batch``.

DP-SGD's guarantee covers the release of every step's privatised gradient, so an
auditor who sees them all is inside its threat model; an arm without a guarantee is
audited in the same threat model (its training trajectory is what leaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._exceptions import ConfigError
from ._stacked_mlp import StackedModels, mlp_backward, mlp_forward

__all__ = ["AUDIT_BLOCK", "GradientCanaries", "WhiteBoxProbe", "WhiteBoxTrace"]

#: Name of the appended block of parameters the gradient canaries sit on.
AUDIT_BLOCK = "audit.gradient_canaries"


@dataclass(frozen=True, eq=False)
class GradientCanaries:
    """Dirac gradient canaries of one canary run: which are in, and their norm in units of C.

    A norm above 1 is clipped to C by an honest step; were clipping skipped, the canary
    would enter at full size and stand out.
    """

    included: np.ndarray
    norm: float

    def __post_init__(self) -> None:
        if not self.norm >= 1.0:
            raise ConfigError("gradient canaries need a norm of at least the clipping norm (1), "
                              f"not {self.norm}", param="gradient_canary_norm")

    @property
    def count(self) -> int:
        return int(self.included.shape[0])


@dataclass(frozen=True, eq=False)
class WhiteBoxProbe:
    """What the trainer plants and observes in a canary run (see the module docstring)."""

    rows_X: np.ndarray | None = None
    rows_y: np.ndarray | None = None
    gradient: GradientCanaries | None = None

    @property
    def observes_rows(self) -> bool:
        return self.rows_X is not None and self.rows_X.shape[0] > 0


@dataclass(eq=False)
class WhiteBoxTrace:
    """One model's observations: per step and canary, float32.

    Attributes
    ----------
    row_projection
        ``(steps, row canaries)``: the update's projection on each row canary's unit gradient.
    gradient_observation
        ``(steps, gradient canaries)``: the privatised update on each canary's coordinate,
        times the expected batch size over C (an included, sampled canary adds about 1).
    """

    row_projection: np.ndarray | None = None
    gradient_observation: np.ndarray | None = None
    _rows: list[torch.Tensor] = field(default_factory=list, repr=False)
    _gradient: list[torch.Tensor] = field(default_factory=list, repr=False)


def stack_rows(X: torch.Tensor, y: torch.Tensor, models: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same rows for every model, as contiguous ``(K, rows, d)`` and ``(K, rows)``
    (a broadcast view would send batched matrix products down a path 40x slower)."""
    return (X.unsqueeze(0).expand(models, -1, -1).contiguous(),
            y.unsqueeze(0).expand(models, -1).contiguous())


def _layer_names(n_hidden: int) -> list[str]:
    return [f"hidden.{layer}" if layer < n_hidden else "output" for layer in range(n_hidden + 1)]


def row_projections(models: StackedModels, X: torch.Tensor, y: torch.Tensor,
                    update: dict[str, torch.Tensor]) -> torch.Tensor:
    """``<update, g_i> / ||g_i||`` for every row canary i and model, ``(K, rows)``.

    ``X`` and ``y`` are the canaries stacked per model, ``(K, rows, d)`` and ``(K, rows)``
    (:func:`stack_rows`). ``g_i`` is row i's loss gradient at the current parameters
    without dropout. For a linear layer fed ``a`` with output gradient ``delta``,
    ``<U, delta a^T> = delta . (U a)`` and ``||delta a^T||^2 = |delta|^2 |a|^2``: no
    per-row gradient is materialised.
    """
    params, n_hidden = models.params, models.n_hidden
    valid = torch.ones(y.shape, dtype=X.dtype, device=X.device)
    with torch.no_grad():
        out, inputs, pre = mlp_forward(params, X, None, n_hidden)
        deltas = mlp_backward(params, out, y, valid, pre, None, n_hidden, models.loss)
        dot = torch.zeros_like(valid)
        norm2 = torch.zeros_like(valid)
        for prefix, a, delta in zip(_layer_names(n_hidden), inputs, deltas, strict=True):
            projected = torch.baddbmm(update[f"{prefix}.bias"][:, None, :], a,
                                      update[f"{prefix}.weight"].transpose(1, 2))
            dot = dot + (delta * projected).sum(-1)
            norm2 = norm2 + (delta * delta).sum(-1) * ((a * a).sum(-1) + 1.0)
    return dot / (norm2.sqrt() + 1e-12)
