"""Time ``audit.epsilon_lower_bound`` at m = r = 1000 canaries and guesses, delta = 1e-5.

Usage::

    python bench/bench_audit_bound.py [--canaries 1000 --repeats 5]

Each audit of a run asks for one bound per arm and seed, so this is the cost the one-run
audit adds once the models are trained. Printed as a ratio to the delta = 0 bound (one
incomplete beta function per evaluation), whose cost does not grow with m: the ratio is the
price of the delta term, which sums the binomial pmf over ``correct`` values per evaluation.
Printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _timing import best_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canaries", type=int, default=1000, help="m = r (default 1000)")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=5, help="best-of repeats (default 5)")
    args = parser.parse_args(argv)

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from audit import epsilon_lower_bound

    m = args.canaries
    cases = [(int(0.9 * m), "90% correct"), (m, "all correct")]
    for correct, what in cases:
        def with_delta(correct: int = correct) -> float:
            return epsilon_lower_bound(canaries=m, guesses=m, correct=correct, delta=args.delta)

        def pure(correct: int = correct) -> float:
            return epsilon_lower_bound(canaries=m, guesses=m, correct=correct, delta=0.0)

        t_delta, t_pure = best_of(with_delta, args.repeats), best_of(pure, args.repeats)
        print(
            f"epsilon_lower_bound m=r={m}, {what} ({correct}), delta={args.delta:g}: "
            f"{t_delta * 1e3:.2f} ms (best of {args.repeats}); delta=0: {t_pure * 1e3:.2f} ms; "
            f"ratio {t_delta / t_pure:.1f}x; bound {with_delta():.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
