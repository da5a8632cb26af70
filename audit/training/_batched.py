"""The ``batched`` trainer: K MLPs with stacked parameters trained in one pass.

An audit trains many small models (arms x seeds, later candidate dropout rates,
shadow models, canary runs). Training them one by one pays Python and kernel
overhead K times; here every tensor carries a leading model axis ``K`` and one
step updates all K models.

Each model keeps its own seed (initialisation, sampling, dropout masks and
noise come from its own generators), per-row dropout rates, learning rate and,
for DP-SGD, clipping norm, noise multiplier and sampling rate.

DP-SGD follows Opacus exactly (``GradSampleModule`` + ``DPOptimizer`` with
``loss_reduction="mean"``): every step each model draws its batch by Poisson
sampling (each row independently with probability q); every per-row gradient is
clipped to norm C with factor ``min(1, C / (||g_i|| + 1e-6))``; the clipped sum gets
Gaussian noise of std ``sigma * C`` and is divided by the expected batch size
``int(q * N)``. Draws of different sizes are padded to a common width with a
validity mask; a draw larger than the padded width is processed in several
chunks (never truncated or redrawn, which would change the mechanism).

Two ways to get per-row gradient norms:

* ``"ghost"`` (default for the MLP): a Linear layer fed one vector per row has
  per-row weight gradient ``delta_i a_i^T``, whose norm is ``|delta_i| |a_i|``; with
  the bias, ``|g_i|^2 = sum_l |delta_i^l|^2 (|a_i^l|^2 + 1)``. The clipped sum is then
  one batched matrix product ``A^T (c * Delta)`` per layer, and no per-row gradient
  is ever materialised (DESIGN section 4).
* ``"vmap"``: per-row gradients with ``torch.func`` (``functional_call``, ``vmap``,
  ``grad``) for any module, materialised in row chunks that fit a memory budget.

DPSGD-F (the ``dp_sgd_f`` arm) runs the same step with one hook
(:class:`_GroupAdaptiveStep`): after the Poisson draw, a first pass computes the sampled
rows' gradient norms, the per-group counts of sampled and of clipped rows are released
with Gaussian noise, and each group's bound follows from them
(:class:`~audit.training._privatizer.GroupAdaptivePrivatizer`); the second pass is
DP-SGD's clipped sum with each row clipped to its group's bound, and the noise is scaled
by the largest bound. The white-box audit's gradient canaries of such a run are clipped
and noised with that largest bound, the strongest audit of the gradient part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .._exceptions import ConfigError, InternalError, TrainingError
from ..arms._arms import DPSGDArm, DPSGDFArm
from ..dp._accounting import (
    GROUP_ADAPTIVE_ASSUMPTIONS,
    GUARANTEE_ASSUMPTIONS,
    PrivacyLedger,
    compute_epsilon,
    noise_multiplier_for_epsilon,
    split_noise_multiplier,
)
from ._config import TrainingConfig
from ._cost import STACKED_BATCHES, JobWork, Mechanisms, job_costs, stacked_batch
from ._divergence import NonFiniteWatch, RunDiverged, divergence_error
from ._models import MLP
from ._privatizer import DPSGDPrivatizer, GroupAdaptivePrivatizer
from ._stacked_mlp import (
    PerSampleMode,
    RowChunk,
    StackedModels,
    StackedOptimizer,
    StreamGenerators,
    chunk_masks,
    clipped_sum,
    default_padded_width,
    dropout_masks,
    mean_grad,
    peak_rss_mb,
    row_bytes,
    row_loss,
    row_norms2,
)
from ._trainer import (
    AdvanceCallback,
    FitJob,
    FittedModel,
    Task,
    Trainer,
    check_shared_rows,
    register_trainer,
    report_interval,
)
from ._whitebox import (
    AUDIT_BLOCK,
    GradientCanaries,
    WhiteBoxProbe,
    WhiteBoxTrace,
    row_canary_matches,
    stack_rows,
)

__all__ = ["BatchEngine", "BatchedModelSpec", "BatchedTrainer", "BatchStats", "DPRowCount", "train_mlp_batch"]


@dataclass(frozen=True, kw_only=True)
class BatchedModelSpec:
    """One model of a batch.

    Attributes
    ----------
    seed
        Initialisation uses ``torch.manual_seed(seed)`` as the reference trainer does;
        sampling, dropout and noise use generators seeded from it.
    rates
        Dropout rate of every training row, shape ``(n,)``.
    lr
        Learning rate.
    stream
        Name mixed into the seeds of the model's random streams (the arm's name), so
        that two arms trained with one seed draw independent batches and noise.
    max_grad_norm, noise_multiplier, sample_rate
        DP-SGD parameters; all ``None`` for a non-private model. For DPSGD-F,
        ``max_grad_norm`` is the base bound C0 and ``noise_multiplier`` the gradient's
        (s2, relative to the step's largest group bound).
    statistics_noise_multiplier, max_clip_ratio, groups, n_groups
        DPSGD-F only (all ``None`` otherwise): the std s1 of the per-group counts' noise,
        the cap on a group's bound over C0, and each row's group index ``(n,)`` among
        ``n_groups``.
    """

    seed: int
    rates: np.ndarray
    lr: float
    stream: str = ""
    max_grad_norm: float | None = None
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    statistics_noise_multiplier: float | None = None
    max_clip_ratio: float | None = None
    groups: np.ndarray | None = None
    n_groups: int | None = None

    @property
    def private(self) -> bool:
        return self.noise_multiplier is not None

    @property
    def group_adaptive(self) -> bool:
        """Whether the model is trained by DPSGD-F (group-adaptive clipping)."""
        return self.statistics_noise_multiplier is not None


@dataclass
class BatchStats:
    """What a batch run measured: steps, Poisson draw sizes and peak memory."""

    steps: int = 0
    max_draw: int = 0
    min_draw: int = 0
    chunks: int = 0
    peak_memory_mb: float = float("nan")
    draw_sizes: list[int] = field(default_factory=list)
    #: DPSGD-F: each model's clipping bound per group, averaged over the steps ``(K, G)``.
    mean_group_bounds: np.ndarray | None = None
    #: What a white-box probe observed, one trace per model (empty without a probe).
    traces: list[WhiteBoxTrace] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BatchEngine:
    """How a batch is computed (never what is trained).

    Attributes
    ----------
    per_sample
        ``"ghost"`` (MLP only: per-row norms from layer inputs and output gradients) or
        ``"vmap"`` (``torch.func`` per-row gradients of any module from ``model_factory``).
    padded_batch
        Width of the padded Poisson draw; larger draws are processed in chunks.
        Default: the expected batch plus six standard deviations.
    memory_budget_mb
        Bound on the per-chunk working set; rows are chunked to stay under it.
    model_factory
        Builds one model from (input width, hidden widths); default :class:`MLP`.
    privatizer
        DP-SGD's sampling, clipping and noise (:class:`DPSGDPrivatizer`); replaced only
        to check that the privacy audit catches a broken one (:mod:`._broken_dp`).
    group_adaptive
        DPSGD-F's noisy per-group counts and bounds (:class:`GroupAdaptivePrivatizer`).
    """

    per_sample: PerSampleMode = "ghost"
    padded_batch: int | None = None
    memory_budget_mb: float = 512.0
    model_factory: Callable[[int, Sequence[int]], nn.Module] | None = None
    privatizer: DPSGDPrivatizer = field(default_factory=DPSGDPrivatizer)
    group_adaptive: GroupAdaptivePrivatizer = field(default_factory=GroupAdaptivePrivatizer)

    def __post_init__(self) -> None:
        if self.per_sample not in ("ghost", "vmap"):
            raise ConfigError(f"per_sample must be 'ghost' or 'vmap', not {self.per_sample!r}",
                              param="per_sample")
        if self.per_sample == "ghost" and self.model_factory is not None:
            raise ConfigError("per_sample='ghost' needs the built-in MLP; use per_sample='vmap' for "
                              "other modules", param="per_sample", fix={"per_sample": "vmap"})


@dataclass(frozen=True)
class DPRowCount:
    """The row count that fixes DP-SGD's mechanism: steps per epoch and the expected
    batch size ``int(q * rows)`` (by default both follow from ``len(X)``)."""

    steps_per_epoch: int
    rows: int


def train_mlp_batch(  # noqa: PLR0913 - one keyword per independent part of a run
    X: torch.Tensor,
    y: torch.Tensor,
    specs: Sequence[BatchedModelSpec],
    *,
    config: TrainingConfig,
    task: Task = "classification",
    engine: BatchEngine | None = None,
    stats: BatchStats | None = None,
    dp_rows: DPRowCount | None = None,
    probe: WhiteBoxProbe | None = None,
    on_step: StepCallback | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Train K models on the same rows; return each model's ``state_dict``.

    Parameters
    ----------
    X, y
        Training rows and targets on the target device (float32 or float64).
    specs
        One spec per model (seed, rates, learning rate, DP parameters); either all
        private or all non-private, and either all DPSGD-F or none. ``config.lr`` is not
        used: each spec has its own.
    config
        Architecture, epochs, batch size and optimiser, shared by every model.
    engine
        How the batch is computed (:class:`BatchEngine`).
    stats
        Filled with what the run measured.
    dp_rows
        For DP: fix the mechanism by this row count instead of ``len(X)``.
    probe
        Canaries to plant and observe at every step (:mod:`._whitebox`); the traces are
        appended to ``stats.traces``. Needs the built-in MLP (``per_sample="ghost"``).
    on_step
        ``on_step(steps_done, steps)``: called with 0 before the first step, then every
        :func:`~audit.training._trainer.report_interval` steps (at least once an epoch)
        and after the last. All K models advance together. An exception it raises stops
        the run there.
    """
    if not specs:
        return []
    private = {s.private for s in specs}
    if len(private) != 1:
        raise ConfigError("a batch must be all private or all non-private models")
    if len({s.group_adaptive for s in specs}) != 1:
        raise ConfigError("a batch must be all DPSGD-F (group-adaptive) models or none")
    run = _StackedRun(X, y, specs, config, task, engine or BatchEngine(),
                      stats if stats is not None else BatchStats(), probe)
    if private.pop():
        run.train_private(dp_rows, on_step)
    else:
        run.train_plain(on_step)
    return run.states()


#: ``on_step(steps_done, steps)`` of :func:`train_mlp_batch`.
StepCallback = Callable[[int, int], None]


class _StepReports:
    """Calls ``on_step`` at the start, every few steps and after the last step, and checks
    at each of those points that no model has diverged (the watch's one host sync)."""

    def __init__(self, on_step: StepCallback | None, steps: int, steps_per_epoch: int,
                 run: _StackedRun) -> None:
        self.on_step, self.steps, self.steps_per_epoch, self.run = on_step, steps, steps_per_epoch, run
        self.every = report_interval(steps, steps_per_epoch)
        if on_step is not None:
            on_step(0, steps)

    def took(self, done: int) -> None:
        if done % self.every == 0 or done == self.steps:
            self.run.check_finite(self.steps, self.steps_per_epoch)
            if self.on_step is not None:
                self.on_step(done, self.steps)


class _StackedRun:
    """One call of :func:`train_mlp_batch`: the stacked models and their streams."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, specs: Sequence[BatchedModelSpec],
                 config: TrainingConfig, task: Task, engine: BatchEngine, stats: BatchStats,
                 probe: WhiteBoxProbe | None = None) -> None:
        self.X, self.y, self.specs, self.config, self.engine, self.stats = X, y, specs, config, engine, stats
        self.probe = probe
        if probe is not None and engine.per_sample != "ghost":
            raise ConfigError("the white-box audit needs the built-in MLP (per_sample='ghost')",
                              param="per_sample", fix={"per_sample": "ghost"})
        self.device, self.dtype = X.device, X.dtype
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        factory = engine.model_factory or (lambda d, h: MLP(d, hidden=h))
        # Initialise exactly as the reference trainer: manual_seed(seed), then build.
        templates = []
        for spec in specs:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(spec.seed)
                templates.append(factory(X.shape[1], tuple(config.hidden)).to(device=self.device,
                                                                               dtype=self.dtype))
        self.names = [name for name, _ in templates[0].named_parameters()]
        self.params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in templates])
                       for name in self.names}
        self.base = templates[0]
        self.gens = [StreamGenerators(spec.seed, spec.stream, self.device) for spec in specs]
        self.rates = torch.stack([torch.as_tensor(s.rates, dtype=self.dtype, device=self.device)
                                  for s in specs])
        self.dropout = bool((self.rates > 0).any())
        if self.dropout and engine.per_sample == "vmap":
            raise ConfigError(
                "per_sample='vmap' does not support dropout (its masks would not come from each "
                "model's own seeded stream); use per_sample='ghost' with the built-in MLP",
                param="per_sample", fix={"per_sample": "ghost"})
        self.widths = [m.in_features for m in self.base.modules() if isinstance(m, nn.Linear)]
        lr = torch.tensor([s.lr for s in specs], dtype=self.dtype, device=self.device)
        self.opt = StackedOptimizer(self.params, lr, config.optimizer)
        self.loss_fn = row_loss(task)
        self.layer_widths = [X.shape[1], *config.hidden, 1]
        self.traces = [WhiteBoxTrace() for _ in specs] if probe is not None else []
        self.watch = NonFiniteWatch(len(specs), self.device)
        if probe is not None and probe.observes_rows:
            self.canary_X = stack_rows(torch.as_tensor(probe.rows_X, dtype=self.dtype, device=self.device),
                                       len(specs))

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def _vector(self, values: Sequence[float]) -> torch.Tensor:
        """One value per model, on the training device in the training dtype."""
        return torch.tensor(values, dtype=self.dtype, device=self.device)

    def _chunk_rows(self, mode: str, width: int) -> int:
        row_cost = row_bytes(mode, len(self.specs), self.layer_widths, self.params, self.dtype)
        return max(1, min(width, int(self.engine.memory_budget_mb * 2**20 // row_cost)))

    def _step_masks(self, idx: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor] | None:
        # Each model draws masks for its own rows of this step only, in one call per
        # layer, so its stream never depends on the other models, the padding width
        # or the memory-driven chunking.
        if not self.dropout:
            return None
        keep = 1.0 - torch.gather(self.rates, 1, idx)
        return dropout_masks(self.gens, keep, counts.tolist(), self.widths)

    def _chunk(self, idx: torch.Tensor, valid: torch.Tensor, masks: list[torch.Tensor] | None,
               start: int, stop: int) -> RowChunk:
        return RowChunk(self.X[idx], self.y[idx], valid, chunk_masks(masks, start, stop))

    def train_private(self, dp_rows: DPRowCount | None, on_step: StepCallback | None = None) -> None:
        specs, n, stats, privatizer = self.specs, self.n, self.stats, self.engine.privatizer
        models = StackedModels(self.base, self.params, self.engine.per_sample, self.loss_fn)
        clip = self._vector([float(s.max_grad_norm or 0.0) for s in specs])
        sigma = self._vector([float(s.noise_multiplier or 0.0) for s in specs])
        rates = [float(s.sample_rate or 0.0) for s in specs]
        n_expected = dp_rows.rows if dp_rows is not None else n
        expected = self._vector([max(1, int(n_expected * q)) for q in rates])
        steps_per_epoch = dp_rows.steps_per_epoch if dp_rows is not None else self._plain_steps()
        width = self.engine.padded_batch or default_padded_width(n, max(rates))
        chunk_rows = self._chunk_rows(self.engine.per_sample, width)
        gradient = self.probe.gradient if self.probe is not None else None
        canaries = _GradientCanaryRun(self, gradient) if gradient is not None else None
        adaptive = _GroupAdaptiveStep(self) if specs[0].group_adaptive else None
        privatizer.start(steps_per_epoch)
        stats.min_draw = n
        reports = _StepReports(on_step, self.config.epochs * steps_per_epoch, steps_per_epoch, self)
        for step in range(self.config.epochs * steps_per_epoch):
            real = privatizer.sample(self.gens, n, rates, step)
            counts = real.sum(dim=1)
            stats.draw_sizes.extend(int(c) for c in counts)
            stats.max_draw = max(stats.max_draw, int(counts.max()))
            stats.min_draw = min(stats.min_draw, int(counts.min()))
            # Selected rows first, in row order; each model's draw then fills
            # columns [0, count_k) of the index matrix, the rest is padding.
            longest = int(counts.max())
            order = torch.argsort((~real).to(torch.int8), dim=1, stable=True)[:, :longest].to(self.device)
            masks = self._step_masks(order, counts)
            chunks = [(start, min(start + chunk_rows, longest)) for start in range(0, longest, chunk_rows)]
            valids = [(torch.arange(start, stop, device=self.device)[None, :]
                       < counts.to(self.device)[:, None]).to(self.dtype) for start, stop in chunks]
            # DPSGD-F: each group's bound for this step (first pass, noisy counts); the
            # noise is scaled by the largest bound. DP-SGD: one bound per model.
            bounds = (adaptive.bounds(models, clip, order, chunks, valids, masks)
                      if adaptive is not None else None)
            step_clip = clip if bounds is None else bounds.amax(dim=1)
            summed = {k: torch.zeros_like(v) for k, v in self.params.items()}
            for (start, stop), valid in zip(chunks, valids, strict=True):
                idx = order[:, start:stop]
                row_clip = clip if adaptive is None or bounds is None else adaptive.row_bounds(bounds, idx)
                part = clipped_sum(models, self._chunk(idx, valid, masks, start, stop), row_clip,
                                   privatizer.clip_factors, watch=self.watch)
                for key in summed:
                    summed[key] += part[key]
                stats.chunks += 1
            update = privatizer.noisy_mean(summed, self.gens, sigma, step_clip, expected)
            if canaries is not None:
                block = canaries.clipped_sum(canaries.sample(rates, step), step_clip)
                update = {**update, **privatizer.noisy_mean(block, canaries.gens, sigma, step_clip, expected)}
            self._observe(models, update)
            if canaries is not None:
                canaries.observe(update, expected, step_clip)
            self._take_step(update)
            stats.steps += 1
            reports.took(step + 1)
        if canaries is not None:
            canaries.finish()
        if adaptive is not None:
            stats.mean_group_bounds = adaptive.mean_bounds(stats.steps)

    def _observe(self, models: StackedModels, update: dict[str, torch.Tensor]) -> None:
        """Record how closely the update carries every row canary (before the step)."""
        if self.probe is None or not self.probe.observes_rows:
            return
        matches = row_canary_matches(models, self.canary_X, update).to(torch.float32).cpu()
        for k, trace in enumerate(self.traces):
            trace._rows.append(matches[k])

    def _take_step(self, update: dict[str, torch.Tensor]) -> None:
        """Apply the update; the watch sees the update and the weights it gives."""
        self.watch.gradient(update)
        self.opt.step(update)
        self.watch.weights(self.params)
        self.watch.end_step()

    def check_finite(self, steps: int, steps_per_epoch: int) -> None:
        """Raise :class:`RunDiverged` if a model's loss, gradient or weights went non-finite."""
        divergence = self.watch.first()
        if divergence is not None:
            raise RunDiverged(divergence, seed=self.specs[divergence.model].seed, steps=steps,
                              steps_per_epoch=steps_per_epoch)

    def _plain_steps(self) -> int:
        return math.ceil(self.n / min(self.config.batch_size, self.n))

    def train_plain(self, on_step: StepCallback | None = None) -> None:
        n, stats, K = self.n, self.stats, len(self.specs)
        models = StackedModels(self.base, self.params, self.engine.per_sample, self.loss_fn)
        bsz = min(self.config.batch_size, n)
        chunk_rows = self._chunk_rows("ghost", bsz)
        steps_per_epoch = self._plain_steps()
        reports = _StepReports(on_step, self.config.epochs * steps_per_epoch, steps_per_epoch, self)
        taken = 0
        for _ in range(self.config.epochs):
            perms = torch.stack([g.permutation(n) for g in self.gens]).to(self.device)
            for s in range(steps_per_epoch):
                batch = perms[:, s * bsz:(s + 1) * bsz]
                masks = self._step_masks(batch, torch.full((K,), batch.shape[1]))
                grads = {k: torch.zeros_like(v) for k, v in self.params.items()}
                for start in range(0, batch.shape[1], chunk_rows):
                    stop = min(start + chunk_rows, batch.shape[1])
                    idx = batch[:, start:stop]
                    valid = torch.ones(idx.shape, dtype=self.dtype, device=self.device)
                    part = mean_grad(models, self._chunk(idx, valid, masks, start, stop),
                                     denominator=batch.shape[1], watch=self.watch)
                    for key in grads:
                        grads[key] += part[key]
                    stats.chunks += 1
                self._observe(models, grads)
                self._take_step(grads)
                stats.steps += 1
                taken += 1
                reports.took(taken)

    def states(self) -> list[dict[str, torch.Tensor]]:
        for trace in self.traces:
            if trace._rows:
                trace.row_matches = torch.stack(trace._rows).numpy()
                trace._rows.clear()
        self.stats.traces.extend(self.traces)
        if self.device.type == "cuda":
            self.stats.peak_memory_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.stats.peak_memory_mb = peak_rss_mb()
        return [{name: self.params[name][k].detach().clone() for name in self.names}
                for k in range(len(self.specs))]


class _GradientCanaryRun:
    """The gradient canaries of one DP run on the appended audit block: what each step
    adds and shows there (see :mod:`._whitebox`)."""

    def __init__(self, run: _StackedRun, gradient: GradientCanaries) -> None:
        self.run, self.norm = run, float(gradient.norm)
        self.privatizer = run.engine.privatizer
        self.count = gradient.count
        self.inside = torch.as_tensor(np.flatnonzero(gradient.included), device=run.device)
        self.included = int(self.inside.shape[0])
        # Sampled by the same privatizer as real rows, from streams of their own, so that
        # the real rows' batches (and hence the model) are those of a run without them.
        self.gens = [StreamGenerators(spec.seed, f"{spec.stream}/gradient canaries", run.device)
                     for spec in run.specs]

    def sample(self, rates: Sequence[float], step: int) -> torch.Tensor:
        """Which included canaries each model's step samples, ``(K, included)``."""
        return self.privatizer.sample(self.gens, self.included, rates, step).to(self.run.device)

    def clipped_sum(self, sampled: torch.Tensor, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """The audit block's clipped sum: each sampled included canary's clipped gradient on
        its coordinate, ``norm`` times the step's bound ``clip`` ``(K,)`` (DPSGD-F: its
        largest group bound) before clipping. It is noised with the canaries' own noise
        streams, again so that the model's noise is that of a run without canaries."""
        K = len(self.run.specs)
        block = torch.zeros((K, self.count), dtype=self.run.dtype, device=self.run.device)
        if self.included:
            size = clip[:, None] * self.norm
            factor = self.privatizer.clip_factors((size * size).expand(-1, self.included).contiguous(),
                                                  clip)
            block[:, self.inside] = factor * size * sampled.to(block.dtype)
        return {AUDIT_BLOCK: block}

    def observe(self, update: dict[str, torch.Tensor], expected: torch.Tensor, clip: torch.Tensor) -> None:
        """Record the audit block in units of the step's bound (noise std: the noise multiplier)."""
        seen = (update[AUDIT_BLOCK] * (expected / clip)[:, None]).to(torch.float32).cpu()
        for k, trace in enumerate(self.run.traces):
            trace._gradient.append(seen[k])

    def finish(self) -> None:
        for trace in self.run.traces:
            trace.gradient_observation = torch.stack(trace._gradient).numpy()
            trace._gradient.clear()


class _GroupAdaptiveStep:
    """DPSGD-F's part of a step of one run: the first pass over the sampled rows (their
    gradient norms), the noisy per-group counts and each group's clipping bound
    (:class:`~audit.training._privatizer.GroupAdaptivePrivatizer`)."""

    def __init__(self, run: _StackedRun) -> None:
        specs = run.specs
        n_groups = {s.n_groups for s in specs}
        if len(n_groups) != 1 or any(s.groups is None for s in specs):
            raise ConfigError("DPSGD-F models of one batch need each row's group, among one set of groups",
                              param="groups")
        self.run, self.privatizer = run, run.engine.group_adaptive
        self.n_groups = int(n_groups.pop() or 0)
        self.groups = torch.stack([torch.as_tensor(np.asarray(s.groups), dtype=torch.int64, device=run.device)
                                   for s in specs])
        self.statistics_sigma = run._vector([float(s.statistics_noise_multiplier or 0.0) for s in specs])
        self.max_ratio = run._vector([float(s.max_clip_ratio or 1.0) for s in specs])
        self.bound_sum = torch.zeros((len(specs), self.n_groups), dtype=run.dtype, device=run.device)

    def bounds(self, models: StackedModels, clip: torch.Tensor, order: torch.Tensor,
               chunks: Sequence[tuple[int, int]], valids: Sequence[torch.Tensor],
               masks: list[torch.Tensor] | None) -> torch.Tensor:
        """Each group's bound ``(K, G)`` for this step, from the noisy counts of its draw."""
        counts = torch.zeros_like(self.bound_sum)
        over = torch.zeros_like(counts)
        for (start, stop), valid in zip(chunks, valids, strict=True):
            idx = order[:, start:stop]
            norm2 = row_norms2(models, self.run._chunk(idx, valid, masks, start, stop))
            b, m = self.privatizer.statistics(norm2, torch.gather(self.groups, 1, idx), valid, clip,
                                              self.n_groups)
            counts += b
            over += m
        counts, over = self.privatizer.noisy(counts, over, self.run.gens, self.statistics_sigma)
        bounds = self.privatizer.bounds(counts, over, clip, self.max_ratio)
        self.bound_sum += bounds
        return bounds

    def row_bounds(self, bounds: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each row's bound ``(K, rows)``: its group's."""
        return torch.gather(bounds, 1, torch.gather(self.groups, 1, idx))

    def mean_bounds(self, steps: int) -> np.ndarray:
        return (self.bound_sum / max(1, steps)).to(torch.float64).cpu().numpy()


# --------------------------------------------------------------------------- trainer


@register_trainer
class BatchedTrainer(Trainer):
    """Train many MLPs at once (``torch.func``/batched matmuls); CPU or CUDA.

    Jobs are grouped into one non-private and one DP batch per call. The noise
    multiplier of each DP model comes from the same accountant call as in the
    reference trainer, so both report the same epsilon for the same arm.
    """

    name: ClassVar[str] = "batched"
    fixes_mechanism_by_row_count: ClassVar[bool] = True
    observes_steps: ClassVar[bool] = True

    def __init__(self, *, per_sample: PerSampleMode = BatchEngine.per_sample,
                 padded_batch: int | None = BatchEngine.padded_batch,
                 memory_budget_mb: float = BatchEngine.memory_budget_mb,
                 privatizer: DPSGDPrivatizer | None = None) -> None:
        self.engine = BatchEngine(per_sample=per_sample, padded_batch=padded_batch,
                                  memory_budget_mb=memory_budget_mb,
                                  privatizer=privatizer if privatizer is not None else DPSGDPrivatizer())
        self.last_stats: list[BatchStats] = []

    def fit(self, job: FitJob, *, config: TrainingConfig, device: torch.device,
            task: Task = "classification") -> FittedModel:
        return self.fit_many([job], config=config, device=device, task=task)[0]

    def fit_many(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: torch.device,
                 task: Task = "classification",
                 on_fitted: Callable[[int], None] | None = None,
                 on_advance: AdvanceCallback | None = None) -> list[FittedModel]:
        """Train every job; see :meth:`Trainer.fit_many`.

        DP jobs whose rows set ``accounting_rows`` get a mechanism (sampling rate, steps,
        noise and the expected batch size) fixed by that many rows instead of ``len(X)``.
        The non-private jobs are trained as one batch, then the DP-SGD ones, then the
        DPSGD-F ones (so that only DPSGD-F models pay its two passes): each batch reports
        ``on_advance`` for all its models together, every few steps.
        """
        data = check_shared_rows(jobs, self)
        for job in jobs:
            if job.arm.private and not isinstance(job.arm, DPSGDArm):
                raise ConfigError(
                    f"the batched trainer does not know how to train private arm kind "
                    f"{job.arm.kind!r}; only dp_sgd and dp_sgd_f")
        Xt = torch.as_tensor(data.X, dtype=torch.float32, device=device)
        yt = torch.as_tensor(data.y, dtype=torch.float32, device=device)
        mechanism = _DPMechanism.for_rows(data.accounting_rows or data.n, config)
        results: list[FittedModel | None] = [None] * len(jobs)
        self.last_stats = []
        for batch in STACKED_BATCHES:
            members = [i for i, j in enumerate(jobs) if stacked_batch(j) == batch]
            if not members:
                continue
            private = batch != "plain"
            if on_advance is not None:
                on_advance(members, 0.0)
            pairs = [mechanism.spec_and_ledger(jobs[i], config) if private else
                     (BatchedModelSpec(seed=jobs[i].seed, rates=jobs[i].rates, lr=config.lr,
                                       stream=jobs[i].arm.label), PrivacyLedger(mechanism=jobs[i].arm.kind))
                     for i in members]
            try:
                states, traces = self._train_group(Xt, yt, [s for s, _ in pairs], config, task, mechanism,
                                                   data.probe, _steps_of(on_advance, members))
            except RunDiverged as stopped:
                raise divergence_error(stopped, jobs[members[stopped.divergence.model]], config) from None
            for pos, (i, state, (_, ledger)) in enumerate(zip(members, states, pairs, strict=True)):
                model = MLP(data.X.shape[1], hidden=config.hidden).to(device)
                model.load_state_dict(state)
                results[i] = FittedModel(model=model, ledger=ledger, device=device, task=task,
                                         trace=traces[pos] if traces else None)
                if on_fitted is not None:
                    on_fitted(i)
        return _all_fitted(results)

    def _train_group(self, X: torch.Tensor, y: torch.Tensor, specs: list[BatchedModelSpec],
                     config: TrainingConfig, task: Task, mechanism: _DPMechanism,
                     probe: WhiteBoxProbe | None, on_step: StepCallback | None = None,
                     ) -> tuple[list[dict[str, torch.Tensor]], list[WhiteBoxTrace]]:
        """One call of :func:`train_mlp_batch` for jobs that are all private or all not.

        Gradient canaries need clipping and noise: non-private models get the row
        canaries of a probe only.
        """
        private = specs[0].private
        stats = BatchStats()
        if probe is not None and not private and probe.gradient is not None:
            probe = WhiteBoxProbe(rows_X=probe.rows_X)
        states = train_mlp_batch(
            X, y, specs, config=config, task=task, engine=self.engine, stats=stats,
            dp_rows=DPRowCount(mechanism.steps_per_epoch, mechanism.rows) if private else None,
            probe=probe, on_step=on_step)
        self.last_stats.append(stats)
        n = X.shape[0]
        plain_steps = config.epochs * math.ceil(n / min(config.batch_size, n))
        expected_steps = mechanism.steps if private else plain_steps
        if stats.steps != expected_steps:
            raise TrainingError(
                f"the batched trainer took {stats.steps} steps but accounted for {expected_steps}; "
                "no epsilon can be reported for this run")
        return states, stats.traces

    def work(self, jobs: Sequence[FitJob], *, config: TrainingConfig,
             mechanisms: Mechanisms | None = None) -> list[JobWork]:
        """Estimated cost of each job: one batch for the non-private jobs and one for the
        private ones, each batch's cost shared by its models."""
        return job_costs(jobs, config, stacked=True, mechanisms=mechanisms)


@dataclass(frozen=True)
class _DPMechanism:
    """Poisson sampling rate and steps of DP-SGD, fixed by a row count and the config."""

    rows: int
    steps_per_epoch: int
    sample_rate: float
    steps: int

    @classmethod
    def for_rows(cls, rows: int, config: TrainingConfig) -> _DPMechanism:
        steps_per_epoch = math.ceil(rows / min(config.batch_size, rows))
        return cls(rows, steps_per_epoch, 1.0 / steps_per_epoch, config.epochs * steps_per_epoch)

    def spec_and_ledger(self, job: FitJob, config: TrainingConfig) -> tuple[BatchedModelSpec, PrivacyLedger]:
        """The noise multiplier calibrated for the job's budget, and the ledger it earns.

        DPSGD-F: the same calibration gives the effective noise multiplier of a step
        (counts and gradient together), which the arm's ``statistics_share`` splits into the
        gradient's and the counts' (:func:`~audit.dp._accounting.split_noise_multiplier`);
        the epsilon is the accountant's for the effective one, counts included.
        """
        arm = job.arm
        if not isinstance(arm, DPSGDArm):
            raise InternalError(f"arm '{arm.label}' is private but not dp_sgd")
        if job.epsilon is None or job.delta is None:
            raise ConfigError(f"{arm.kind} needs a target epsilon and delta")
        sigma = noise_multiplier_for_epsilon(
            target_epsilon=job.epsilon, sample_rate=self.sample_rate, steps=self.steps,
            delta=job.delta, accountant=arm.accountant)
        if isinstance(arm, DPSGDFArm):
            return self._group_adaptive(job, arm, sigma, config)
        spec = BatchedModelSpec(
            seed=job.seed, rates=job.rates, lr=config.lr, stream=arm.label,
            max_grad_norm=float(arm.max_grad_norm), noise_multiplier=sigma, sample_rate=self.sample_rate)
        eps = compute_epsilon(sample_rate=self.sample_rate, noise_multiplier=sigma, steps=self.steps,
                              delta=job.delta, accountant=arm.accountant)
        ledger = PrivacyLedger(
            mechanism="dp_sgd", epsilon=eps, delta=job.delta, noise_multiplier=sigma,
            sample_rate=self.sample_rate, steps=self.steps, accountant=arm.accountant,
            max_grad_norm=float(arm.max_grad_norm), guarantee=GUARANTEE_ASSUMPTIONS)
        return spec, ledger

    def _group_adaptive(self, job: FitJob, arm: DPSGDFArm, effective: float, config: TrainingConfig
                        ) -> tuple[BatchedModelSpec, PrivacyLedger]:
        if job.groups is None or job.n_groups is None or job.delta is None:
            raise ConfigError(f"arm '{arm.label}' (dp_sgd_f) needs every training row's group",
                              param="groups")
        gradient, statistics = split_noise_multiplier(effective, arm.statistics_share)
        spec = BatchedModelSpec(
            seed=job.seed, rates=job.rates, lr=config.lr, stream=arm.label,
            max_grad_norm=float(arm.max_grad_norm), noise_multiplier=gradient, sample_rate=self.sample_rate,
            statistics_noise_multiplier=statistics, max_clip_ratio=float(arm.max_clip_ratio),
            groups=job.groups, n_groups=job.n_groups)
        eps = compute_epsilon(sample_rate=self.sample_rate, noise_multiplier=effective, steps=self.steps,
                              delta=job.delta, accountant=arm.accountant)
        ledger = PrivacyLedger(
            mechanism="dp_sgd_f", epsilon=eps, delta=job.delta, noise_multiplier=effective,
            sample_rate=self.sample_rate, steps=self.steps, accountant=arm.accountant,
            max_grad_norm=float(arm.max_grad_norm), guarantee=GROUP_ADAPTIVE_ASSUMPTIONS,
            gradient_noise_multiplier=gradient, statistics_noise_multiplier=statistics)
        return spec, ledger


def _steps_of(on_advance: AdvanceCallback | None, members: list[int]) -> StepCallback | None:
    """A batch's ``on_step`` reporting its models' advance (its start is reported before
    the noise is calibrated, so the step-0 call is not repeated)."""
    if on_advance is None:
        return None
    callback = on_advance

    def on_step(done: int, steps: int) -> None:
        if done > 0:
            callback(members, done / steps)

    return on_step


def _all_fitted(results: list[FittedModel | None]) -> list[FittedModel]:
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise InternalError(f"no fitted model for job(s) {missing}")
    return [r for r in results if r is not None]
