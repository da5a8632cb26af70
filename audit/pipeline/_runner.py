"""Running an audit: every arm trained over several seeds on the same splits."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import ConfigError, InternalError
from ..arms._arms import (
    Arm,
    DPSGDArm,
    GroupDropoutArm,
    UniformDropoutArm,
)
from ..data._datasets import Dataset, load_dataset, split_dataset
from ..data._preprocess import TabularPreprocessor
from ..defaults import DEFAULT_DROPOUT, MAX_SOLVER_RATE
from ..fairness._metrics import evaluate_predictions
from ..privacy._accounting import NO_GUARANTEE, NOT_COVERED, PrivacyLedger, default_delta
from ..privacy._canaries import run_canary_audit
from ..privacy._dp_cost import dp_group_cost
from ..privacy._mechanism import dropout_noise_curve
from ..privacy._membership import membership_sample, run_membership_inference, shadow_jobs
from ..result._result import ROC_COLUMNS, AuditResult, normalise_empirical, normalise_frames, normalise_mia
from ..solver._solver import solve_on_arrays
from ..training import _batched  # noqa: F401  (registers the "batched" trainer)
from ..training._config import resolve_device
from ..training._trainer import FitJob, get_trainer
from ._config import AuditConfig, ProgressCallback, ProgressEvent

__all__ = ["run_audit"]











def run_audit(
    data: Dataset | str | Path | pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    show_progress: bool = False,
    **load_options: Any,
) -> AuditResult:
    """Train every arm over every seed on the same splits and measure them.

    Parameters
    ----------
    data
        A :class:`Dataset`, or anything :func:`load_dataset` accepts (then
        ``load_options`` such as ``target=`` and ``sensitive=`` are passed on).
    config
        The audit configuration (default :class:`AuditConfig`).
    progress
        Called with a :class:`ProgressEvent` before and after each model.
    show_progress
        Show a tqdm progress bar on stderr.

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> from audit import AuditConfig, BaselineArm, TrainingConfig, run_audit
    >>> cfg = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0,
    ...                   training=TrainingConfig(epochs=1))
    >>> result = run_audit("synthetic", cfg, n_rows=1000)
    >>> sorted(result.by_group["group"].unique())
    ['majority', 'minority']
    """
    config = config or AuditConfig()
    if isinstance(data, Dataset):
        if load_options:
            raise ConfigError(
                f"load options {sorted(load_options)} apply only when data is not already a Dataset")
        dataset = data
    else:
        dataset = load_dataset(data, **load_options)
    if dataset.task != "classification":
        raise ConfigError(
            f"run_audit needs a binary classification target; '{dataset.name}' is a "
            "regression dataset. Use a dataset with a two-valued target."
        )
    started = time.perf_counter()
    splits = split_dataset(
        dataset, seed=config.split_seed, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, min_group_rows=config.min_group_rows,
        small_groups=config.small_groups,  # type: ignore[arg-type]
    )
    groups = splits.groups
    group_labels = tuple(str(g) for g in np.unique(groups))
    pre = TabularPreprocessor().fit(dataset.features.iloc[splits.train])
    X_train = pre.transform(dataset.features.iloc[splits.train])
    X_test = pre.transform(dataset.features.iloc[splits.test])
    y_train, y_test = dataset.y[splits.train], dataset.y[splits.test]
    g_train, g_test = groups[splits.train], groups[splits.test]
    n_train = int(splits.train.shape[0])
    delta = config.delta if config.delta is not None else default_delta(n_train)
    for arm in config.arms:
        arm_delta = arm.delta if isinstance(arm, DPSGDArm) and arm.delta is not None else delta
        if arm.private and arm_delta >= 1.0 / n_train:
            # With delta >= 1/n, "release one random row in the clear" satisfies
            # (0, delta)-DP: such a guarantee says nothing.
            raise ConfigError(
                f"arm '{arm.label}': delta {arm_delta:g} is not below 1/n_train = {1 / n_train:.3g}; "
                f"use a smaller delta (default min(1e-5, 1/(10 n_train)) = {default_delta(n_train):.3g})")
    device = resolve_device(config.device)
    trainer = get_trainer(resolve_trainer_name(config))

    # Validate every arm against the groups before spending time on training.
    row_rates = {arm.label: arm.row_dropout_rates(g_train, group_labels)
                 for arm in config.arms if not (isinstance(arm, GroupDropoutArm) and arm.auto)}
    solutions: dict[str, dict[str, Any]] = {}
    solved_arms: dict[str, Arm] = {}
    for arm in config.arms:
        if isinstance(arm, GroupDropoutArm) and arm.auto:
            emit_early = progress
            if emit_early is not None:
                emit_early(ProgressEvent("solve", arm.label, None, 0, 0,
                                         time.perf_counter() - started))
            solution = solve_on_arrays(
                train=(X_train, y_train, g_train),
                val=(pre.transform(dataset.features.iloc[splits.val]), dataset.y[splits.val],
                     groups[splits.val]),
                test=(X_test, y_test, g_test),
                budget=_group_budget(arm, config), model="linear" if not config.training.hidden
                else "mlp", objective=arm.objective,  # type: ignore[arg-type]
                p_max=MAX_SOLVER_RATE, task=dataset.task, seeds=config.seed_list,
                training=config.training, trainer=trainer, device=config.device,
            )
            sol = solution.to_dict()
            # Rates that did not beat uniform dropout on held-out rows are noise: the arm
            # then trains with the uniform rate at its budget, and the result says so.
            applied = solution.rates if solution.improved else {
                g: float(solution.budget) for g in solution.rates}
            sol["applied_rates"] = applied
            if not solution.improved:
                sol["verdict"] += " The arm uses the uniform rate at its budget."
            solutions[arm.label] = sol
            solved_arms[arm.label] = GroupDropoutArm(name=arm.label, rates=applied)
            row_rates[arm.label] = solved_arms[arm.label].row_dropout_rates(g_train, group_labels)

    def rates_for(arm: Arm, row_groups: np.ndarray) -> np.ndarray:
        """Dropout rate of any rows (training, canary, shadow pool) under ``arm``."""
        return solved_arms.get(arm.label, arm).row_dropout_rates(row_groups, group_labels)

    dp_deltas = [float(a.delta) for a in config.arms if isinstance(a, DPSGDArm) and a.delta is not None]
    # Arms without a guarantee are audited at the DP arms' delta (the smallest one when
    # they differ), so their empirical lower bounds compare like with like.
    shared_delta = min(dp_deltas + ([delta] if any(
        isinstance(a, DPSGDArm) and a.delta is None for a in config.arms) else [])) if any(
        isinstance(a, DPSGDArm) for a in config.arms) else delta

    def delta_for(arm: Arm) -> float:
        if isinstance(arm, DPSGDArm):
            return float(arm.delta) if arm.delta is not None else delta
        return shared_delta

    seeds = config.seed_list
    total = len(config.arms) * len(seeds)
    bar = _progress_bar(total) if show_progress else None
    done = 0

    def emit(stage: str, arm: str | None, seed: int | None) -> None:
        if progress is not None:
            progress(ProgressEvent(stage, arm, seed, done, total, time.perf_counter() - started))

    jobs = [
        FitJob(arm=arm, rates=row_rates[arm.label], seed=seed, epsilon=_arm_epsilon(arm, config),
               delta=delta_for(arm))
        for arm in config.arms for seed in seeds
    ]
    for job in jobs:
        emit("train", job.arm.label, job.seed)

    def fitted(i: int) -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.set_description(f"{jobs[i].arm.label} seed {jobs[i].seed}")
            bar.update(1)
        emit("trained", jobs[i].arm.label, jobs[i].seed)

    models = trainer.fit_many(jobs, X=X_train, y=y_train, config=config.training, device=device,
                              on_fitted=fitted)

    frames: dict[str, list[pd.DataFrame]] = {"by_group": [], "overall": [], "gaps": []}
    privacy_rows: list[dict[str, Any]] = []
    for a_idx, arm in enumerate(config.arms):
        arm_models = models[a_idx * len(seeds):(a_idx + 1) * len(seeds)]
        scores = np.stack([m.predict(X_test) for m in arm_models])
        emit("metrics", arm.label, None)
        by_group, overall, gaps = evaluate_predictions(
            y_test, scores, g_test, seeds=seeds, threshold=config.threshold,
            n_bootstrap=config.n_bootstrap, ci_level=config.ci_level,
            bootstrap_seed=config.bootstrap_seed,
        )
        for key, df in (("by_group", by_group), ("overall", overall), ("gaps", gaps)):
            frames[key].append(df.assign(arm=arm.label, kind=arm.kind))
        privacy_rows.extend(_privacy_rows(arm, seeds, [m.ledger for m in arm_models]))
    if bar is not None:
        bar.close()

    audit_cfg = config.privacy_audit
    fitted_models = {(arm.label, seed): models[a * len(seeds) + s_idx]
              for a, arm in enumerate(config.arms) for s_idx, seed in enumerate(seeds)}
    kinds = {arm.label: arm.kind for arm in config.arms}
    mia = pd.DataFrame()
    roc_frames: list[pd.DataFrame] = []
    if audit_cfg.mia != "none":
        emit("privacy", None, None)
        shadows = None
        if audit_cfg.mia == "lira":
            shadows = _train_shadows(config, trainer, device, seeds[0], rates_for, delta_for,
                                     X_train, y_train, g_train, X_test, y_test, g_test)
        mia = run_membership_inference(
            fitted_models, kinds=kinds, X_train=X_train, y_train=y_train, g_train=g_train,
            X_test=X_test, y_test=y_test, g_test=g_test, config=audit_cfg, shadow_models=shadows,
            roc_out=roc_frames)
    empirical = pd.DataFrame()
    if audit_cfg.canaries > 0:
        emit("canaries", None, None)
        empirical = run_canary_audit(
            arms=config.arms, seeds=seeds, trainer=trainer, training=config.training,
            device=device, task=dataset.task, X_train=X_train, y_train=y_train, g_train=g_train,
            X_test=X_test, y_test=y_test, g_test=g_test, rates_for=rates_for,
            epsilon_for=lambda arm: _arm_epsilon(arm, config), delta=delta_for, config=audit_cfg)
    mechanism, mechanism_ref = _mechanism(config, fitted_models, seeds[0], X_train, y_train, g_train,
                                          row_rates, dataset.task, privacy_rows)

    by_group_df, overall_df, gaps_df, privacy_df = normalise_frames(
        pd.concat(frames["by_group"], ignore_index=True),
        pd.concat(frames["overall"], ignore_index=True),
        pd.concat(frames["gaps"], ignore_index=True),
        pd.DataFrame(privacy_rows),
        [a.label for a in config.arms],
    )
    arms_df = pd.DataFrame(
        [{"arm": a.label, "kind": a.kind, "params": a.params()} for a in config.arms],
        columns=["arm", "kind", "params"],
    )
    dataset_info = dataset.describe()
    dataset_info["splits"] = {
        "seed": config.split_seed,
        "counts": {str(g): {k: int(v) for k, v in row.items()}
                   for g, row in splits.counts().iterrows()},
        "merged_groups": list(splits.merged),
    }
    dataset_info["encoded_features"] = len(pre.feature_names)
    config_dict = config.to_dict()
    meta = _meta(config, device.type, time.perf_counter() - started)
    meta["delta"] = delta
    meta["trainer"] = trainer.name
    done = total
    emit("done", None, None)
    dp_cost = dp_group_cost(by_group_df, overall_df, config.arms)
    return AuditResult(
        config=config_dict, dataset=dataset_info, arms=arms_df, by_group=by_group_df,
        overall=overall_df, gaps=gaps_df, privacy=privacy_df, meta=meta, solutions=solutions,
        mia=normalise_mia(mia, [a.label for a in config.arms]),
        empirical=normalise_empirical(empirical, [a.label for a in config.arms]),
        mechanism=mechanism, mechanism_reference=mechanism_ref, dp_cost=dp_cost,
        roc=(pd.concat(roc_frames, ignore_index=True)[list(ROC_COLUMNS)] if roc_frames
             else pd.DataFrame()),
    )


def _train_shadows(
    config: AuditConfig, trainer: Any, device: Any, seed: int,
    rates_for: Callable[[Arm, np.ndarray], np.ndarray], delta_for: Callable[[Arm], float],
    X_train: np.ndarray, y_train: np.ndarray, g_train: np.ndarray,
    X_test: np.ndarray, y_test: np.ndarray, g_test: np.ndarray,
) -> dict[tuple[str, int], list[tuple[Any, np.ndarray]]]:
    """LiRA shadow models for the first seed: random halves of that seed's attack pool."""
    sample = membership_sample(len(y_train), len(y_test), seed)
    Xp = np.concatenate([X_train[sample.members], X_test[sample.nonmembers]])
    yp = np.concatenate([y_train[sample.members], y_test[sample.nonmembers]])
    gp = np.concatenate([g_train[sample.members], g_test[sample.nonmembers]])
    out: dict[tuple[str, int], list[tuple[Any, np.ndarray]]] = {}
    for arm in config.arms:
        jobs, halves = shadow_jobs([arm], [seed], len(yp), config.privacy_audit.shadows, rates_for,
                                   gp, lambda a: _arm_epsilon(a, config), delta_for)
        # Each shadow trains on its own half of the pool, so each is its own batch.
        models = []
        for job, inside in zip(jobs, halves, strict=True):
            models += trainer.fit_many([job], X=Xp[inside], y=yp[inside], config=config.training,
                                       device=device)
        out[(arm.label, seed)] = list(zip(models, halves, strict=True))
    return out


def _mechanism(
    config: AuditConfig, fitted: dict[tuple[str, int], Any], seed: int, X_train: np.ndarray,
    y_train: np.ndarray, g_train: np.ndarray, row_rates: dict[str, np.ndarray], task: str,
    privacy_rows: list[dict[str, Any]],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Dropout's gradient noise vs gradient norm for each dropout arm, and DP's fixed scale."""
    n_rows = min(config.privacy_audit.mechanism_rows, len(y_train))
    reference: dict[str, Any] = {}
    dp_rows = [r for r in privacy_rows if r["seed"] == seed and r.get("epsilon") is not None]
    if dp_rows:
        r = dp_rows[0]
        reference = {
            "arm": r["arm"], "noise_multiplier": r["noise_multiplier"],
            "max_grad_norm": r["max_grad_norm"], "sample_rate": r["sample_rate"],
            "train_rows": int(len(y_train)),
            "noise_std_sum": r["noise_multiplier"] * r["max_grad_norm"],
            "noise_std_mean": r["noise_multiplier"] * r["max_grad_norm"]
            / max(1, int(len(y_train) * r["sample_rate"])),
        }
    if n_rows == 0:
        return pd.DataFrame(), reference
    rng = np.random.default_rng([seed, 0x3EC4])
    rows = np.sort(rng.choice(len(y_train), n_rows, replace=False))
    frames = []
    for arm in config.arms:
        rates = row_rates[arm.label]
        if not np.any(rates > 0):
            continue
        curve = dropout_noise_curve(fitted[(arm.label, seed)], X_train[rows], y_train[rows],
                                    rates[rows], masks=config.privacy_audit.mechanism_masks,
                                    seed=seed, task=task)
        frames.append(curve.assign(arm=arm.label, kind=arm.kind, row=rows, group=g_train[rows]))
    if not frames:
        return pd.DataFrame(), reference
    cols = ["arm", "kind", "row", "group", "rate", "grad_norm", "noise_norm", "noise_std"]
    return pd.concat(frames, ignore_index=True)[cols], reference


def _group_budget(arm: GroupDropoutArm, config: AuditConfig) -> float:
    """An auto group-dropout arm spends its own budget, else the uniform arm's rate."""
    if arm.budget is not None:
        return float(arm.budget)
    uniform = [a for a in config.arms if isinstance(a, UniformDropoutArm)]
    return float(uniform[0].p) if uniform else DEFAULT_DROPOUT


def resolve_trainer_name(config: AuditConfig) -> str:
    """The trainer ``config.trainer`` stands for (``"auto"`` -> ``"batched"`` for MLP arms)."""
    if config.trainer != "auto":
        return config.trainer
    # Every registered arm kind trains the built-in MLP, which the batched trainer covers.
    return "batched"


def _arm_epsilon(arm: Arm, config: AuditConfig) -> float | None:
    if not isinstance(arm, DPSGDArm):
        return None
    return float(arm.epsilon) if arm.epsilon is not None else float(config.epsilon)


def _privacy_rows(arm: Arm, seeds: Sequence[int], ledgers: Sequence[PrivacyLedger]) -> list[dict[str, Any]]:
    rows = []
    for seed, ledger in zip(seeds, ledgers, strict=True):
        if not arm.private and ledger.epsilon is not None:
            raise InternalError(f"non-DP arm '{arm.label}' produced an epsilon")
        rows.append({"arm": arm.label, "kind": arm.kind, "seed": seed,
                     **{k: v for k, v in ledger.to_dict().items() if k != "mechanism"}})
    # The aggregate claims the weakest (largest) epsilon over seeds; with the same
    # q, sigma and steps they are identical anyway.
    worst = max(ledgers, key=lambda ledger: -1.0 if ledger.epsilon is None else ledger.epsilon)
    agg = {k: v for k, v in worst.to_dict().items() if k != "mechanism"}
    if not arm.private:
        agg["guarantee"] = NO_GUARANTEE
    rows.append({"arm": arm.label, "kind": arm.kind, "seed": None, **agg})
    return rows


def _meta(config: AuditConfig, device: str, elapsed: float) -> dict[str, Any]:
    import fairlearn
    import opacus
    import sklearn
    import torch

    from .. import __version__

    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": config.config_hash(),
        "device": device,
        "elapsed_s": round(elapsed, 3),
        "not_covered_by_dp": NOT_COVERED,
        "versions": {
            "fairpriv": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "opacus": opacus.__version__,
            "fairlearn": fairlearn.__version__, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "pandas": pd.__version__,
        },
    }


def _progress_bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="model", leave=False)
