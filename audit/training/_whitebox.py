"""What a white-box auditor plants in a canary run and observes at every step.

Two kinds of canary, both fixed before training and included by coin flips drawn in
the plan (:mod:`audit.privacy._canaries`):

* **Row canaries** are rows of the run (crafted test rows: features scaled, labels by
  coin). At every step the trainer records the least-squares weights of the canaries'
  gradients (at the current parameters, without dropout: the auditor does not see the
  masks) in the step's update (the privatised gradient for DP-SGD, the minibatch mean
  gradient otherwise, dropout masks and all), :func:`row_canary_weights`. Every arm gets
  them.
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
    row_weights
        ``(steps, row canaries)``: each row canary's least-squares weight in the update.
    gradient_observation
        ``(steps, gradient canaries)``: the privatised update on each canary's coordinate,
        times the expected batch size over C (an included, sampled canary adds about 1).
    """

    row_weights: np.ndarray | None = None
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


#: Ridge of :func:`row_canary_weights`, relative to the mean squared canary gradient norm.
RIDGE = 1e-3


def row_canary_weights(models: StackedModels, X: torch.Tensor, y: torch.Tensor,
                       update: dict[str, torch.Tensor]) -> torch.Tensor:
    """The least-squares weights ``c`` of the canaries' gradients in the update, ``(K, rows)``.

    ``X`` and ``y`` are the canaries stacked per model (:func:`stack_rows`). Solves
    ``(G G^T + lambda I) c = G u`` with ``G`` the canaries' gradients (rows) at the current
    parameters and ``u`` the update, so that a canary in the step's batch gets about its
    share of the mean (``1 / batch`` when unclipped and unmasked) and the others about 0,
    however much their gradients overlap. The Gram matrix comes from layer inputs and
    output gradients (``<delta_i a_i^T, delta_j a_j^T> = (delta_i . delta_j)(a_i . a_j)``),
    so that no per-row gradient is materialised; ``lambda`` is :data:`RIDGE` times its mean
    diagonal. It is rebuilt at every step: the crafted canaries' gradients move fast (they
    saturate), and a Gram matrix 8 steps old took the baseline's bound from 2.3 to 0.
    """
    params, n_hidden = models.params, models.n_hidden
    valid = torch.ones(y.shape, dtype=X.dtype, device=X.device)
    with torch.no_grad():
        out, inputs, pre = mlp_forward(params, X, None, n_hidden)
        deltas = mlp_backward(params, out, y, valid, pre, None, n_hidden, models.loss)
        dot = torch.zeros_like(valid)
        gram = torch.zeros((*y.shape, y.shape[1]), dtype=X.dtype, device=X.device)
        for prefix, a, delta in zip(_layer_names(n_hidden), inputs, deltas, strict=True):
            projected = torch.baddbmm(update[f"{prefix}.bias"][:, None, :], a,
                                      update[f"{prefix}.weight"].transpose(1, 2))
            dot = dot + (delta * projected).sum(-1)
            outer = torch.bmm(delta, delta.transpose(1, 2))
            gram = gram + outer * (torch.bmm(a, a.transpose(1, 2)) + 1.0)
        scale = torch.diagonal(gram, dim1=1, dim2=2).mean(dim=1).clamp_min(1e-30)
        eye = torch.eye(y.shape[1], dtype=X.dtype, device=X.device)
        factor = torch.linalg.lu_factor(gram + RIDGE * scale[:, None, None] * eye)
        return torch.linalg.lu_solve(*factor, dot.unsqueeze(-1)).squeeze(-1)
