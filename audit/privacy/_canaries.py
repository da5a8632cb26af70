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
from ..training._whitebox import GradientCanaries, WhiteBoxProbe
from ._audit_bound import epsilon_lower_bound
from ._config import PrivacyAuditConfig
from ._fdp_bound import gaussian_dp_epsilon, mu_lower_bound
from ._membership import row_losses
from ._whitebox_audit import (
    gradient_canary_scores,
    guesses_from_scores,
    in_guesses_from_scores,
    row_canary_scores,
)


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
            f"{len(y_test)}); use more data or canaries=0 to skip it", param="canaries",
            fix={"canaries": 0})
    rng = np.random.default_rng([seed, 0xCA7A])
    if config.canary_rows == "isolated" and isolation_scores is not None:
        rows = np.sort(np.argsort(-isolation_scores, kind="stable")[:m])
    else:
        rows = np.sort(rng.choice(len(y_test), m, replace=False))
    labels = y_test[rows].astype(float)
    if config.canary_kind == "flipped":
        labels = 1.0 - labels
    included = rng.random(m) < 0.5
    k = guess_count(config.guess_fraction, m)
    return CanaryPlan(rows, labels, included, k, k)


def guess_count(fraction: float, canaries: int, *, sides: int = 2) -> int:
    """Guesses per side: ``round(fraction * m)``, at least 1, and never more on all
    ``sides`` together ("in" and "out": 2; "in" only: 1) than there are canaries."""
    return min(max(1, int(round(fraction * canaries))), canaries // sides)


def score_canaries(model: FittedModel, X: np.ndarray, labels: np.ndarray, plan: CanaryPlan
                   ) -> tuple[int, int]:
    """Guesses from canary losses: (number of guesses, number correct)."""
    # The plan fixes k+ = k- (canary_plan), the shape guesses_from_scores makes.
    return guesses_from_scores(-row_losses(model, X, labels), plan.included, plan.k_plus)


@dataclass(frozen=True, eq=False)
class CraftedCanaries:
    """The white-box audit's row canaries: Gaussian inputs of scale ``scale`` in the
    encoded feature space (real rows are standardised, so each is far from all of them),
    labels by coin, and which are included. ``rows`` are test rows (disjoint from the
    black-box canaries) that lend each canary its group, and so its dropout rate in a
    group-dropout arm.

    No real person sends such a row, but DP's guarantee must hold for every row: a
    mechanism that lets one of them stand out is not DP at the level it shows.
    """

    rows: np.ndarray
    X: np.ndarray
    labels: np.ndarray
    included: np.ndarray
    scale: float


@dataclass(frozen=True, eq=False)
class CanaryRun:
    """One canary run, fixed before any training: which canaries go in, the rows the run
    trains on (training rows, then the included canaries) and their groups.

    Each seed has up to two: the black-box run (the black-box canaries, plus the Dirac
    gradient canaries of a white-box audit, which leave the model untouched) and, for a
    white-box audit, the row-canary run (the crafted rows only: their huge inputs would
    spoil the final model the black-box audit scores, e.g. its bound for the baseline on
    Adult fell from 0.47 to 0 with them in the same run). ``plan`` is None in a
    row-canary run, ``crafted`` None in a black-box run.

    The DP mechanism of a run (q, steps, noise) is fixed by the training rows plus every
    canary of the run through ``rows.accounting_rows``, known before the coins are
    tossed: were it derived from the realised training-set size, adding one canary could
    change the mechanism, and the accountant's (epsilon, delta) would not cover it.
    """

    seed: int
    plan: CanaryPlan | None
    rows: TrainingRows
    groups: np.ndarray
    crafted: CraftedCanaries | None = None

    @property
    def gradient(self) -> GradientCanaries | None:
        return self.rows.probe.gradient if self.rows.probe is not None else None


def plan_canary_runs(train: EncodedSplit, test: EncodedSplit, *, seeds: Sequence[int],
                     config: PrivacyAuditConfig) -> list[CanaryRun]:
    """The canary runs of every seed (see :class:`CanaryRun`): canaries, coins, rows.

    With ``config.white_box`` the black-box run's rows carry a :class:`WhiteBoxProbe`
    with the Dirac gradient canaries (observed in DP-SGD runs only), and a row-canary run
    follows with the crafted rows, observed at every step; each kind has its own coins.
    """
    iso = isolation(test.X, train.X) if config.canary_rows == "isolated" else None
    runs = []
    for seed in seeds:
        plan = canary_plan(test.y, config, seed, iso)
        gradient = None
        if config.white_box and config.gradient_canaries:
            coins = np.random.default_rng([seed, 0x6CA8]).random(config.gradient_canaries) < 0.5
            gradient = GradientCanaries(coins, config.gradient_canary_norm)
        inc = plan.rows[plan.included]
        rows = TrainingRows(np.concatenate([train.X, test.X[inc]]),
                            np.concatenate([train.y, plan.labels[plan.included]]),
                            name=f"canary run, seed {seed}",
                            accounting_rows=len(train) + len(plan.rows)
                            + (gradient.count if gradient is not None else 0),
                            probe=WhiteBoxProbe(gradient=gradient) if gradient is not None else None)
        runs.append(CanaryRun(seed, plan, rows, np.concatenate([train.groups, test.groups[inc]])))
        crafted = crafted_canaries(test, plan, config, seed) if config.white_box else None
        if crafted is not None:
            rows = TrainingRows(np.concatenate([train.X, crafted.X[crafted.included]]),
                                np.concatenate([train.y, crafted.labels[crafted.included]]),
                                name=f"row-canary run, seed {seed}",
                                accounting_rows=len(train) + len(crafted.rows),
                                probe=WhiteBoxProbe(rows_X=crafted.X))
            groups = np.concatenate([train.groups, test.groups[crafted.rows[crafted.included]]])
            runs.append(CanaryRun(seed, None, rows, groups, crafted))
    return runs


def crafted_canary_count(config: PrivacyAuditConfig, test_rows: int) -> int:
    """How many crafted canaries a seed gets: test rows left after the black-box canaries
    lend them their groups; 0 (no row-canary run) below 2 or without a white-box audit."""
    if not config.white_box or config.canaries == 0:
        return 0
    m = min(config.white_box_canaries, test_rows - min(config.canaries, test_rows))
    return m if m >= 2 else 0


def crafted_canaries(test: EncodedSplit, plan: CanaryPlan, config: PrivacyAuditConfig,
                     seed: int) -> CraftedCanaries | None:
    """The white-box row canaries: Gaussian inputs, labels and coins of their own, and
    random test rows (not black-box canaries) to lend them their groups.

    Random directions rather than scaled test rows: the row audit recognises a canary by
    its input's direction on the coordinates a dropout mask kept
    (:func:`audit.training._whitebox.row_canary_matches`), which scaled real rows share
    with one another far more than Gaussian vectors do.
    """
    free = np.setdiff1d(np.arange(len(test.y)), plan.rows)
    m = crafted_canary_count(config, len(test.y))
    if m == 0:
        return None
    rng = np.random.default_rng([seed, 0x6CA7])
    rows = np.sort(rng.choice(free, m, replace=False))
    X = rng.standard_normal((m, test.X.shape[1])) * config.canary_scale
    included = rng.random(m) < 0.5
    # Labels by coin: a network's sign on a huge input follows its direction, so a coin
    # label is wrong often enough, as training moves the network, for an included canary
    # to show up with a large gradient in some step.
    labels = (rng.random(m) < 0.5).astype(float)
    return CraftedCanaries(rows, X.astype(test.X.dtype), labels, included, config.canary_scale)


def score_canary_run(run: CanaryRun, arm: Arm, model: FittedModel, X_test: np.ndarray, *,
                     delta: float, n_seeds: int, config: PrivacyAuditConfig) -> list[dict[str, Any]]:
    """The lower bounds and violation flags of one arm's model from one canary run: one
    row per audit it carries (black-box and white-box gradient; or white-box rows).

    ``n_seeds`` is the number of seeds audited: the bound reported for an arm and audit
    is the largest over them, so each is tested at a Bonferroni share.
    """
    plan = run.plan
    rows = []
    if plan is not None:
        guesses, correct = score_canaries(model, X_test[plan.rows], plan.labels, plan)
        black_box = _Guesses(len(plan.rows), plan.included, guesses // 2, guesses // 2, correct)
        rows.append(_audit_row("black_box", run, arm, model, black_box, delta=delta, tests=n_seeds,
                               config=config))
    trace = model.trace
    if trace is not None and trace.row_matches is not None and run.crafted is not None:
        crafted = run.crafted
        scores = row_canary_scores(trace.row_matches)
        fractions = config.row_guess_fractions
        tries = []
        for fraction in fractions:
            k = guess_count(fraction, len(crafted.rows), sides=1)
            g, c = in_guesses_from_scores(scores, crafted.included, k)
            tries.append(_audit_row("white_box_rows", run, arm, model,
                                    _Guesses(len(crafted.rows), crafted.included, g, 0, c),
                                    delta=delta, tests=n_seeds * len(fractions), config=config))
        rows.append(_best_of(tries))
    gradient = run.gradient
    if (trace is not None and trace.gradient_observation is not None and gradient is not None
            and model.ledger.noise_multiplier and model.ledger.sample_rate):
        # DPSGD-F's gradient canaries carry the gradient's noise (s2), not the effective
        # noise multiplier its counts and gradient are accounted with together.
        gradient_sigma = model.ledger.gradient_noise_multiplier or model.ledger.noise_multiplier
        scores = gradient_canary_scores(trace.gradient_observation,
                                        noise_multiplier=float(gradient_sigma),
                                        sample_rate=float(model.ledger.sample_rate))
        tries = []
        for fraction in config.gradient_guess_fractions:
            g, c = guesses_from_scores(scores, gradient.included, guess_count(fraction, gradient.count))
            tries.append(_audit_row("white_box_gradient", run, arm, model,
                                    _Guesses(gradient.count, gradient.included, g // 2, g // 2, c),
                                    delta=delta,
                                    tests=n_seeds * len(config.gradient_guess_fractions),
                                    config=config))
        rows.append(_best_of(tries))
    return rows


def _best_of(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each try holds at its Bonferroni share; the largest bound of each kind holds at the
    audit's confidence. The row keeps the guesses of the best Steinke bound."""
    best = max(tries, key=lambda row: row["epsilon_lower_bound"])
    return {**best, "mu_lower_bound": max(row["mu_lower_bound"] for row in tries),
            "epsilon_lower_bound_gdp": max(row["epsilon_lower_bound_gdp"] for row in tries)}


@dataclass(frozen=True)
class _Guesses:
    canaries: int
    included: np.ndarray
    k_plus: int
    k_minus: int
    correct: int

    @property
    def guesses(self) -> int:
        return self.k_plus + self.k_minus


def _audit_row(audit: str, run: CanaryRun, arm: Arm, model: FittedModel, observed: _Guesses, *,
               delta: float, tests: int, config: PrivacyAuditConfig) -> dict[str, Any]:
    # The bound reported for an arm is the largest over seeds (and guess counts): each of
    # the ``tests`` is run at 1 - (1 - confidence) / tests so that the maximum holds at
    # ``confidence`` (Bonferroni).
    per_seed_confidence = 1.0 - (1.0 - config.confidence) / tests
    canaries, guesses, correct = observed.canaries, observed.guesses, observed.correct
    bound = epsilon_lower_bound(canaries=canaries, guesses=guesses, correct=correct,
                                delta=delta, confidence=per_seed_confidence)
    mu = mu_lower_bound(canaries=canaries, guesses=guesses, correct=correct,
                        confidence=per_seed_confidence)
    run_eps = model.ledger.epsilon
    return {
        "arm": arm.label, "kind": arm.kind, "seed": run.seed, "audit": audit, "canaries": canaries,
        "canary_kind": config.canary_kind if audit == "black_box" else (
            "crafted" if audit == "white_box_rows" else "gradient"),
        "included": int(np.sum(observed.included)), "k_plus": observed.k_plus,
        "k_minus": observed.k_minus,
        "guesses": guesses, "correct": correct, "delta": delta, "confidence": per_seed_confidence,
        "family_confidence": config.confidence,
        "epsilon_lower_bound": bound,
        "mu_lower_bound": mu,
        "epsilon_lower_bound_gdp": gaussian_dp_epsilon(mu, delta) if delta > 0 else math.nan,
        "run_epsilon": math.nan if run_eps is None else float(run_eps),
        "dp_violation": bool(arm.private and run_eps is not None and bound > run_eps),
    }
