"""Stacked-MLP maths: K MLPs as tensors with a leading model axis.

Forward and backward passes written out for the built-in :class:`MLP`, per-row
dropout masks, per-row clipped gradient sums (ghost norms, or ``torch.func`` for any
module), DP-SGD's noisy mean, the per-model random streams and a stacked Adam/SGD.
Used by the batched trainer, the dropout-noise curve and any white-box audit, so that
every one of them computes the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._exceptions import ConfigError
from ._config import stream_seed
from ._divergence import NonFiniteWatch

PerSampleMode = Literal["ghost", "vmap"]


#: Opacus' clipping factor uses this to avoid dividing by a zero norm.
CLIP_EPS = 1e-6


_ADAM_BETAS = (0.9, 0.999)


_ADAM_EPS = 1e-8


_SGD_MOMENTUM = 0.9


class StreamGenerators:
    """Per-model random streams (:func:`audit.training._config.stream_seed`), independent of
    the other models in the batch and of other arms trained with the same seed."""

    def __init__(self, seed: int, stream: str, device: torch.device) -> None:
        self.device = device
        self.sampling = torch.Generator(device="cpu").manual_seed(stream_seed(seed, stream, "sampling"))
        self.noise = torch.Generator(device=device).manual_seed(stream_seed(seed, stream, "noise"))
        self.dropout = torch.Generator(device=device).manual_seed(stream_seed(seed, stream, "dropout"))

    def poisson(self, n: int, q: float) -> torch.Tensor:
        return torch.rand(n, generator=self.sampling) < q

    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.sampling)

    def normal(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return torch.normal(0.0, 1.0, size=tuple(shape), generator=self.noise, dtype=dtype,
                            device=device)

    def keep_mask(self, keep: torch.Tensor, width: int) -> torch.Tensor:
        """Bernoulli(keep_i) mask of shape (rows, width)."""
        u = torch.rand((keep.shape[0], width), generator=self.dropout, dtype=keep.dtype,
                       device=keep.device)
        return (u < keep[:, None]).to(keep.dtype)


class RowLoss:
    """Per-row loss and its derivative w.r.t. the model output."""

    def __init__(self, task: str) -> None:
        self.classification = task == "classification"

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.classification:
            return F.binary_cross_entropy_with_logits(out, target, reduction="none")
        return (out - target) ** 2

    def grad(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.classification:
            return torch.sigmoid(out) - target
        return 2.0 * (out - target)


def row_loss(task: str) -> RowLoss:
    return RowLoss(task)


def dropout_masks(
    gens: Sequence[StreamGenerators], keep: torch.Tensor, counts: Sequence[int], widths: Sequence[int]
) -> list[torch.Tensor]:
    """Inverted-dropout multipliers (mask / keep) per layer input, shape (K, rows, width).

    Model k draws masks for its first ``counts[k]`` rows only; padding rows get 1.
    """
    out = []
    safe_keep = keep.clamp_min(1e-12)
    for width in widths:
        mult = torch.ones((*keep.shape, width), dtype=keep.dtype, device=keep.device)
        for k, g in enumerate(gens):
            c = int(counts[k])
            if c:
                mult[k, :c] = g.keep_mask(keep[k, :c], width) / safe_keep[k, :c, None]
        out.append(mult)
    return out


def chunk_masks(masks: list[torch.Tensor] | None, start: int, stop: int) -> list[torch.Tensor] | None:
    return None if masks is None else [m[:, start:stop] for m in masks]


def mlp_forward(
    params: dict[str, torch.Tensor], x: torch.Tensor, masks: list[torch.Tensor] | None,
    n_hidden: int,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Stacked MLP forward: returns output (K, rows), layer inputs and pre-activations."""
    inputs, pre = [], []
    h = x if masks is None else x * masks[0]
    for layer in range(n_hidden + 1):
        if layer < n_hidden:
            weight, bias = params[f"hidden.{layer}.weight"], params[f"hidden.{layer}.bias"]
        else:
            weight, bias = params["output.weight"], params["output.bias"]
        inputs.append(h)
        z = torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
        pre.append(z)
        if layer < n_hidden:
            h = torch.relu(z)
            if masks is not None:
                h = h * masks[layer + 1]
    return pre[-1].squeeze(-1), inputs, pre


@dataclass(frozen=True, eq=False)
class StackedModels:
    """K models as one: a template module, stacked parameters ``(K, ...)`` per name, how
    per-row gradients are taken (``"ghost"`` for the MLP, ``"vmap"`` for any module) and
    the per-row loss."""

    base: nn.Module
    params: dict[str, torch.Tensor]
    mode: PerSampleMode
    loss: RowLoss

    @property
    def n_hidden(self) -> int:
        return sum(1 for name in self.params if name.startswith("hidden.") and name.endswith(".weight"))


@dataclass(frozen=True, eq=False)
class RowChunk:
    """The rows of one chunk of a step, per model: inputs ``(K, rows, d)``, targets
    ``(K, rows)``, validity (0 on padding) and the per-layer dropout multipliers."""

    x: torch.Tensor
    y: torch.Tensor
    valid: torch.Tensor
    masks: list[torch.Tensor] | None = None


def clip_factors(norm2: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """Opacus' per-row clipping factor ``min(1, C / (||g|| + 1e-6))``, rows ``(K, rows)``.

    ``clip`` is one bound per model ``(K,)`` or one per row ``(K, rows)`` (DPSGD-F's
    group bounds)."""
    bound = clip if clip.dim() == norm2.dim() else clip[:, None]
    return (bound / (norm2.sqrt() + CLIP_EPS)).clamp(max=1.0)


ClipFactors = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class RowGradients:
    """The per-row gradients of one chunk, as the norms and sums need them: ``"ghost"``
    keeps each Linear layer's inputs and output-gradients, ``"vmap"`` the gradients."""

    norm2: torch.Tensor
    inputs: list[torch.Tensor] | None = None
    deltas: list[torch.Tensor] | None = None
    per_row: dict[str, torch.Tensor] | None = None


def row_gradients(models: StackedModels, chunk: RowChunk, watch: NonFiniteWatch | None = None
                  ) -> RowGradients:
    """Every row's squared gradient norm ``(K, rows)`` and what its clipped sum needs.

    ``"ghost"``: ``|g_i|^2 = sum_l |delta_i^l|^2 (|a_i^l|^2 + 1)`` from each layer's inputs
    and output-gradients (module docstring of :mod:`._batched`). ``watch`` is shown the
    rows' losses (the built-in MLP only: ``"vmap"`` computes no outputs here, and its
    gradients are checked by the caller)."""
    params, valid, masks = models.params, chunk.valid, chunk.masks
    if models.mode == "ghost":
        n_hidden = models.n_hidden
        with torch.no_grad():
            out, inputs, pre = mlp_forward(params, chunk.x, masks, n_hidden)
            deltas = mlp_backward(params, out, chunk.y, valid, pre, masks, n_hidden, models.loss)
            if watch is not None:
                watch.loss(models.loss(out, chunk.y), valid)
        norm2 = torch.zeros_like(valid)
        for a, delta in zip(inputs, deltas, strict=True):
            norm2 = norm2 + (delta * delta).sum(-1) * ((a * a).sum(-1) + 1.0)
        return RowGradients(norm2, inputs=inputs, deltas=deltas)
    if masks is not None:
        raise ConfigError("per_sample='vmap' does not support dropout", param="per_sample")
    per_row = per_row_grads(models.base, params, chunk.x, chunk.y, models.loss)
    norm2 = torch.stack([(g.flatten(2) ** 2).sum(-1) for g in per_row.values()]).sum(0)
    return RowGradients(norm2, per_row=per_row)


def row_norms2(models: StackedModels, chunk: RowChunk) -> torch.Tensor:
    """Squared per-row gradient norms ``(K, rows)`` of a chunk (DPSGD-F's first pass)."""
    return row_gradients(models, chunk).norm2


def clipped_sum(models: StackedModels, chunk: RowChunk, clip: torch.Tensor,
                factors: ClipFactors = clip_factors, watch: NonFiniteWatch | None = None,
                ) -> dict[str, torch.Tensor]:
    """Sum over valid rows of the per-row gradients, each clipped to its bound (by
    ``factors(norm2, clip)``, :func:`clip_factors` unless a DP-SGD step says otherwise);
    ``clip`` is one bound per model ``(K,)`` or per row ``(K, rows)``.

    ``watch`` is shown the rows' losses (:func:`row_gradients`)."""
    grads = row_gradients(models, chunk, watch)
    factor = factors(grads.norm2, clip) * chunk.valid
    if grads.per_row is not None:
        return {k: torch.einsum("kn,kn...->k...", factor, g) for k, g in grads.per_row.items()}
    assert grads.inputs is not None and grads.deltas is not None
    n_hidden = models.n_hidden
    summed: dict[str, torch.Tensor] = {}
    for layer, (a, delta) in enumerate(zip(grads.inputs, grads.deltas, strict=True)):
        prefix = f"hidden.{layer}" if layer < n_hidden else "output"
        weighted = delta * factor[..., None]
        summed[f"{prefix}.weight"] = torch.bmm(weighted.transpose(1, 2), a)
        summed[f"{prefix}.bias"] = weighted.sum(dim=1)
    return summed


def mlp_backward(
    params: dict[str, torch.Tensor], out: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
    pre: list[torch.Tensor], masks: list[torch.Tensor] | None, n_hidden: int,
    loss_fn: RowLoss,
) -> list[torch.Tensor]:
    """Per-row gradients of each row's loss w.r.t. every layer's pre-activation.

    Written out for the MLP (one batched matmul per layer) instead of autograd, which
    would also build and walk the graph of the parameters.
    """
    delta = (loss_fn.grad(out, target) * valid).unsqueeze(-1)
    deltas = [delta]
    for layer in range(n_hidden - 1, -1, -1):
        nxt = params["output.weight"] if layer == n_hidden - 1 else params[f"hidden.{layer + 1}.weight"]
        grad_in = torch.bmm(delta, nxt)  # d loss / d (input of the next layer)
        if masks is not None:
            grad_in = grad_in * masks[layer + 1]
        delta = grad_in * (pre[layer] > 0).to(grad_in.dtype)
        deltas.append(delta)
    return deltas[::-1]


def noisy_mean(
    summed: dict[str, torch.Tensor], gens: Sequence[StreamGenerators], sigma: torch.Tensor,
    clip: torch.Tensor, expected: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """DP-SGD's privatised gradient: (clipped sum + N(0, (sigma C)^2)) / expected batch size."""
    out = {}
    for key, value in summed.items():
        noise = torch.stack([g.normal(value.shape[1:], value.dtype, value.device) for g in gens])
        scale = (sigma * clip).reshape(-1, *([1] * (value.dim() - 1)))
        out[key] = (value + noise * scale) / expected.reshape(scale.shape)
    return out


def per_row_grads(
    base: nn.Module, params: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor,
    loss_fn: RowLoss,
) -> dict[str, torch.Tensor]:
    """Per-row gradients with torch.func: shape (K, rows, *param_shape) per parameter.

    The module runs in evaluation mode (no dropout: this path serves modules without
    the built-in per-row dropout).
    """
    from torch.func import functional_call, grad, vmap

    base.eval()

    def one_row(p: dict[str, torch.Tensor], x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = functional_call(base, p, (x[None],))
        return loss_fn(out.reshape(1), target.reshape(1)).sum()

    per_model = vmap(grad(one_row), in_dims=(None, 0, 0))
    result: dict[str, torch.Tensor] = vmap(per_model, in_dims=(0, 0, 0))(params, xb, yb)
    return result


def mean_grad(models: StackedModels, chunk: RowChunk, denominator: int,
              watch: NonFiniteWatch | None = None) -> dict[str, torch.Tensor]:
    """Gradient of each model's mean loss over its batch (this chunk's share); ``watch``
    is shown the rows' losses."""
    leaves = {k: v.detach().requires_grad_(True) for k, v in models.params.items()}
    if models.mode == "ghost":
        out, _, _ = mlp_forward(leaves, chunk.x, chunk.masks, models.n_hidden)
    else:
        from torch.func import functional_call, vmap

        if chunk.masks is not None:
            raise ConfigError("per_sample='vmap' does not support dropout", param="per_sample")
        base = models.base
        base.eval()

        def one_model(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, p, (x,))

        out = vmap(one_model)(leaves, chunk.x)
    per_row = models.loss(out, chunk.y)
    if watch is not None:
        watch.loss(per_row, chunk.valid)
    loss = (per_row * chunk.valid).sum() / denominator
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves.keys(), grads, strict=True))


class StackedOptimizer:
    """Adam / SGD-momentum on stacked parameters with a learning rate per model.

    Written out to match ``torch.optim.Adam`` (default betas, eps, no weight decay)
    and ``torch.optim.SGD(momentum=0.9)`` update for update.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: torch.Tensor, kind: str) -> None:
        if kind not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', not {kind!r}")
        self.params, self.lr, self.kind, self.t = params, lr, kind, 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        for key, p in self.params.items():
            g = grads[key]
            lr = self.lr.reshape(-1, *([1] * (p.dim() - 1)))
            if self.kind == "sgd":
                m = self.m[key]
                if self.t == 1:
                    m.copy_(g)
                else:
                    m.mul_(_SGD_MOMENTUM).add_(g)
                p.sub_(lr * m)
                continue
            b1, b2 = _ADAM_BETAS
            m, v = self.m[key], self.v[key]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            bias1 = 1 - b1 ** self.t
            bias2_sqrt = math.sqrt(1 - b2 ** self.t)
            denom = (v.sqrt() / bias2_sqrt).add_(_ADAM_EPS)
            p.sub_((lr / bias1) * m / denom)


def default_padded_width(n: int, q: float) -> int:
    mean = n * q
    return max(1, min(n, int(math.ceil(mean + 6.0 * math.sqrt(max(mean, 1.0))))))


def row_bytes(mode: str, K: int, widths: Sequence[int], params: dict[str, torch.Tensor],
               dtype: torch.dtype) -> int:
    item = torch.tensor([], dtype=dtype).element_size()
    if mode == "vmap":
        per_row = sum(int(np.prod(v.shape[1:])) for v in params.values())
    else:
        # inputs, masks, pre-activations and their gradients per layer
        per_row = 4 * sum(widths)
    return max(1, K * per_row * item)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

