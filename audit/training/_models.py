"""The tabular model: an MLP whose dropout rate is chosen per row from its group."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "GroupDropout"]


class GroupDropout(nn.Module):
    """Inverted dropout with a rate per row.

    Row ``i`` keeps each unit with probability ``1 - p_i`` and scales survivors by
    ``1 / (1 - p_i)``, so the expected activation is unchanged. Uniform dropout is
    the special case of one rate for every row. Off in evaluation mode.
    """

    def forward(self, x: torch.Tensor, rates: torch.Tensor | None) -> torch.Tensor:
        if not self.training or rates is None:
            return x
        keep = (1.0 - rates).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        # No shortcut for all-zero rates: a data-dependent branch would break
        # torch.func.vmap, and bernoulli(1) is simply 1.
        mask = torch.bernoulli(keep.expand_as(x))
        return x * mask / keep


class MLP(nn.Module):
    """Multi-layer perceptron for a binary (one logit) or regression (one value) output.

    Dropout is applied to the inputs and after every hidden activation, with each
    row's own rate. ``hidden=()`` gives a linear (logistic) model with input dropout,
    the setting of DESIGN section 2's closed form.

    Parameters
    ----------
    in_features
        Width of the encoded input.
    hidden
        Hidden layer widths.

    Examples
    --------
    >>> import torch
    >>> model = MLP(3, hidden=(4,))
    >>> model(torch.zeros(2, 3), torch.full((2,), 0.5)).shape
    torch.Size([2])
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.output = nn.Linear(widths[-1], 1)
        self.dropout = GroupDropout()
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor, rates: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dropout(x, rates)
        for layer in self.hidden:
            h = self.dropout(self.activation(layer(h)), rates)
        return self.output(h).squeeze(-1)
