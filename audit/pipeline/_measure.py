"""Measure: fairness, privacy ledgers, membership inference, the canary audit, the
dropout-noise curve, missing features by group and DP's per-group cost, from the audit's
fitted models.

Each step reports to progress (``progress.step(kind, ...)``); :mod:`._work` plans the
same steps, in the same kinds, arms and seeds, before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import InternalError
from ..arms._arms import Arm
from ..dp._accounting import NO_GUARANTEE, PrivacyLedger
from ..fairness._gap_change import arm_comparison_pairs, gap_changes
from ..fairness._metrics import evaluate_predictions
from ..fairness._missing import missing_errors, missing_frame, missing_rows
from ..privacy._canaries import score_canary_run
from ..privacy._mechanism import dropout_noise_curve
from ..privacy._membership import ShadowModels, run_membership_inference
from ..result._schema import EMPIRICAL_AUDITS, MECHANISM_COLUMNS
from ._config import AuditConfig
from ._plan import AuditPlan, TrainedModels
from ._prepare import PreparedData
from ._progress import Progress

__all__ = ["Measurements", "measure"]



@dataclass(eq=False)
class Measurements:
    """Raw frames of every measurement, before the result normalises them."""

    by_group: pd.DataFrame
    overall: pd.DataFrame
    gaps: pd.DataFrame
    privacy_rows: list[dict[str, Any]]
    mia: pd.DataFrame = field(default_factory=pd.DataFrame)
    roc: list[pd.DataFrame] = field(default_factory=list)
    empirical: pd.DataFrame = field(default_factory=pd.DataFrame)
    mechanism: pd.DataFrame = field(default_factory=pd.DataFrame)
    mechanism_reference: dict[str, Any] = field(default_factory=dict)
    gap_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_match: pd.DataFrame = field(default_factory=pd.DataFrame)


def measure(prepared: PreparedData, plan: AuditPlan, trained: TrainedModels,
            progress: Progress) -> Measurements:
    """Every measurement of the audit, in the order the result presents them."""
    config = plan.config
    out = _fairness_and_ledgers(prepared, plan, trained, progress)
    if config.privacy_audit.mia != "none":
        progress.begin("membership")

        def scored(arm: str, seed: int) -> None:
            progress.complete("membership", arm=arm, seed=seed)

        out.mia = run_membership_inference(
            trained.arms, kinds={arm.label: arm.kind for arm in plan.arms},
            train=prepared.train, test=prepared.test, config=config.privacy_audit,
            shadows=ShadowModels(
                {(label, plan.seeds[0]): models for label, models in trained.shadows.items()},
                plan.shadow_pool.population if plan.shadow_pool is not None else None)
            if trained.shadows else None,
            roc_out=out.roc, roc_seed=plan.seeds[0], on_scored=scored)
    if plan.canary_runs:
        out.empirical = _canary_audit(prepared, plan, trained, progress)
    out.mechanism, out.mechanism_reference = _mechanism(prepared, plan, trained, out.privacy_rows, progress)
    if config.missing is not None:
        out.missing, out.missing_match = _missing_features(prepared, plan, trained, progress)
    return out


#: The progress "arm" of the missing-feature step that scores the p_train grid's models.
P_TRAIN_GRID = "p_train grid"


def _missing_features(prepared: PreparedData, plan: AuditPlan, trained: TrainedModels,
                      progress: Progress) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each arm's (and each p_train model's) error by group as test features go missing."""
    config = plan.config
    missing = config.missing
    if missing is None:
        return pd.DataFrame(), pd.DataFrame()
    test = prepared.test
    scenario = missing.group_rates(prepared.group_labels)
    points = sorted({*missing.grid, *scenario.values()})
    wanted = {g: [*missing.grid, *([scenario[g]] if g in scenario else [])] for g in prepared.group_labels}
    column_feature = _column_features(prepared)

    def errors(models: list[Any], rates: list[float]) -> np.ndarray:
        return np.stack([missing_errors(m.predict, test.X, test.y, column_feature, rates,
                                        draws=missing.draws, seed=seed, threshold=config.threshold)
                         for m, seed in zip(models, plan.seeds, strict=True)])

    rows = []
    for arm in plan.arms:
        with progress.step("missing_features", arm=arm.label):
            per_seed = errors([trained.arms[(arm.label, seed)] for seed in plan.seeds], points)
            rows += [{"arm": arm.label, "kind": arm.kind, **row}
                     for row in missing_rows(per_seed, test.groups, points, wanted,
                                             level=config.ci_level, scenario=scenario)]
    match = []
    if plan.missing_arms:
        grid = list(missing.grid)
        with progress.step("missing_features", arm=P_TRAIN_GRID):
            for arm in plan.missing_arms:
                per_seed = errors([trained.missing[(arm.label, seed)] for seed in plan.seeds], grid)
                p_train = float(arm.params()["p"])
                match += [{"p_train": p_train, **row}
                          for row in missing_rows(per_seed, test.groups, grid,
                                                  {g: grid for g in prepared.group_labels},
                                                  level=config.ci_level, overall=True)]
    return missing_frame(rows), missing_frame(match, match=True)


def _column_features(prepared: PreparedData) -> np.ndarray:
    """The input feature (as an index) each encoded column comes from."""
    sources = prepared.preprocessor.feature_sources()
    index = {name: i for i, name in enumerate(dict.fromkeys(sources))}
    return np.array([index[name] for name in sources], dtype=np.int64)


def _fairness_and_ledgers(prepared: PreparedData, plan: AuditPlan, trained: TrainedModels,
                          progress: Progress) -> Measurements:
    config = plan.config
    frames: dict[str, list[pd.DataFrame]] = {"by_group": [], "overall": [], "gaps": []}
    privacy_rows: list[dict[str, Any]] = []
    test = prepared.test
    arm_scores: dict[str, np.ndarray] = {}
    for arm in plan.arms:
        with progress.step("metrics", arm=arm.label):
            models = [trained.arms[(arm.label, seed)] for seed in plan.seeds]
            scores = np.stack([m.predict(test.X) for m in models])
            arm_scores[arm.label] = scores
            by_group, overall, gaps = evaluate_predictions(
                test.y, scores, test.groups, seeds=plan.seeds, threshold=config.threshold,
                n_bootstrap=config.n_bootstrap, ci_level=config.ci_level,
                bootstrap_seed=config.bootstrap_seed, simultaneous_ci=config.simultaneous_ci,
            )
        for key, df in (("by_group", by_group), ("overall", overall), ("gaps", gaps)):
            frames[key].append(df.assign(arm=arm.label, kind=arm.kind))
        privacy_rows.extend(privacy_rows_of(arm, plan.seeds, [m.ledger for m in models]))
    pairs = arm_comparison_pairs(plan.arms)
    changes = pd.DataFrame()
    if pairs:
        with progress.step("gap_changes"):
            changes = gap_changes(test.y, arm_scores, test.groups, pairs, threshold=config.threshold,
                                  n_bootstrap=config.n_bootstrap, ci_level=config.ci_level,
                                  bootstrap_seed=config.bootstrap_seed)
    return Measurements(
        by_group=pd.concat(frames["by_group"], ignore_index=True),
        overall=pd.concat(frames["overall"], ignore_index=True),
        gaps=pd.concat(frames["gaps"], ignore_index=True),
        privacy_rows=privacy_rows, gap_changes=changes,
    )


def privacy_rows_of(arm: Arm, seeds: Sequence[int], ledgers: Sequence[PrivacyLedger]) -> list[dict[str, Any]]:
    """One privacy row per seed and one aggregate row (the weakest claim over seeds)."""
    rows = []
    for seed, ledger in zip(seeds, ledgers, strict=True):
        if not arm.private and ledger.epsilon is not None:
            raise InternalError(f"non-DP arm '{arm.label}' produced an epsilon")
        rows.append({"arm": arm.label, "kind": arm.kind, "seed": seed,
                     **{k: v for k, v in ledger.to_dict().items() if k != "mechanism"}})
    # With the same q, sigma and steps the seeds' epsilons are identical anyway.
    worst = max(ledgers, key=lambda ledger: -1.0 if ledger.epsilon is None else ledger.epsilon)
    agg = {k: v for k, v in worst.to_dict().items() if k != "mechanism"}
    if not arm.private:
        agg["guarantee"] = NO_GUARANTEE
    rows.append({"arm": arm.label, "kind": arm.kind, "seed": None, **agg})
    return rows


def _canary_audit(prepared: PreparedData, plan: AuditPlan, trained: TrainedModels,
                  progress: Progress) -> pd.DataFrame:
    """One row per (arm, seed, audit): the canary runs' lower bounds and violation flags,
    in arm, seed and audit order (a seed's audits come from up to two runs)."""
    rows = []
    for run, models in zip(plan.canary_runs, trained.canaries, strict=True):
        # A black-box run (with gradient canaries for DP-SGD), or a row-canary run.
        kind = "canary_audit" if run.plan is not None else "white_box"
        for arm, model in zip(plan.arms, models, strict=True):
            with progress.step(kind, arm=arm.label, seed=run.seed):
                rows += score_canary_run(run, arm, model, prepared.test.X,
                                         delta=plan.budgets.delta[arm.label], n_seeds=len(plan.seeds),
                                         config=plan.config.privacy_audit)
    arm_order = {arm.label: i for i, arm in enumerate(plan.arms)}
    audit_order = {audit: i for i, audit in enumerate(EMPIRICAL_AUDITS)}
    rows.sort(key=lambda row: (arm_order[row["arm"]], row["seed"], audit_order[row["audit"]]))
    return pd.DataFrame(rows)


def _mechanism(prepared: PreparedData, plan: AuditPlan, trained: TrainedModels,
               privacy_rows: list[dict[str, Any]], progress: Progress) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Dropout's gradient noise vs gradient norm for each dropout arm, and DP's fixed scale."""
    config: AuditConfig = plan.config
    seed, train = plan.seeds[0], prepared.train
    reference = _dp_noise_reference(privacy_rows, seed, len(train))
    n_rows = min(config.privacy_audit.mechanism_rows, len(train))
    if n_rows == 0:
        return pd.DataFrame(), reference
    rng = np.random.default_rng([seed, 0x3EC4])
    rows = np.sort(rng.choice(len(train), n_rows, replace=False))
    frames = []
    for arm in plan.arms:
        rates = plan.row_rates(arm, train.groups)
        if not np.any(rates > 0):
            continue
        with progress.step("mechanism", arm=arm.label):
            curve = dropout_noise_curve(trained.arms[(arm.label, seed)], train.X[rows], train.y[rows],
                                        rates[rows], masks=config.privacy_audit.mechanism_masks,
                                        seed=seed, task=prepared.dataset.task)
        frames.append(curve.assign(arm=arm.label, kind=arm.kind, row=rows, group=train.groups[rows]))
    if not frames:
        return pd.DataFrame(), reference
    return pd.concat(frames, ignore_index=True)[list(MECHANISM_COLUMNS)], reference


def _dp_noise_reference(privacy_rows: list[dict[str, Any]], seed: int, n_train: int) -> dict[str, Any]:
    """DP-SGD's noise std on the summed and on the averaged gradient (first DP arm)."""
    dp = [r for r in privacy_rows if r["seed"] == seed and r.get("epsilon") is not None]
    if not dp:
        return {}
    r = dp[0]
    return {
        "arm": r["arm"], "noise_multiplier": r["noise_multiplier"],
        "max_grad_norm": r["max_grad_norm"], "sample_rate": r["sample_rate"],
        "train_rows": int(n_train),
        "noise_std_sum": r["noise_multiplier"] * r["max_grad_norm"],
        "noise_std_mean": r["noise_multiplier"] * r["max_grad_norm"]
        / max(1, int(n_train * r["sample_rate"])),
    }

