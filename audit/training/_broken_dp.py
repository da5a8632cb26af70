"""Deliberately broken DP-SGD steps, to test that the privacy audit catches them.

Each subclass of :class:`DPSGDPrivatizer` breaks one part of the step while the trainer
still reports the honest accountant's epsilon, as a buggy implementation would:

* :class:`NoiseDividedBy4` -- the noise standard deviation is ``sigma C / 4``;
* :class:`SkippedClipping` -- per-row gradients are summed unclipped;
* :class:`ShuffledBatches` -- fixed-size batches from one shuffle per epoch (each row
  exactly once per epoch), accounted as if Poisson-sampled: the common data-loader
  mistake (the accountant's amplification-by-sampling argument assumes Poisson);
* :class:`ReusedNoise` -- one noise draw reused at every step (a generator re-seeded
  each step), so that noise no longer averages out over steps.

Never use these to train a model anyone relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from ._privatizer import DPSGDPrivatizer
from ._stacked_mlp import StreamGenerators

__all__ = ["BROKEN_PRIVATIZERS", "NoiseDividedBy4", "ReusedNoise", "ShuffledBatches", "SkippedClipping"]


class NoiseDividedBy4(DPSGDPrivatizer):
    """Noise of standard deviation ``sigma C / 4`` instead of ``sigma C``."""

    name: ClassVar[str] = "noise divided by 4"
    honest: ClassVar[bool] = False

    def noisy_mean(self, summed: dict[str, torch.Tensor], gens: Sequence[StreamGenerators],
                   sigma: torch.Tensor, clip: torch.Tensor, expected: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        return super().noisy_mean(summed, gens, sigma / 4.0, clip, expected)


class SkippedClipping(DPSGDPrivatizer):
    """Every row's gradient enters the sum at full size."""

    name: ClassVar[str] = "per-row clipping skipped"
    honest: ClassVar[bool] = False

    def clip_factors(self, norm2: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(norm2)


class ShuffledBatches(DPSGDPrivatizer):
    """Batches of ``round(q n)`` rows from one shuffle per epoch, accounted as Poisson."""

    name: ClassVar[str] = "shuffled batches accounted as Poisson"
    honest: ClassVar[bool] = False

    def start(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        # One shuffle per set of rows drawn from (real rows, gradient canaries).
        self.orders: dict[int, torch.Tensor] = {}

    def sample(self, gens: Sequence[StreamGenerators], n: int, rates: Sequence[float],
               step: int) -> torch.Tensor:
        within = step % self.steps_per_epoch
        if within == 0 or n not in self.orders:
            self.orders[n] = torch.stack([g.permutation(n) for g in gens])
        size = max(1, round(float(rates[0]) * n))
        chosen = self.orders[n][:, within * size:(within + 1) * size]
        draws = torch.zeros((len(gens), n), dtype=torch.bool)
        draws.scatter_(1, chosen, True)
        return draws


class ReusedNoise(DPSGDPrivatizer):
    """The first step's noise is added again at every later step."""

    name: ClassVar[str] = "noise drawn once and reused"
    honest: ClassVar[bool] = False

    def start(self, steps_per_epoch: int) -> None:
        self.noise: dict[str, torch.Tensor] = {}

    def noisy_mean(self, summed: dict[str, torch.Tensor], gens: Sequence[StreamGenerators],
                   sigma: torch.Tensor, clip: torch.Tensor, expected: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        fresh = {k: torch.zeros_like(v) for k, v in summed.items() if k not in self.noise}
        if fresh:
            self.noise.update(super().noisy_mean(fresh, gens, sigma, clip, torch.ones_like(expected)))
        scale = expected.reshape(-1)
        return {k: (v + self.noise[k]) / scale.reshape(-1, *([1] * (v.dim() - 1)))
                for k, v in summed.items()}


#: The broken steps by short name, as the benchmark and tests refer to them.
BROKEN_PRIVATIZERS: dict[str, type[DPSGDPrivatizer]] = {
    "noise/4": NoiseDividedBy4,
    "no clipping": SkippedClipping,
    "shuffled as Poisson": ShuffledBatches,
    "reused noise": ReusedNoise,
}
