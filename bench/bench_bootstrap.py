"""Benchmark ``audit.fairness._bootstrap.bootstrap_group_metrics`` against fairlearn's bootstrap.

Usage::

    python bench/bench_bootstrap.py [--rows 50000 --groups 10 --resamples 1000 --seeds 1]

Times the vectorised group-stratified bootstrap with all six metrics (best of
``--repeats`` runs) and, in the same process, fairlearn's own bootstrap
(``MetricFrame(..., n_boot=N, ci_quantiles=[0.025, 0.975], random_state=0)``)
with ONE metric and TWO groups for a small ``N``.  fairlearn's time is then
extrapolated linearly to ``--resamples`` resamples: running it for real at
1000 resamples would take minutes.  The comparison favours fairlearn, which
does 1 metric x 2 groups x 1 seed per resample versus 6 metrics x G groups x
S seeds (+ pooled) here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
from _timing import best_of

TARGET_SECONDS = 2.0
TARGET_CONFIG = {"rows": 50_000, "groups": 10, "resamples": 1000, "seeds": 1}


def _load_bootstrap_module() -> ModuleType:
    """Import ``audit.fairness._bootstrap`` from this checkout, without installing it."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("audit.fairness._bootstrap")


def make_data(
    rows: int, groups: int, seeds: int, rng_seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic labels, unequal groups and continuous model-like scores.

    Group sizes are Dirichlet-distributed (the smallest groups are a few
    percent of the rows), base rates and score quality differ by group, and
    each "training seed" perturbs the logits slightly.
    """
    rng = np.random.default_rng(rng_seed)
    props = rng.dirichlet(np.full(groups, 3.0))
    group_idx = rng.choice(groups, size=rows, p=props)
    labels = np.array([f"g{k:02d}" for k in range(groups)])[group_idx]
    base_rate = rng.uniform(0.15, 0.45, size=groups)[group_idx]
    y = (rng.random(rows) < base_rate).astype(np.int64)
    separation = rng.uniform(1.0, 2.5, size=groups)[group_idx]
    latent = rng.normal(size=rows) + separation * y - 0.8
    noise = 0.15 * rng.normal(size=(seeds, rows))
    scores = 1.0 / (1.0 + np.exp(-(latent + noise)))
    return y, scores, labels


def time_fairlearn(
    y: np.ndarray, pred: np.ndarray, groups2: np.ndarray, n_boot: int
) -> tuple[float, float]:
    """Seconds per bootstrap resample of fairlearn's MetricFrame, and its base cost."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import zero_one_loss

    def frame(**boot: object) -> None:
        MetricFrame(
            metrics=zero_one_loss, y_true=y, y_pred=pred, sensitive_features=groups2, **boot
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = best_of(frame, 2)
        start = time.perf_counter()
        frame(n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=0)
        total = time.perf_counter() - start
    return max(total - base, 0.0) / n_boot, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_CONFIG["rows"])
    parser.add_argument("--groups", type=int, default=TARGET_CONFIG["groups"])
    parser.add_argument("--resamples", type=int, default=TARGET_CONFIG["resamples"])
    parser.add_argument("--seeds", type=int, default=TARGET_CONFIG["seeds"])
    parser.add_argument("--repeats", type=int, default=3, help="best-of repeats (default 3)")
    parser.add_argument(
        "--fairlearn-boot", type=int, default=20, help="fairlearn n_boot actually run (default 20)"
    )
    parser.add_argument("--skip-fairlearn", action="store_true")
    args = parser.parse_args(argv)

    bs = _load_bootstrap_module()
    y, scores, groups = make_data(args.rows, args.groups, args.seeds)
    sizes = np.unique(groups, return_counts=True)[1]
    print(
        f"data: {args.rows} rows, {args.groups} groups (sizes {sizes.min()}..{sizes.max()}), "
        f"{args.seeds} seed(s), positive rate {y.mean():.3f}"
    )

    def ours() -> object:
        return bs.bootstrap_group_metrics(
            y, scores, groups, n_resamples=args.resamples, seed=0, metrics=bs.METRICS
        )

    ours_s = best_of(ours, args.repeats)
    print(
        f"audit.fairness._bootstrap: {args.resamples} resamples x {len(bs.METRICS)} metrics "
        f"x {args.groups} groups (+pooled) x {args.seeds} seed(s): "
        f"{ours_s:.3f} s (best of {args.repeats})"
    )

    if not args.skip_fairlearn:
        pred = (scores[0] >= 0.5).astype(np.int64)
        groups2 = np.where(groups < np.sort(np.unique(groups))[args.groups // 2], "A", "B")
        per_boot, base = time_fairlearn(y, pred, groups2, args.fairlearn_boot)
        fair_s = per_boot * args.resamples
        print(
            f"fairlearn MetricFrame bootstrap, 1 metric (error rate) x 2 groups: "
            f"ran n_boot={args.fairlearn_boot} ({per_boot * 1e3:.1f} ms/resample after "
            f"subtracting the {base:.3f} s non-bootstrap frame), EXTRAPOLATED linearly "
            f"to {args.resamples} resamples: {fair_s:.1f} s"
        )
        print(
            f"speed-up: {fair_s / ours_s:.0f}x (fairlearn extrapolated, doing 1/"
            f"{len(bs.METRICS) * args.groups * args.seeds} of the metric work)"
        )

    config = {k: getattr(args, k) for k in TARGET_CONFIG}
    if config == TARGET_CONFIG:
        verdict = "MET" if ours_s < TARGET_SECONDS else "NOT MET"
        print(
            f"target: < {TARGET_SECONDS:.0f} s for 1000 resamples x 50k rows x 10 groups "
            f"x all metrics: {verdict} ({ours_s:.3f} s)"
        )
    else:
        print(f"target ({TARGET_SECONDS:.0f} s) applies to {TARGET_CONFIG}; not evaluated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
