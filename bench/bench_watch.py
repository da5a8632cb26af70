"""What watching every step for non-finite values costs the batched trainer.

Usage::

    python bench/bench_watch.py [--rows 20000 --models 8 --epochs 3 --repeats 3]

Trains the same batch of models (half plain, half DP-SGD) with the watch as shipped and
with its checks replaced by no-ops, alternating the two, in one process, and prints the
best time of each and their ratio. The watch adds one finite-check per tensor per step,
kept on the device and read only at progress points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import (  # noqa: E402
    BaselineArm,
    BatchedTrainer,
    DPSGDArm,
    FitJob,
    TrainingConfig,
    TrainingRows,
    UniformDropoutArm,
)
from audit.training import _divergence  # noqa: E402


def _jobs(rows: int, models: int) -> list[FitJob]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20)).astype(np.float32)
    y = (X[:, 0] + rng.normal(0, 1, rows) > 0).astype(np.float32)
    data = TrainingRows(X, y)
    arms = [BaselineArm(), UniformDropoutArm(p=0.3), DPSGDArm()]
    jobs = []
    for k in range(models):
        arm = arms[k % 3]
        rates = np.full(rows, 0.3 if isinstance(arm, UniformDropoutArm) else 0.0)
        private = isinstance(arm, DPSGDArm)
        jobs.append(FitJob(arm=arm, data=data, rates=rates, seed=k, epsilon=3.0 if private else None,
                           delta=1e-5 if private else None))
    return jobs


class _Unwatched(_divergence.NonFiniteWatch):
    def loss(self, per_row: torch.Tensor, valid: torch.Tensor) -> None:
        pass

    def gradient(self, update: object) -> None:  # type: ignore[override]
        pass

    def weights(self, params: object) -> None:  # type: ignore[override]
        pass


def _time(jobs: list[FitJob], config: TrainingConfig, watched: bool) -> float:
    from audit.training import _batched

    _batched.NonFiniteWatch = _divergence.NonFiniteWatch if watched else _Unwatched  # type: ignore[misc]
    start = time.perf_counter()
    BatchedTrainer().fit_many(jobs, config=config, device=torch.device("cpu"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jobs = _jobs(args.rows, args.models)
    config = TrainingConfig(epochs=args.epochs)
    _time(jobs, config, True)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for watched in (False, True):
            times[watched].append(_time(jobs, config, watched))
    with_watch, without = min(times[True]), min(times[False])
    print(f"batched trainer, {args.models} models x {args.rows} rows x {args.epochs} epochs (CPU): "
          f"unwatched {without:.2f} s, watched {with_watch:.2f} s, ratio {with_watch / without:.3f}")


if __name__ == "__main__":
    main()
