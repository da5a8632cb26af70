"""The group-dropout solver on Adult (sex), MLP, budget 0.5: today's routes side by side.

    python bench/bench_solver.py [--data ../shared/data/adult.data]

Times, in one run: the single-validation-split search (``folds=0``, one model per
candidate and seed, 3 seeds: the solver before cross-fitting), the cross-fitted search
(``folds=4``, the default: one model per candidate and fold, plus the logistic closed
form's seed), and the logistic closed form on its own (``model="logistic"``); prints
each one's rates and verdict and the ratio of cross-fitted to single-split time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audit import load_dataset, solve_group_dropout

ADULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "adult.data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ADULT))
    args = parser.parse_args()
    dataset = load_dataset("adult", path=args.data, sensitive="sex")
    times = {}
    for name, options in (("single validation split (folds=0, 3 seeds)", {"model": "mlp", "folds": 0}),
                          ("cross-fitted (folds=4) + logistic seed", {"model": "mlp", "folds": 4}),
                          ("logistic closed form", {"model": "logistic"})):
        start = time.perf_counter()
        solution = solve_group_dropout(dataset, budget=0.5, seeds=3, **options)
        times[name] = time.perf_counter() - start
        rates = ", ".join(f"{g}={r:.3f}" for g, r in solution.rates.items())
        print(f"{name}: {times[name]:.1f} s; rates {rates}; {solution.verdict}", flush=True)
    single, cross = list(times.values())[:2]
    print(f"ratio cross-fitted / single split: {cross / single:.2f}")


if __name__ == "__main__":
    main()
