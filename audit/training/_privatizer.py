"""DP-SGD's privatisation of one step, as short named methods.

Opacus' ``DPOptimizer`` splits a step into named parts (clip, add noise, scale); the
batched trainer does the same through :class:`DPSGDPrivatizer`: which rows a step
samples (:meth:`~DPSGDPrivatizer.sample`), how much each row's gradient is scaled down
(:meth:`~DPSGDPrivatizer.clip_factors`) and the noisy mean that replaces the gradient
(:meth:`~DPSGDPrivatizer.noisy_mean`). Real rows and the white-box audit's gradient
canaries go through the same three methods, so that a fault in any of them shows in the
audit (:mod:`audit.training._broken_dp` holds deliberately broken subclasses, used only
to test the auditor).

The accountant's epsilon describes this class as written: Poisson sampling with rate q,
clipping to C, Gaussian noise of standard deviation ``sigma * C`` on the clipped sum.

DPSGD-F (the ``dp_sgd_f`` arm, :class:`~audit.DPSGDFArm`) adds two named parts before
the clipping, in :class:`GroupAdaptivePrivatizer`: the noisy per-group counts of a step
(:meth:`~GroupAdaptivePrivatizer.statistics`) and the clipping bound of each group they
give (:meth:`~GroupAdaptivePrivatizer.bounds`). Sampling, clipping (to each row's group
bound) and the noisy mean (with the largest bound) stay those of :class:`DPSGDPrivatizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from ._stacked_mlp import StreamGenerators, clip_factors, noisy_mean

__all__ = ["DPSGDPrivatizer", "GroupAdaptivePrivatizer"]


class DPSGDPrivatizer:
    """The honest DP-SGD step (what the accountant assumes).

    A privatizer may keep state across the steps of one run; :meth:`start` resets it.
    """

    #: Name recorded with a run trained by this privatizer.
    name: ClassVar[str] = "dp_sgd"
    #: Whether the accountant's epsilon describes what this privatizer does.
    honest: ClassVar[bool] = True

    def start(self, steps_per_epoch: int) -> None:
        """Called once before the first step of a run."""

    def sample(self, gens: Sequence[StreamGenerators], n: int, rates: Sequence[float],
               step: int) -> torch.Tensor:
        """Which of ``n`` rows each model's step uses: Poisson sampling, ``(K, n)`` bool."""
        return torch.stack([g.poisson(n, float(q)) for g, q in zip(gens, rates, strict=True)])

    def clip_factors(self, norm2: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """Factor each row's gradient is multiplied by, from its squared norm ``(K, rows)``."""
        return clip_factors(norm2, clip)

    def noisy_mean(self, summed: dict[str, torch.Tensor], gens: Sequence[StreamGenerators],
                   sigma: torch.Tensor, clip: torch.Tensor, expected: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        """The privatised gradient: (clipped sum + N(0, (sigma C)^2)) / expected batch size."""
        return noisy_mean(summed, gens, sigma, clip, expected)


class GroupAdaptivePrivatizer:
    """DPSGD-F's group-adaptive clipping bounds, from noisy per-group counts.

    Per step and model, with base bound C0 and G groups: ``b_g`` sampled rows of group g
    and ``m_g`` of them whose gradient norm exceeds C0 are released as
    ``b~_g = b_g + N(0, s1^2)``, ``m~_g = m_g + N(0, s1^2)`` (:meth:`statistics`; one row
    moves one group's pair by at most (1, 1), L2 sensitivity sqrt(2)). Each group's bound
    is then ``C_g = C0 * min(1 + max(rho_g, 0), max_clip_ratio)`` with
    ``rho_g = (m~_g / m~) / (b~_g / b~)`` (:meth:`bounds`), post-processing of the noisy
    counts only. The accounting of both releases together is in
    :func:`audit.dp._accounting.effective_noise_multiplier`.
    """

    def statistics(self, norm2: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor,
                   clip: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact counts of one chunk, ``(b, m)`` each ``(K, n_groups)``: valid rows per group
        and those whose gradient norm exceeds the base bound ``clip`` ``(K,)``."""
        K = norm2.shape[0]
        counts = torch.zeros((K, n_groups), dtype=norm2.dtype, device=norm2.device)
        over = torch.zeros_like(counts)
        counts.scatter_add_(1, groups, valid)
        over.scatter_add_(1, groups, valid * (norm2 > (clip * clip)[:, None]).to(valid.dtype))
        return counts, over

    def noisy(self, counts: torch.Tensor, over: torch.Tensor, gens: Sequence[StreamGenerators],
              statistics_sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The released counts: each plus N(0, s1^2) from the model's own noise stream."""
        noise = torch.stack([g.normal(torch.Size((2, counts.shape[1])), counts.dtype, counts.device)
                             for g in gens]) * statistics_sigma[:, None, None]
        return counts + noise[:, 0], over + noise[:, 1]

    def bounds(self, counts: torch.Tensor, over: torch.Tensor, clip: torch.Tensor,
               max_ratio: torch.Tensor) -> torch.Tensor:
        """Each group's clipping bound ``(K, G)`` from the released counts.

        ``rho_g = (m~_g / m~) / (b~_g / b~)``; where it is undefined or not finite
        (``m~ <= 0``, ``b~ <= 0`` or ``b~_g <= 0``) it counts as 1 (neutral).

        Examples
        --------
        Half the batch in each group, a quarter and three quarters of the clipped rows:

        >>> b = torch.tensor([[50.0, 50.0]]); m = torch.tensor([[5.0, 15.0]])
        >>> GroupAdaptivePrivatizer().bounds(b, m, torch.tensor([1.0]), torch.tensor([4.0]))
        tensor([[1.5000, 2.5000]])
        """
        total_counts = counts.sum(dim=1, keepdim=True)
        total_over = over.sum(dim=1, keepdim=True)
        rho = (over / total_over) / (counts / total_counts)
        defined = (total_over > 0) & (total_counts > 0) & (counts > 0) & torch.isfinite(rho)
        rho = torch.where(defined, rho, torch.ones_like(rho))
        ratio = torch.minimum(1.0 + rho.clamp(min=0.0), max_ratio[:, None])
        return clip[:, None] * ratio
