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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from ._stacked_mlp import StreamGenerators, clip_factors, noisy_mean

__all__ = ["DPSGDPrivatizer"]


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
