"""Why dropout is not DP, measured: per-row gradient noise under dropout masks against
the row's gradient norm. Dropout's noise grows with the gradient (multiplicative);
DP-SGD adds noise of a fixed std ``sigma * C`` that does not depend on the data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..training._stacked_mlp import StreamGenerators, dropout_masks, mlp_backward, mlp_forward, row_loss
from ..training._trainer import FittedModel


def dropout_noise_curve(
    model: FittedModel, X: np.ndarray, y: np.ndarray, rates: np.ndarray, *, masks: int,
    seed: int, task: str = "classification",
) -> pd.DataFrame:
    """Per-row gradient noise from dropout masks against the row's mean gradient norm.

    For each row, ``masks`` gradients of its loss under independent dropout masks
    (inverted dropout at the row's rate) are taken w.r.t. all parameters of the MLP.

    Returns a frame with one row per input row: ``grad_norm`` (norm of the gradient
    averaged over masks), ``noise_norm`` (root-mean-square distance of the per-mask
    gradients from that mean) and ``noise_std`` (the same per coordinate,
    ``noise_norm / sqrt(parameters)``), and the row's ``rate``.
    """
    net = model.model
    params = {k: v.detach().double()[None] for k, v in net.named_parameters()}
    n_params = int(sum(v.numel() for v in params.values()))
    n_hidden = sum(1 for k in params if k.startswith("hidden.") and k.endswith(".weight"))
    widths = [m.in_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    loss = row_loss(task)
    gens = [StreamGenerators(seed, "mechanism", torch.device("cpu"))]
    out = []
    for i in range(X.shape[0]):
        x = torch.as_tensor(np.repeat(X[i:i + 1], masks, axis=0), dtype=torch.float64)[None]
        target = torch.full((1, masks), float(y[i]), dtype=torch.float64)
        keep = torch.full((1, masks), 1.0 - float(rates[i]), dtype=torch.float64)
        mult = dropout_masks(gens, keep, [masks], widths) if rates[i] > 0 else None
        valid = torch.ones(1, masks, dtype=torch.float64)
        with torch.no_grad():
            pred, inputs, pre = mlp_forward(params, x, mult, n_hidden)
            deltas = mlp_backward(params, pred, target, valid, pre, mult, n_hidden, loss)
        # Per-mask gradients of every Linear layer: delta (M, out) x input (M, in).
        grads = [torch.cat([(d[0][:, :, None] * a[0][:, None, :]).flatten(1), d[0]], dim=1)
                 for a, d in zip(inputs, deltas, strict=True)]
        g = torch.cat(grads, dim=1)  # (M, n_params)
        mean = g.mean(dim=0)
        noise = float(((g - mean) ** 2).sum(dim=1).mean().sqrt())
        out.append({"grad_norm": float(mean.norm()), "noise_norm": noise,
                    "noise_std": noise / math.sqrt(n_params), "rate": float(rates[i])})
    return pd.DataFrame(out)

