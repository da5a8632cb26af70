"""The ``reference`` trainer: one model at a time with plain PyTorch, and Opacus'
``PrivacyEngine`` for DP-SGD (Poisson sampling, per-row clipping, Gaussian noise,
accountant). It accepts any ``nn.Module`` factory and is the ground truth other
trainers are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .._exceptions import ConfigError, InternalError, TrainingError
from ..arms._arms import DPSGDArm, DPSGDFArm
from ..dp._accounting import PrivacyLedger, noise_multiplier_for_epsilon, quiet_opacus
from ._config import TrainingConfig, stream_seed
from ._divergence import NonFiniteWatch, RunDiverged, divergence_error
from ._models import MLP
from ._trainer import (
    AdvanceCallback,
    FitJob,
    FittedModel,
    ModelFactory,
    Task,
    Trainer,
    check_shared_rows,
    register_trainer,
)

#: ``on_epoch(epochs_done)``, called after every epoch.
EpochCallback = Callable[[int], None]


class _RowBatchDataset(TensorDataset):
    """A TensorDataset that gathers a whole batch with one index operation.

    The default DataLoader path fetches rows one by one and collates them, which
    dominates the cost of training a small MLP; ``__getitems__`` is DataLoader's
    batched-fetch protocol (Opacus' Poisson loader uses it too).
    """

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long, device=self.tensors[0].device)
        return tuple(t[index] for t in self.tensors)


def _identity_collate(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return batch


@register_trainer
class ReferenceTrainer(Trainer):
    """One model at a time: plain PyTorch, and Opacus for DP-SGD.

    Parameters
    ----------
    model_factory
        Builds the network from (input width, hidden widths); any ``nn.Module``
        whose ``forward(x, rates)`` returns one output per row.
    """

    name: ClassVar[str] = "reference"

    def __init__(self, model_factory: ModelFactory | None = None) -> None:
        self.model_factory: ModelFactory = model_factory or (lambda d, h: MLP(d, hidden=h))

    def fit_many(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: torch.device,
                 task: Task = "classification", on_fitted: Callable[[int], None] | None = None,
                 on_advance: AdvanceCallback | None = None) -> list[FittedModel]:
        """One model after the other; each reports ``on_advance`` after every epoch."""
        check_shared_rows(jobs, self)
        out = []
        for i, job in enumerate(jobs):
            on_epoch: EpochCallback | None = None
            if on_advance is not None:
                on_advance([i], 0.0)
                on_epoch = _epochs_of(on_advance, i, config.epochs)
            out.append(self._fit(job, config=config, device=device, task=task, on_epoch=on_epoch))
            if on_fitted is not None:
                on_fitted(i)
        return out

    def fit(self, job: FitJob, *, config: TrainingConfig, device: torch.device,
            task: Task = "classification") -> FittedModel:
        return self._fit(job, config=config, device=device, task=task)

    def _fit(self, job: FitJob, *, config: TrainingConfig, device: torch.device,
             task: Task = "classification", on_epoch: EpochCallback | None = None) -> FittedModel:
        check_shared_rows([job], self)
        arm = job.arm
        if isinstance(arm, DPSGDFArm):
            raise ConfigError(
                f"the reference trainer cannot train arm '{arm.label}' (dp_sgd_f): Opacus has no "
                "group-adaptive clipping; use trainer 'batched' (or 'auto')",
                param="trainer", fix={"trainer": "batched"})
        if arm.private and not isinstance(arm, DPSGDArm):
            raise ConfigError(
                f"the reference trainer does not know how to train private arm kind {arm.kind!r}")
        # fork_rng keeps the caller's global RNG untouched while making every
        # draw here (init, shuffling, dropout masks) a function of the job's seed.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(job.seed)
            model = self.model_factory(job.data.X.shape[1], config.hidden).to(device)
            optimizer = _make_optimizer(model, config)
            loader = _shuffled_loader(job, config, device)
            loss_fn: nn.Module = nn.BCEWithLogitsLoss() if task == "classification" else nn.MSELoss()
            try:
                if isinstance(arm, DPSGDArm):
                    ledger = _train_private(job, model, optimizer, loader, loss_fn, config, device, on_epoch)
                else:
                    _run_epochs(model, optimizer, loader, loss_fn, config.epochs, on_epoch)
                    ledger = PrivacyLedger(mechanism=arm.kind)
            except RunDiverged as stopped:
                raise divergence_error(stopped, job, config) from None
        return FittedModel(model=model, ledger=ledger, device=device, task=task)


def _epochs_of(on_advance: AdvanceCallback, position: int, epochs: int) -> EpochCallback:
    def on_epoch(done: int) -> None:
        on_advance([position], done / epochs)

    return on_epoch


def _shuffled_loader(job: FitJob, config: TrainingConfig, device: torch.device) -> DataLoader:
    data = _RowBatchDataset(
        torch.as_tensor(job.data.X, dtype=torch.float32, device=device),
        torch.as_tensor(job.data.y, dtype=torch.float32, device=device),
        torch.as_tensor(job.rates, dtype=torch.float32, device=device),
    )
    generator = torch.Generator(device="cpu").manual_seed(stream_seed(job.seed, job.arm.label, "sampling"))
    return DataLoader(data, batch_size=min(config.batch_size, job.data.n), shuffle=True,
                      generator=generator, collate_fn=_identity_collate)  # type: ignore[arg-type]


def _train_private(job: FitJob, model: nn.Module, optimizer: torch.optim.Optimizer,
                   loader: DataLoader, loss_fn: nn.Module, config: TrainingConfig,
                   device: torch.device, on_epoch: EpochCallback | None = None) -> PrivacyLedger:
    """DP-SGD through Opacus; ``model`` is left a plain module with the trained weights."""
    if job.epsilon is None or job.delta is None:
        raise ConfigError("dp_sgd needs a target epsilon and delta")
    with quiet_opacus():
        pending, model_dp, optimizer, loader = _make_private(job, model, optimizer, loader, config, device)
        _run_epochs(model_dp, optimizer, loader, loss_fn, config.epochs, on_epoch)
        ledger = _finish_ledger(pending, job.delta)
    # Drop Opacus' hooks and per-sample attributes: the module GradSampleModule
    # wrapped is a plain module again.
    model_dp.cleanup()  # type: ignore[operator]
    return ledger


def _make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)


def _run_epochs(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                loss_fn: nn.Module, epochs: int, on_epoch: EpochCallback | None = None) -> None:
    """Train; raise :class:`RunDiverged` (checked after every epoch) at the first step whose
    loss, applied gradient or resulting weights are not finite."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    watch = NonFiniteWatch(1, params[0].device if params else torch.device("cpu"))
    for epoch in range(epochs):
        for xb, yb, rb in loader:
            optimizer.zero_grad(set_to_none=True)
            if xb.shape[0] == 0:
                # An empty Poisson draw still takes a (noise-only) DP step: skipping
                # it would change the mechanism the accountant describes.
                loss = (model(xb, rb) * 0.0).sum()
            else:
                loss = loss_fn(model(xb, rb), yb)
            watch.loss(loss.reshape(1, 1))
            loss.backward()
            optimizer.step()
            # After the step, .grad holds the gradient applied (for DP-SGD: noised and clipped).
            watch.gradient([p.grad[None] for p in params if p.grad is not None] or [loss.reshape(1, 1)])
            watch.weights([p[None] for p in params])
            watch.end_step()
        divergence = watch.first()
        if divergence is not None:
            raise RunDiverged(divergence, seed=None, steps=epochs * len(loader), steps_per_epoch=len(loader))
        if on_epoch is not None:
            on_epoch(epoch + 1)


@dataclass
class _PendingLedger:
    arm: DPSGDArm
    engine: Any  # opacus.PrivacyEngine, whose accountant records every step taken
    noise_multiplier: float
    sample_rate: float
    steps: int


def _make_private(
    job: FitJob, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
    config: TrainingConfig, device: torch.device,
) -> tuple[_PendingLedger, nn.Module, torch.optim.Optimizer, DataLoader]:
    from opacus import PrivacyEngine

    arm, epsilon, delta, seed = job.arm, job.epsilon, job.delta, job.seed
    if not isinstance(arm, DPSGDArm) or epsilon is None or delta is None:
        raise InternalError(f"arm '{arm.label}' reached DP training without dp_sgd's epsilon and delta")

    # Opacus samples each row with q = 1 / len(loader) and takes len(loader) steps
    # per epoch; the noise multiplier is calibrated for exactly those numbers.
    sample_rate = 1.0 / len(loader)
    steps = config.epochs * len(loader)
    sigma = noise_multiplier_for_epsilon(
        target_epsilon=epsilon, sample_rate=sample_rate, steps=steps, delta=delta,
        accountant=arm.accountant,
    )
    # secure_mode=False: reproducible audits need seeded generators; the noise is
    # then not from a cryptographically secure RNG, which reports state.
    engine = PrivacyEngine(accountant=arm.accountant, secure_mode=False)
    noise_gen = torch.Generator(device=device).manual_seed(stream_seed(seed, arm.label, "noise"))
    model_dp, optimizer_dp, loader_dp = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=float(arm.max_grad_norm), poisson_sampling=True,
        noise_generator=noise_gen,
    )
    # Opacus' sampler takes int(1 / q) steps per epoch, which floating point can make
    # one fewer than len(loader) (e.g. 93 -> 92); fix it to the steps accounted for.
    sampler = loader_dp.batch_sampler
    if getattr(sampler, "steps", len(loader)) != len(loader):
        sampler.steps = len(loader)
    pending = _PendingLedger(arm, engine, sigma, sample_rate, steps)
    return pending, model_dp, optimizer_dp, loader_dp


def _finish_ledger(pending: _PendingLedger, delta: float) -> PrivacyLedger:
    accountant = pending.engine.accountant
    steps_taken = sum(int(n) for _, _, n in accountant.history)
    if steps_taken != pending.steps:
        raise TrainingError(
            f"DP-SGD took {steps_taken} steps but the noise was calibrated for {pending.steps}; "
            "no epsilon can be reported for this run")
    recorded = {(float(sig), float(q)) for sig, q, _ in accountant.history}
    if any(q < pending.sample_rate or sig != pending.noise_multiplier for sig, q in recorded):
        raise TrainingError(f"the accountant recorded {sorted(recorded)}, not the mechanism run")
    # Opacus records q = 1 / len(DP loader), which floating point can make 1/(s-1) while
    # rows are sampled with q = 1/s: conservative, but not the mechanism that ran. The
    # accountant is asked about the steps it counted at the rate actually sampled.
    accountant.history = [(pending.noise_multiplier, pending.sample_rate, steps_taken)]
    eps = float(accountant.get_epsilon(delta=delta))
    if not math.isfinite(eps):
        raise TrainingError(f"the accountant returned a non-finite epsilon ({eps})")
    from ..dp._accounting import GUARANTEE_ASSUMPTIONS

    return PrivacyLedger(
        mechanism="dp_sgd", epsilon=eps, delta=delta, noise_multiplier=pending.noise_multiplier,
        sample_rate=pending.sample_rate, steps=pending.steps, accountant=pending.arm.accountant,
        max_grad_norm=float(pending.arm.max_grad_norm), guarantee=GUARANTEE_ASSUMPTIONS,
    )

