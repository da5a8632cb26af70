"""Regenerate the golden results file of ``tests/test_golden.py``.

    python tests/golden/make_golden.py

Run it only when a change alters an audit's numbers on purpose, and say why in the
commit that updates ``small_audit.json``. The audit is small but touches every model
the engine trains: all four arms over two seeds, the solver's candidates (auto group
rates), LiRA shadow models, canary runs and the dropout-noise curve.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

import audit

GOLDEN = Path(__file__).with_name("small_audit.json")
#: Fields that legitimately change from run to run.
VOLATILE_META = ("created", "elapsed_s", "versions")


def golden_config() -> audit.AuditConfig:
    return audit.AuditConfig(
        arms=(audit.BaselineArm(), audit.UniformDropoutArm(p=0.5), audit.GroupDropoutArm(),
              audit.DPSGDArm(epsilon=3.0)),
        seeds=2,
        n_bootstrap=50,
        training=audit.TrainingConfig(hidden=(16,), epochs=2, batch_size=128),
        privacy_audit=audit.PrivacyAuditConfig(mia="lira", shadows=2, mia_bootstrap=20, canaries=200,
                                               mechanism_rows=20, mechanism_masks=8),
    )


def golden_result() -> dict[str, Any]:
    """The small audit's results.json as a dict, volatile fields removed."""
    # One thread: float reductions then run in the same order however the tests are run.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = audit.run_audit("synthetic", golden_config(), n_rows=1500)
    finally:
        torch.set_num_threads(threads)
    data = json.loads(result.to_json())
    for key in VOLATILE_META:
        data["meta"].pop(key, None)
    return data


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden_result(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
