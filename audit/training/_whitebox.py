"""What a white-box auditor plants in a canary run and observes at every step.

Two kinds of canary, both fixed before training and included by coin flips drawn in
the plan (:mod:`audit.privacy._canaries`):

* **Row canaries** are rows of the run (crafted: Gaussian inputs far larger than any
  real row, labels by coin). At every step the trainer records how closely the step's
  update (the privatised gradient for DP-SGD, the minibatch mean gradient otherwise,
  dropout masks and all) carries each canary's input on the first layer,
  :func:`row_canary_matches`: a test that needs neither the masks nor the canaries'
  gradients. Every arm gets them.
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
from ._stacked_mlp import StackedModels

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
    gradient: GradientCanaries | None = None

    @property
    def observes_rows(self) -> bool:
        return self.rows_X is not None and self.rows_X.shape[0] > 0


@dataclass(eq=False)
class WhiteBoxTrace:
    """One model's observations: per step and canary, float32.

    Attributes
    ----------
    row_matches
        ``(steps, row canaries)``: how closely each step's update carries each row canary
        (:func:`row_canary_matches`), in ``[0, 1]``.
    gradient_observation
        ``(steps, gradient canaries)``: the privatised update on each canary's coordinate,
        times the expected batch size over C (an included, sampled canary adds about 1).
    """

    row_matches: np.ndarray | None = None
    gradient_observation: np.ndarray | None = None
    _rows: list[torch.Tensor] = field(default_factory=list, repr=False)
    _gradient: list[torch.Tensor] = field(default_factory=list, repr=False)


def stack_rows(X: torch.Tensor, models: int) -> torch.Tensor:
    """The same rows for every model, as a contiguous ``(K, rows, d)`` (a broadcast view
    would send batched matrix products down a path 40x slower)."""
    return X.unsqueeze(0).expand(models, -1, -1).contiguous()


def _layer_names(n_hidden: int) -> list[str]:
    return [f"hidden.{layer}" if layer < n_hidden else "output" for layer in range(n_hidden + 1)]


#: A first-layer row's coordinates that count as its support: at least this fraction of
#: its largest entry. A canary's masked input puts a large entry on every coordinate its
#: mask kept (the canary's values are about ``canary_scale``) and nothing on the others,
#: which then hold only the real rows' small contributions.
SUPPORT_FRACTION = 0.02
#: Rows with fewer support coordinates are not compared: a canary cut down to one or two
#: coordinates by its mask looks like every other canary cut down to them.
MIN_SUPPORT = 5
#: Rows whose largest entry is below this fraction of the step's largest are dead units.
ACTIVE_FRACTION = 1e-3


def first_layer(n_hidden: int) -> str:
    """Name prefix of the layer that reads the rows (the output layer of a linear model)."""
    return _layer_names(n_hidden)[0]


def row_canary_matches(models: StackedModels, X: torch.Tensor,
                       update: dict[str, torch.Tensor]) -> torch.Tensor:
    """How closely the step's update carries each row canary, ``(K, rows)`` in ``[0, 1]``.

    A row's gradient on the first layer's weights is ``delta a^T``: every row of that
    block is a multiple of the row's input ``a`` as the layer saw it, after the dropout
    mask ``m`` the auditor does not see (``a = x * m / keep``). A canary's input is
    large (Gaussian, about ``canary_scale`` per coordinate), so that when it is in the
    batch it dominates the rows of the block on the hidden units it reaches, and those
    rows are proportional to ``x`` on the coordinates its mask kept and about 0 on the
    others, whatever the mask was. So for each row ``g`` of the update's block, with ``S``
    its support (:data:`SUPPORT_FRACTION`), a canary's match is ``|cos(g_S, x_S)|``, and
    its match in the step is the largest over rows with at least :data:`MIN_SUPPORT`
    support coordinates. A canary in the batch matches to 1 up to the real rows' share;
    a canary that is not matches only by chance (a random direction on 5 or more
    coordinates). Hidden-unit masks only choose which rows carry the canary.

    ``X`` is the canaries stacked per model (:func:`stack_rows`). Costs two batched
    products of ``(hidden, inputs)`` by ``(inputs, canaries)`` per step.
    """
    with torch.no_grad():
        block = update[f"{first_layer(models.n_hidden)}.weight"]          # (K, H, d)
        size = block.abs()
        peak = size.amax(dim=2, keepdim=True)                             # (K, H, 1)
        support = (size >= SUPPORT_FRACTION * peak).to(block.dtype)
        step_peak = peak.amax(dim=1, keepdim=True)
        usable = (support.sum(dim=2, keepdim=True) >= MIN_SUPPORT) & (peak > ACTIVE_FRACTION * step_peak)
        on_support = block * support
        dot = torch.bmm(on_support, X.transpose(1, 2)).abs()             # (K, H, rows)
        row_norm = on_support.norm(dim=2, keepdim=True)
        canary_norm = torch.bmm(support, (X * X).transpose(1, 2)).clamp_min(0).sqrt()
        cos = dot / (row_norm * canary_norm).clamp_min(1e-30)
        cos = torch.where(usable, cos, torch.zeros_like(cos))
        return cos.amax(dim=1).clamp(0.0, 1.0)
