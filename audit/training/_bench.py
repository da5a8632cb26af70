"""Trainer benchmark: K models one by one through Opacus versus all at once, batched.

Both sides train the same MLP (256x256 by default), batch size, epochs and data,
in the same process, one after the other, so the printed ratios compare like with
like on one machine. Noise-multiplier calibration (an accountant search, cached
per setting) is done once before timing and excluded from both sides.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arms._arms import BaselineArm, DPSGDArm
from ..data._datasets import load_dataset, split_dataset
from ..data._preprocess import TabularPreprocessor
from ..dp._accounting import noise_multiplier_for_epsilon
from ._batched import BatchedTrainer
from ._config import TrainingConfig, resolve_device
from ._reference import ReferenceTrainer
from ._stacked_mlp import peak_rss_mb
from ._trainer import FitJob, TrainingRows

__all__ = ["BenchResult", "run_trainer_benchmark"]

DEFAULT_ADULT = Path("../shared/data/adult.data")


@dataclass
class BenchResult:
    device: str
    device_name: str
    dataset: str
    rows: int
    models: int
    epochs: int
    hidden: list[int]
    batch_size: int
    reference_s: float
    batched_s: float
    ratio: float
    nonprivate_reference_s: float
    nonprivate_batched_s: float
    nonprivate_ratio: float
    batched_dp_over_nonprivate: float
    dp_model_epoch_s: float
    peak_memory_mb: float
    peak_memory_kind: str
    torch: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        rows = [
            ("DP-SGD", self.reference_s, self.batched_s, self.ratio),
            ("non-private", self.nonprivate_reference_s, self.nonprivate_batched_s,
             self.nonprivate_ratio),
        ]
        lines = [
            f"{self.models} models x {self.epochs} epoch(s), MLP {self.hidden}, batch "
            f"{self.batch_size}, {self.dataset} ({self.rows} training rows), device "
            f"{self.device_name}, torch {self.torch}, {self.threads} thread(s)",
            f"{'':12} {'reference (s)':>14} {'batched (s)':>12} {'ratio':>7}",
        ]
        lines += [f"{name:12} {r:14.2f} {b:12.2f} {x:7.1f}" for name, r, b, x in rows]
        lines.append(f"batched DP / batched non-private time: {self.batched_dp_over_nonprivate:.2f}")
        lines.append(f"batched DP time per model-epoch: {self.dp_model_epoch_s:.4f} s")
        lines.append(f"peak memory ({self.peak_memory_kind}): {self.peak_memory_mb:.0f} MB")
        return "\n".join(lines)


def run_trainer_benchmark(
    *, models: int = 8, device: str = "cpu", epochs: int = 1, hidden: tuple[int, ...] = (256, 256),
    batch_size: int = 256, data_path: str | Path | None = None, epsilon: float = 3.0,
    max_rows: int | None = None,
) -> BenchResult:
    """Time ``models`` DP-SGD and non-private MLPs: Opacus one by one vs batched."""
    path = Path(data_path) if data_path is not None else DEFAULT_ADULT
    if path.exists():
        ds = load_dataset("adult", path=path)
        name = f"Adult ({path.name})"
    else:
        ds = load_dataset("synthetic", n_rows=32_561)
        name = "synthetic (Adult not found)"
    splits = split_dataset(ds)
    pre = TabularPreprocessor().fit(ds.features.iloc[splits.train])
    train_rows = splits.train if max_rows is None else splits.train[:max_rows]
    X = pre.transform(ds.features.iloc[train_rows])
    y = ds.y[train_rows]
    dev = resolve_device(device)
    config = TrainingConfig(hidden=hidden, epochs=epochs, batch_size=batch_size)
    rates = np.zeros(X.shape[0], dtype=np.float32)
    delta = 1e-5
    steps_per_epoch = math.ceil(X.shape[0] / batch_size)
    noise_multiplier_for_epsilon(target_epsilon=epsilon, sample_rate=1 / steps_per_epoch,
                                 steps=epochs * steps_per_epoch, delta=delta, accountant="prv")

    full = TrainingRows(X, y, name="benchmark")
    warm = min(2048, X.shape[0])
    warm_rows = TrainingRows(X[:warm], y[:warm], name="warm-up")

    def jobs(arm: Any, data: TrainingRows = full) -> list[FitJob]:
        eps = epsilon if isinstance(arm, DPSGDArm) else None
        return [FitJob(arm=arm, data=data, rates=rates[:data.n], seed=s, epsilon=eps, delta=delta)
                for s in range(models)]

    reference, batched = ReferenceTrainer(), BatchedTrainer()
    # Warm-up (allocator, kernels, Opacus import) outside the timed region.
    small = TrainingConfig(hidden=hidden, epochs=1, batch_size=batch_size)
    reference.fit_many(jobs(DPSGDArm(), warm_rows)[:1], config=small, device=dev)
    batched.fit_many(jobs(DPSGDArm(), warm_rows)[:2], config=small, device=dev)

    timings: dict[str, float] = {}
    rss_before = peak_rss_mb()
    # Batched DP first, so that the process's peak RSS right after it reflects the
    # batched trainer (plus interpreter, torch and data), not Opacus' per-row gradients.
    for label, arm in (("dp", DPSGDArm()), ("plain", BaselineArm())):
        for trainer_name, trainer in (("batched", batched), ("reference", reference)):
            _sync(dev)
            start = time.perf_counter()
            trainer.fit_many(jobs(arm), config=config, device=dev)
            _sync(dev)
            timings[f"{label}_{trainer_name}"] = time.perf_counter() - start
            if label == "dp" and trainer_name == "batched":
                rss_after_batched = peak_rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        batched.fit_many(jobs(DPSGDArm()), config=config, device=dev)
        peak, kind = torch.cuda.max_memory_allocated(dev) / 2**20, "CUDA max allocated, batched DP"
        device_name = torch.cuda.get_device_name(dev)
    else:
        peak = rss_after_batched
        kind = (f"process peak RSS after the batched DP run; {rss_before:.0f} MB before it "
                "(interpreter, torch, data)")
        device_name = f"CPU ({platform.processor() or platform.machine()})"
    return BenchResult(
        device=dev.type, device_name=device_name, dataset=name, rows=int(X.shape[0]), models=models,
        epochs=epochs, hidden=list(hidden), batch_size=batch_size,
        reference_s=timings["dp_reference"], batched_s=timings["dp_batched"],
        ratio=timings["dp_reference"] / timings["dp_batched"],
        nonprivate_reference_s=timings["plain_reference"],
        nonprivate_batched_s=timings["plain_batched"],
        nonprivate_ratio=timings["plain_reference"] / timings["plain_batched"],
        batched_dp_over_nonprivate=timings["dp_batched"] / timings["plain_batched"],
        dp_model_epoch_s=timings["dp_batched"] / (models * epochs),
        peak_memory_mb=peak, peak_memory_kind=kind, torch=torch.__version__,
        threads=torch.get_num_threads(),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
