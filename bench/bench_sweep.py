"""A sweep on this machine with the local backend and with Ray (2 workers), side by side.

Usage::

    python bench/bench_sweep.py [--rows 10000 --epochs 5 --seeds 3]

The same 3-epsilon x 4-arm x 3-seed sweep (epsilons 1, 2, 4; dropout budget 0.5; so six
points: baseline, uniform and group dropout at 0.5, DP-SGD at each epsilon) on the
synthetic data, first with ``backend="local"`` (one point after another, torch on every
core), then with ``backend="ray"`` on a local cluster of ``--workers`` CPUs (one point per
worker, one torch thread each), the cluster's start included. Prints both times and
their ratio, and checks that both gave the same numbers. Needs ``pip install
'fairpriv[ray]'``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import AuditConfig, PrivacyAuditConfig, SweepConfig, TrainingConfig, load_dataset, run_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset("synthetic", n_rows=args.rows)
    audit = AuditConfig(seeds=args.seeds, training=TrainingConfig(epochs=args.epochs),
                        privacy_audit=PrivacyAuditConfig(mia="loss"))
    import ray

    times, frames = {}, {}

    def timed(name: str, backend: str) -> None:
        config = SweepConfig(epsilons=(1, 2, 4), budgets=(0.5,), audit=audit, backend=backend,
                             workers=args.workers)
        start = time.perf_counter()
        frames[name] = run_sweep(dataset, config).frame
        times[name] = time.perf_counter() - start

    timed("local", "local")
    timed("ray", "ray")  # starts a local cluster and stops it: its start-up is counted
    ray.init(num_cpus=args.workers, num_gpus=0, include_dashboard=False, log_to_driver=False)
    ray.get(ray.remote(lambda: None).remote())  # a warm cluster, as `--address` would join
    timed("ray, warm cluster", "ray")
    ray.shutdown()
    for name in ("ray", "ray, warm cluster"):
        pd.testing.assert_frame_equal(frames[name], frames["local"], check_exact=True)
    print(f"sweep of 6 points x {args.seeds} seeds, {args.rows} rows, {args.epochs} epochs (CPU, "
          f"{args.workers} Ray workers), identical numbers:")
    for name, seconds in times.items():
        print(f"  {name:<18} {seconds:6.1f} s   ratio to local {seconds / times['local']:.2f}")


if __name__ == "__main__":
    main()
