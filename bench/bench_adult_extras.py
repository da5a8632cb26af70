"""What the dp_sgd_f arm and the missing-feature measurement add to the default audit on Adult.

Usage::

    python bench/bench_adult_extras.py [--data ../shared/data/adult.data] [--seeds 3]

Runs, one after the other in one process, the default audit (baseline, uniform dropout,
group dropout with solved rates, DP-SGD at epsilon 3; the default privacy audit, white
box included) and the same audit with the dp_sgd_f arm added and missing features
measured (Female=0.3, Male=0.1 with the default p_test and p_train grids), and prints
each wall-clock time, their ratio, and whether the second stays under three minutes.
Needs the UCI Adult file (``adult.data`` with a header line); skipped without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import AuditConfig, MissingFeaturesConfig, load_dataset, make_arm, run_audit  # noqa: E402
from audit.arms._arms import ARM_KINDS  # noqa: E402

#: The issue's limit for the default audit with both on, on a 2-core CPU.
LIMIT_S = 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult.data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found")
        return
    data = load_dataset(args.data, target="Y", sensitive="sex")
    plain = AuditConfig(seeds=args.seeds)
    both = AuditConfig(seeds=args.seeds,
                       arms=(*(make_arm(kind) for kind in ARM_KINDS), make_arm("dp_sgd_f")),
                       missing=MissingFeaturesConfig(rates={"Female": 0.3, "Male": 0.1}))
    times = {}
    for name, config in (("default audit", plain), ("with dp_sgd_f and missing features", both)):
        start = time.perf_counter()
        run_audit(data, config)
        times[name] = time.perf_counter() - start
        print(f"{name}: {times[name]:.1f} s")
    ratio = times["with dp_sgd_f and missing features"] / times["default audit"]
    verdict = "under" if times["with dp_sgd_f and missing features"] < LIMIT_S else "OVER"
    print(f"ratio {ratio:.2f}; {verdict} the {LIMIT_S:.0f} s limit")


if __name__ == "__main__":
    main()
