"""The one-run canary audit (Steinke, Nasr, Jagielski 2023).

``m`` canaries (test rows, with flipped labels by default) are each included in
training with probability 1/2; the arm is trained once on the training rows plus the
included canaries with exactly its mechanism (a DP arm's mechanism is fixed by
``n_train + m`` before the coins are tossed); canaries are scored by loss; the auditor
guesses "in" for the ``k+`` highest and "out" for the ``k-`` lowest scores, fixed in
advance. From the number of correct guesses the largest epsilon still consistent with
them at the chosen confidence is a valid lower bound on the run's epsilon. A lower
bound above a DP arm's accountant epsilon means the DP implementation is wrong:
``dp_violation``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._exceptions import ConfigError
from ..arms._arms import Arm
from ..data._encoded import EncodedSplit
from ..training._trainer import FittedModel, TrainingRows
from ._audit_bound import epsilon_lower_bound
from ._config import PrivacyAuditConfig
from ._membership import row_losses


@dataclass(frozen=True)
class CanaryPlan:
    """Canary rows (positions into the test split), their labels, and who is included."""

    rows: np.ndarray
    labels: np.ndarray
    included: np.ndarray
    k_plus: int
    k_minus: int


def isolation(X_test: np.ndarray, X_train: np.ndarray, k: int = 5, chunk: int = 2048) -> np.ndarray:
    """Distance from each test row to its k-th nearest training row (encoded features)."""
    train = torch.as_tensor(X_train, dtype=torch.float32)
    out = []
    for start in range(0, len(X_test), chunk):
        block = torch.as_tensor(X_test[start:start + chunk], dtype=torch.float32)
        dist = torch.cdist(block, train)
        out.append(dist.topk(min(k, train.shape[0]), largest=False).values[:, -1].numpy())
    return np.concatenate(out) if out else np.zeros(0)


def canary_plan(y_test: np.ndarray, config: PrivacyAuditConfig, seed: int,
                isolation_scores: np.ndarray | None = None) -> CanaryPlan:
    """Draw the canaries and their inclusion coins before any training (fixed guesses)."""
    m = min(config.canaries, len(y_test))
    if m < 2:
        raise ConfigError(
            f"the one-run audit needs at least 2 canaries, but only {m} are available (test rows: "
            f"{len(y_test)}); use more data or canaries=0 to skip it")
    rng = np.random.default_rng([seed, 0xCA7A])
    if config.canary_rows == "isolated" and isolation_scores is not None:
        rows = np.sort(np.argsort(-isolation_scores, kind="stable")[:m])
    else:
        rows = np.sort(rng.choice(len(y_test), m, replace=False))
    labels = y_test[rows].astype(float)
    if config.canary_kind == "flipped":
        labels = 1.0 - labels
    included = rng.random(m) < 0.5
    # Never more "in" plus "out" guesses than canaries.
    k = min(max(1, int(round(config.guess_fraction * m))), m // 2)
    return CanaryPlan(rows, labels, included, k, k)


def score_canaries(model: FittedModel, X: np.ndarray, labels: np.ndarray, plan: CanaryPlan
                   ) -> tuple[int, int]:
    """Guesses from canary losses: (number of guesses, number correct)."""
    scores = -row_losses(model, X, labels)
    order = np.argsort(-scores, kind="stable")
    guess_in, guess_out = order[: plan.k_plus], order[len(order) - plan.k_minus:]
    correct = int(plan.included[guess_in].sum() + (~plan.included[guess_out]).sum())
    return plan.k_plus + plan.k_minus, correct


@dataclass(frozen=True, eq=False)
class CanaryRun:
    """One seed's canary run, fixed before any training: which canaries go in, the rows
    the run trains on (training rows, then the included canaries) and their groups.

    The DP mechanism of the run (q, steps, noise) is fixed by ``n_train + m`` through
    ``rows.accounting_rows``, known before the coins are tossed: were it derived from the
    realised training-set size, adding one canary could change the mechanism, and the
    accountant's (epsilon, delta) would not cover it.
    """

    seed: int
    plan: CanaryPlan
    rows: TrainingRows
    groups: np.ndarray


def plan_canary_runs(train: EncodedSplit, test: EncodedSplit, *, seeds: Sequence[int],
                     config: PrivacyAuditConfig) -> list[CanaryRun]:
    """The canary run of every seed: canaries (test rows), coins and training rows."""
    iso = isolation(test.X, train.X) if config.canary_rows == "isolated" else None
    runs = []
    for seed in seeds:
        plan = canary_plan(test.y, config, seed, iso)
        inc = plan.rows[plan.included]
        rows = TrainingRows(np.concatenate([train.X, test.X[inc]]),
                            np.concatenate([train.y, plan.labels[plan.included]]),
                            name=f"canary run, seed {seed}",
                            accounting_rows=len(train) + len(plan.rows))
        runs.append(CanaryRun(seed, plan, rows, np.concatenate([train.groups, test.groups[inc]])))
    return runs


def score_canary_run(run: CanaryRun, arm: Arm, model: FittedModel, X_test: np.ndarray, *,
                     delta: float, n_seeds: int, config: PrivacyAuditConfig) -> dict[str, Any]:
    """The lower bound and violation flag of one arm's model from one canary run."""
    plan = run.plan
    # The bound reported for an arm is the largest over seeds: each seed is audited at
    # 1 - (1 - confidence) / S so that the maximum holds at ``confidence`` (Bonferroni).
    per_seed_confidence = 1.0 - (1.0 - config.confidence) / n_seeds
    guesses, correct = score_canaries(model, X_test[plan.rows], plan.labels, plan)
    bound = epsilon_lower_bound(canaries=len(plan.rows), guesses=guesses, correct=correct,
                                delta=delta, confidence=per_seed_confidence)
    run_eps = model.ledger.epsilon
    return {
        "arm": arm.label, "kind": arm.kind, "seed": run.seed, "canaries": len(plan.rows),
        "canary_kind": config.canary_kind, "included": int(plan.included.sum()),
        "k_plus": plan.k_plus, "k_minus": plan.k_minus, "guesses": guesses,
        "correct": correct, "delta": delta, "confidence": per_seed_confidence,
        "family_confidence": config.confidence,
        "epsilon_lower_bound": bound,
        "run_epsilon": math.nan if run_eps is None else float(run_eps),
        "dp_violation": bool(arm.private and run_eps is not None and bound > run_eps),
    }
