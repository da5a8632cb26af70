"""What the white-box canary audit proves: DP-SGD at epsilon 4, dropout arms, broken DP-SGD.

    python bench/bench_whitebox_audit.py [--seeds 20] [--datasets synthetic,adult]

For each dataset: one audit of baseline, uniform dropout (p = 0.5), group dropout
(rates solved at budget 0.5) and DP-SGD (epsilon 4, delta 1e-5) over ``--seeds``
seeds, and per audit kind the lower bound of every seed (each seed at 95% confidence
on its own, i.e. the audit is run as ``--seeds`` independent one-seed audits), as
min / median / max and the ratio to the accountant's epsilon. Then, on synthetic at
epsilon 3, the deliberately broken DP-SGD
steps of ``audit.training._broken_dp``: how many of ``--bug-seeds`` seeds flag a
violation. Then the wall time of the default audit on Adult with the white-box audit
on and off, measured side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audit import AuditConfig, LocalExecutor, PrivacyAuditConfig, make_arm, run_audit
from audit.training._batched import BatchedTrainer
from audit.training._broken_dp import BROKEN_PRIVATIZERS
from audit.training._privatizer import DPSGDPrivatizer

ADULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "adult.data"


def load_options(name: str) -> tuple[str, dict[str, str]]:
    if name == "adult":
        return str(ADULT), {"target": "Y", "sensitive": "sex"}
    return name, {}


def per_seed_bounds(dataset: str, seeds: int) -> pd.DataFrame:
    data, options = load_options(dataset)
    # Group dropout solves its rates (budget 0.5, the uniform arm's p) in every audit.
    arms = (make_arm("baseline"), make_arm("uniform_dropout", p=0.5), make_arm("group_dropout"),
            make_arm("dp_sgd", epsilon=4.0, delta=1e-5))
    frames = []
    for seed in range(seeds):
        config = AuditConfig(arms=arms, seeds=(seed,), n_bootstrap=0,
                             privacy_audit=PrivacyAuditConfig(mia="none"))
        start = time.perf_counter()
        emp = run_audit(data, config, **options).empirical
        best = emp.loc[emp["audit"] == "white_box_gradient",
                       ["epsilon_lower_bound", "epsilon_lower_bound_gdp"]]
        rows = emp[emp["audit"] == "white_box_rows"].set_index("arm")["epsilon_lower_bound"]
        print(f"{dataset} seed {seed}: {time.perf_counter() - start:.0f} s; DP white-box gradient "
              f"{best.iloc[0, 0]:.2f} (Gaussian-DP {best.iloc[0, 1]:.2f}); white-box rows "
              + ", ".join(f"{arm} {value:.2f}" for arm, value in rows.items()), flush=True)
        frames.append(emp)
    return pd.concat(frames, ignore_index=True)


def summarise(emp: pd.DataFrame, dataset: str) -> None:
    print(f"\n== {dataset}: lower bounds per seed (95% each), DP-SGD accountant epsilon "
          f"{emp['run_epsilon'].max():.2f}")
    rows = []
    for (arm, audit_kind), grp in emp.groupby(["arm", "audit"], sort=False):
        for column in ("epsilon_lower_bound", "epsilon_lower_bound_gdp"):
            v = grp[column].to_numpy(dtype=float)
            eps = grp["run_epsilon"].max()
            rows.append({"arm": arm, "audit": audit_kind, "bound": "steinke" if column ==
                         "epsilon_lower_bound" else "gaussian-dp", "min": v.min(),
                         "median": np.median(v), "max": v.max(),
                         "median/eps": np.median(v) / eps if np.isfinite(eps) else np.nan,
                         "above eps": int((v > eps).sum()) if np.isfinite(eps) else 0,
                         "seeds": len(v)})
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def bugs(seeds: int) -> None:
    print(f"\n== broken DP-SGD on synthetic, epsilon 3: seeds flagged out of {seeds}")
    privatizers = {"honest": DPSGDPrivatizer, **BROKEN_PRIVATIZERS}
    for name, cls in privatizers.items():
        flagged, best = 0, []
        for seed in range(seeds):
            config = AuditConfig(arms=(make_arm("dp_sgd", epsilon=3.0),), seeds=(seed,), n_bootstrap=0,
                                 privacy_audit=PrivacyAuditConfig(mia="none"))
            executor = LocalExecutor(BatchedTrainer(privatizer=cls()))
            emp = run_audit("synthetic", config, executor=executor).empirical
            flagged += int(emp["dp_violation"].any())
            best.append(emp.loc[emp["audit"] == "white_box_gradient", "epsilon_lower_bound"].max())
        print(f"{name:40s} flagged {flagged}/{seeds}; white-box gradient bound median "
              f"{np.median(best):.2f} (max {np.max(best):.2f})")


def adult_time() -> None:
    data, options = load_options("adult")
    print("\n== default audit on Adult (4 arms, 3 seeds), side by side")
    times = {}
    for white_box in (False, True):
        config = AuditConfig(privacy_audit=PrivacyAuditConfig(white_box=white_box))
        start = time.perf_counter()
        run_audit(data, config, **options)
        times[white_box] = time.perf_counter() - start
        print(f"white_box={white_box}: {times[white_box]:.1f} s")
    print(f"ratio on/off: {times[True] / times[False]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--bug-seeds", type=int, default=5)
    parser.add_argument("--datasets", default="synthetic,adult")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: bounds,bugs,time")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    if "bounds" not in skip:
        for dataset in args.datasets.split(","):
            summarise(per_seed_bounds(dataset, args.seeds), dataset)
    if "bugs" not in skip:
        bugs(args.bug_seeds)
    if "time" not in skip:
        adult_time()


if __name__ == "__main__":
    main()
