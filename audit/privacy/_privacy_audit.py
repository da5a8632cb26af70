"""Empirical privacy: membership inference, a one-run epsilon lower bound, and the
evidence that dropout is not differential privacy.

Everything here measures trained models; the statistics live in :mod:`audit._mia`
(attack metrics, LiRA scores) and :mod:`audit._audit_bound` (the one-run bound).

* **Membership inference** (every arm, per group). Members are training rows,
  non-members an equal number of test rows, which no model trained on and no model
  selection looked at. Loss-threshold attack (Yeom et al. 2018): score = -loss on the
  true label. LiRA offline (Carlini et al. 2022), behind an option: shadow models
  trained with the arm's own mechanism on random halves of the member/non-member
  pool give, per row, a Gaussian of OUT confidences.
* **One-run audit** (Steinke, Nasr, Jagielski 2023). ``m`` canaries (test rows, with
  flipped labels by default) are each included in training with probability 1/2; the
  arm is trained once on the training rows plus the included canaries with exactly its
  mechanism (a DP arm's noise is recalibrated for the larger training set and its
  epsilon recomputed for that run); canaries are scored by loss; the auditor guesses
  "in" for the ``k+`` highest and "out" for the ``k-`` lowest scores, fixed in advance.
  From the number of correct guesses the largest epsilon still consistent with them at
  the chosen confidence is a valid lower bound on the run's epsilon. A lower bound
  above a DP arm's accountant epsilon means the DP implementation is wrong:
  ``dp_violation``.
* **Dropout is not DP**. For a trained dropout arm, each sampled row's gradient under
  many dropout masks: its noise (std over masks) grows with the row's gradient norm
  (multiplicative noise), while DP-SGD adds noise of a fixed std ``sigma * C`` that
  does not depend on the data.
* **DP's per-group cost**: each DP arm's per-group error minus the baseline's, paired
  by seed, flagged where it exceeds the overall cost beyond its uncertainty.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._exceptions import ConfigError
from .._stats import sample_std, t_interval
from ..arms._arms import Arm, DPSGDArm
from ..training._batched import (
    BatchedTrainer,
    _dropout_masks,
    _Generators,
    _mlp_backward,
    _mlp_forward,
    _row_loss,
)
from ..training._training import FitJob, FittedModel, Trainer, TrainingConfig
from ._audit_bound import epsilon_lower_bound
from ._mia import attack_metrics, lira_offline_scores, logit_confidence

__all__ = [
    "MIA_ATTACKS",
    "PrivacyAuditConfig",
    "dp_group_cost",
    "dropout_noise_curve",
    "run_canary_audit",
    "run_membership_inference",
]

MIA_ATTACKS = ("loss", "lira", "none")
CANARY_KINDS = ("flipped", "natural")


@dataclass(frozen=True, kw_only=True)
class PrivacyAuditConfig:
    """Options of the empirical privacy audit.

    Attributes
    ----------
    mia
        ``"loss"`` (default), ``"lira"`` (loss plus LiRA with ``shadows`` shadow models
        per arm; heavy) or ``"none"``.
    shadows
        Shadow models per arm for LiRA.
    mia_bootstrap
        Bootstrap resamples for the attack metrics' confidence intervals.
    canaries
        Canaries per one-run audit (0 disables it); fewer when the test split is smaller.
    canary_kind
        ``"flipped"`` (the canary's label is flipped: a strong, worst-case-style signal)
        or ``"natural"`` (test rows as they are).
    canary_rows
        Which test rows become canaries: ``"isolated"`` (default: those farthest from
        their 5th-nearest training row, where a model can only fit a label by
        memorising it, so the audit is more sensitive) or ``"random"``. Chosen before
        the inclusion coins are tossed, so the bound stays valid either way.
    guess_fraction
        ``k+ = k- = round(guess_fraction * m)``: the number of "in" and "out" guesses,
        fixed before training.
    confidence
        Confidence of the epsilon lower bound.
    mechanism_rows, mechanism_masks
        Training rows and dropout masks used for the dropout-noise curve.
    """

    mia: str = "loss"
    shadows: int = 16
    mia_bootstrap: int = 200
    canaries: int = 1000
    canary_kind: str = "flipped"
    canary_rows: str = "isolated"
    guess_fraction: float = 0.2
    confidence: float = 0.95
    mechanism_rows: int = 200
    mechanism_masks: int = 64

    def __post_init__(self) -> None:
        if self.mia not in MIA_ATTACKS:
            raise ConfigError(f"mia must be one of {list(MIA_ATTACKS)}, not {self.mia!r}")
        if self.mia == "lira" and self.shadows < 2:
            raise ConfigError(f"LiRA needs at least 2 shadow models, not {self.shadows}")
        if self.canary_rows not in ("isolated", "random"):
            raise ConfigError(
                f"canary_rows must be one of ['isolated', 'random'], not {self.canary_rows!r}")
        if self.canary_kind not in CANARY_KINDS:
            raise ConfigError(
                f"canary_kind must be one of {list(CANARY_KINDS)}, not {self.canary_kind!r}")
        if self.canaries < 0 or self.canaries == 1:
            raise ConfigError(f"canaries must be 0 (no audit) or at least 2, not {self.canaries}")
        if not 0 < self.guess_fraction <= 0.5:
            raise ConfigError(f"guess_fraction must be in (0, 0.5], not {self.guess_fraction}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), not {self.confidence}")
        if self.mia_bootstrap < 0 or self.mechanism_rows < 0 or self.mechanism_masks < 2:
            raise ConfigError("mia_bootstrap and mechanism_rows must be >= 0, mechanism_masks >= 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- MIA


def row_losses(model: FittedModel, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row loss on the given labels (log-loss for classification)."""
    pred = model.predict(X)
    if model.task == "classification":
        p = np.clip(pred, 1e-12, 1 - 1e-12)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return (pred - y) ** 2


def _true_label_prob(model: FittedModel, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = model.predict(X)
    return np.where(y > 0.5, p, 1 - p)


@dataclass(frozen=True)
class MembershipSample:
    """Which training rows are members and which test rows non-members in the attack."""

    members: np.ndarray  # positions into the training rows
    nonmembers: np.ndarray  # positions into the test rows


def membership_sample(n_train: int, n_test: int, seed: int) -> MembershipSample:
    """Equal numbers of members and non-members (the smaller split's size)."""
    n = min(n_train, n_test)
    rng = np.random.default_rng([seed, 0x4D1A])
    return MembershipSample(np.sort(rng.choice(n_train, n, replace=False)),
                            np.sort(rng.choice(n_test, n, replace=False)))


def run_membership_inference(
    models: Mapping[tuple[str, int], FittedModel],
    *,
    kinds: Mapping[str, str],
    X_train: np.ndarray, y_train: np.ndarray, g_train: np.ndarray,
    X_test: np.ndarray, y_test: np.ndarray, g_test: np.ndarray,
    config: PrivacyAuditConfig,
    shadow_models: Mapping[tuple[str, int], Sequence[tuple[FittedModel, np.ndarray]]] | None = None,
    roc_out: list[pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Attack metrics for every (arm, seed) model: a tidy frame with ``attack`` column.

    ``shadow_models[(arm, seed)]`` lists (shadow model, in-mask over the pool) pairs for
    LiRA, where the pool is the members followed by the non-members of the sample.
    ROC points of the first seed's attacks are appended to ``roc_out`` when given.
    """
    frames = []
    for (arm, seed), model in models.items():
        sample = membership_sample(len(y_train), len(y_test), seed)
        Xm, ym, gm = X_train[sample.members], y_train[sample.members], g_train[sample.members]
        Xn, yn, gn = X_test[sample.nonmembers], y_test[sample.nonmembers], g_test[sample.nonmembers]
        attacks: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "loss": (-row_losses(model, Xm, ym), -row_losses(model, Xn, yn)),
        }
        if shadow_models is not None and (arm, seed) in shadow_models:
            Xp, yp = np.concatenate([Xm, Xn]), np.concatenate([ym, yn])
            target = logit_confidence(_true_label_prob(model, Xp, yp))
            shadow_conf = []
            for shadow, inside in shadow_models[(arm, seed)]:
                conf = logit_confidence(_true_label_prob(shadow, Xp, yp))
                shadow_conf.append(np.where(inside, np.nan, conf))
            with warnings.catch_warnings():
                # Rows that no shadow left out get NaN; they are dropped just below.
                warnings.filterwarnings("ignore", message=".*no OUT shadow.*")
                scores = lira_offline_scores(target, np.stack(shadow_conf))
            attacks["lira"] = (scores[: len(ym)], scores[len(ym):])
        for attack, (s_mem, s_non) in attacks.items():
            keep_m, keep_n = ~np.isnan(s_mem), ~np.isnan(s_non)
            if roc_out is not None and seed == min(s for _, s in models):
                roc_out.append(roc_points(s_mem[keep_m], s_non[keep_n]).assign(
                    arm=arm, kind=kinds[arm], seed=seed, attack=attack))
            df = attack_metrics(s_mem[keep_m], s_non[keep_n], gm[keep_m], gn[keep_n],
                                n_bootstrap=config.mia_bootstrap, seed=seed)
            # The advantage is a maximum over thresholds: its bootstrap percentile
            # interval is biased upwards and excludes 0 even without any leakage, so no
            # interval is reported for it.
            adv = df["metric"] == "advantage"
            df.loc[adv, ["ci_low", "ci_high"]] = np.nan
            frames.append(df.assign(arm=arm, kind=kinds[arm], seed=seed, attack=attack))
    if not frames:
        return pd.DataFrame()
    per_seed = pd.concat(frames, ignore_index=True)
    return pd.concat([per_seed, _aggregate_mia(per_seed)], ignore_index=True)


#: False-positive rates at which ROC curves are stored (log-spaced, for log-axis plots).
ROC_FPRS = np.unique(np.concatenate([np.logspace(-4, 0, 41), [0.001, 0.01, 0.1]]))


def roc_points(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> pd.DataFrame:
    """Empirical ROC on a log-spaced FPR grid: for each f, the TPR of the threshold that
    flags at most ``floor(f n0)`` non-members (strictly above the next non-member score)."""
    neg = np.sort(np.asarray(nonmember_scores, dtype=float))[::-1]
    pos = np.sort(np.asarray(member_scores, dtype=float))
    n0 = neg.shape[0]
    rows = []
    for f in ROC_FPRS:
        k = int(math.floor(f * n0 + 1e-9))
        if k >= n0:
            tpr = 1.0
        else:
            threshold = neg[k]
            tpr = float(pos.shape[0] - np.searchsorted(pos, threshold, side="right")) / pos.shape[0]
        rows.append({"fpr": float(f), "tpr": tpr, "resolvable": bool(f * n0 >= 1)})
    return pd.DataFrame(rows)


def _aggregate_mia(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds; the CI is the envelope of the per-seed CIs."""
    rows = []
    for key, grp in per_seed.groupby(["arm", "kind", "attack", "group", "metric"], sort=False):
        values = grp["value"].to_numpy(dtype=float)
        avail = grp["available"].to_numpy(dtype=bool)
        ok = values[avail]
        rows.append({
            "arm": key[0], "kind": key[1], "attack": key[2], "group": key[3], "metric": key[4],
            "seed": pd.NA,
            "value": float(ok.mean()) if ok.size else math.nan,
            "std": float(ok.std(ddof=1)) if ok.size > 1 else math.nan,
            "ci_low": float(grp["ci_low"].min()) if ok.size else math.nan,  # pandas skips NaN
            "ci_high": float(grp["ci_high"].max()) if ok.size else math.nan,
            "n_members": int(grp["n_members"].iloc[0]),
            "n_nonmembers": int(grp["n_nonmembers"].iloc[0]),
            "available": bool(avail.all()),
            "reason": "" if avail.all() else str(grp.loc[~grp["available"], "reason"].iloc[0]),
        })
    return pd.DataFrame(rows)


def shadow_jobs(
    arms: Sequence[Arm], seeds: Sequence[int], n_pool: int, shadows: int,
    rates_for: Callable[[Arm, np.ndarray], np.ndarray], pool_groups: np.ndarray,
    epsilon_for: Callable[[Arm], float | None], delta_for: Callable[[Arm], float | None],
) -> tuple[list[FitJob], list[np.ndarray]]:
    """LiRA shadows: each trained on a random half of the pool with the arm's mechanism."""
    jobs, halves = [], []
    for arm in arms:
        for seed in seeds:
            rng = np.random.default_rng([seed, 0x5AD0, shadows])
            for s in range(shadows):
                inside = rng.random(n_pool) < 0.5
                halves.append(inside)
                jobs.append(FitJob(arm=arm, rates=rates_for(arm, pool_groups[inside]),
                                   seed=10_000 + 100 * seed + s, epsilon=epsilon_for(arm),
                                   delta=delta_for(arm)))
    return jobs, halves


# --------------------------------------------------------------------------- canaries


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


def run_canary_audit(
    *,
    arms: Sequence[Arm], seeds: Sequence[int], trainer: Trainer, training: TrainingConfig,
    device: torch.device, task: str,
    X_train: np.ndarray, y_train: np.ndarray, g_train: np.ndarray,
    X_test: np.ndarray, y_test: np.ndarray, g_test: np.ndarray,
    rates_for: Callable[[Arm, np.ndarray], np.ndarray],
    epsilon_for: Callable[[Arm], float | None], delta: Callable[[Arm], float],
    config: PrivacyAuditConfig,
) -> pd.DataFrame:
    """One canary run per (arm, seed); one row each with the lower bound and violation flag."""
    rows = []
    iso = isolation(X_test, X_train) if config.canary_rows == "isolated" else None
    plans = {seed: canary_plan(y_test, config, seed, iso) for seed in seeds}  # before any training
    # The bound reported for an arm is the largest over seeds: each seed is audited at
    # 1 - (1 - confidence) / S so that the maximum holds at ``confidence`` (Bonferroni).
    per_seed_confidence = 1.0 - (1.0 - config.confidence) / len(seeds)
    # q, steps and the noise are fixed by n_train + m, known before the coins are tossed:
    # were they derived from the realised training-set size, adding one canary could
    # change the mechanism, and the accountant's (epsilon, delta) would not cover it.
    # The batched trainer can fix the mechanism by a row count (the reference trainer
    # derives it from its data loader), so canary runs use it whatever the audit's trainer.
    canary_trainer = trainer if isinstance(trainer, BatchedTrainer) else BatchedTrainer()
    for seed in seeds:
        plan = plans[seed]
        inc = plan.rows[plan.included]
        X = np.concatenate([X_train, X_test[inc]])
        y = np.concatenate([y_train, plan.labels[plan.included]])
        g = np.concatenate([g_train, g_test[inc]])
        jobs = [FitJob(arm=arm, rates=rates_for(arm, g), seed=seed, epsilon=epsilon_for(arm),
                       delta=delta(arm)) for arm in arms]
        models = canary_trainer.fit_many(jobs, X=X, y=y, config=training, device=device,
                                         task=task,  # type: ignore[arg-type]
                                         accounting_rows=len(y_train) + len(plan.rows))
        for arm, model in zip(arms, models, strict=True):
            guesses, correct = score_canaries(model, X_test[plan.rows], plan.labels, plan)
            bound = epsilon_lower_bound(canaries=len(plan.rows), guesses=guesses, correct=correct,
                                        delta=delta(arm), confidence=per_seed_confidence)
            run_eps = model.ledger.epsilon
            rows.append({
                "arm": arm.label, "kind": arm.kind, "seed": seed, "canaries": len(plan.rows),
                "canary_kind": config.canary_kind, "included": int(plan.included.sum()),
                "k_plus": plan.k_plus, "k_minus": plan.k_minus, "guesses": guesses,
                "correct": correct, "delta": delta(arm), "confidence": per_seed_confidence,
                "family_confidence": config.confidence,
                "epsilon_lower_bound": bound,
                "run_epsilon": math.nan if run_eps is None else float(run_eps),
                "dp_violation": bool(arm.private and run_eps is not None and bound > run_eps),
            })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- mechanism


def dropout_noise_curve(
    model: FittedModel, X: np.ndarray, y: np.ndarray, rates: np.ndarray, *, masks: int,
    seed: int, task: str = "classification",
) -> pd.DataFrame:
    """Per-row gradient noise from dropout masks against the row's mean gradient norm.

    For each row, ``masks`` gradients of its loss under independent dropout masks
    (inverted dropout at the row's rate) are taken w.r.t. all parameters of the MLP.

    Returns a frame with one row per input row: ``grad_norm`` (norm of the gradient
    averaged over masks), ``noise_norm`` (root-mean-square distance of the per-mask
    gradients from that mean) and ``noise_std`` (the same per coordinate,
    ``noise_norm / sqrt(parameters)``), and the row's ``rate``.
    """
    net = model.model
    params = {k: v.detach().double()[None] for k, v in net.named_parameters()}
    n_params = int(sum(v.numel() for v in params.values()))
    n_hidden = sum(1 for k in params if k.startswith("hidden.") and k.endswith(".weight"))
    widths = [m.in_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    loss = _row_loss(task)
    gens = [_Generators(seed, "mechanism", torch.device("cpu"))]
    out = []
    for i in range(X.shape[0]):
        x = torch.as_tensor(np.repeat(X[i:i + 1], masks, axis=0), dtype=torch.float64)[None]
        target = torch.full((1, masks), float(y[i]), dtype=torch.float64)
        keep = torch.full((1, masks), 1.0 - float(rates[i]), dtype=torch.float64)
        mult = _dropout_masks(gens, keep, [masks], widths) if rates[i] > 0 else None
        valid = torch.ones(1, masks, dtype=torch.float64)
        with torch.no_grad():
            pred, inputs, pre = _mlp_forward(params, x, mult, n_hidden)
            deltas = _mlp_backward(params, pred, target, valid, pre, mult, n_hidden, loss)
        # Per-mask gradients of every Linear layer: delta (M, out) x input (M, in).
        grads = [torch.cat([(d[0][:, :, None] * a[0][:, None, :]).flatten(1), d[0]], dim=1)
                 for a, d in zip(inputs, deltas, strict=True)]
        g = torch.cat(grads, dim=1)  # (M, n_params)
        mean = g.mean(dim=0)
        noise = float(((g - mean) ** 2).sum(dim=1).mean().sqrt())
        out.append({"grad_norm": float(mean.norm()), "noise_norm": noise,
                    "noise_std": noise / math.sqrt(n_params), "rate": float(rates[i])})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- DP cost


def dp_group_cost(by_group: pd.DataFrame, overall: pd.DataFrame, arms: Sequence[Arm],
                  metric: str = "error_rate", confidence: float = 0.95) -> pd.DataFrame:
    """Per-group error of each DP arm minus the baseline's, paired by seed.

    ``excess`` is a group's cost minus the overall cost; ``flagged`` marks groups whose
    excess is positive beyond its t-interval over seeds (needs >= 2 seeds).
    """
    baseline = [a.label for a in arms if a.kind == "baseline"]
    if not baseline:
        return pd.DataFrame()
    base = baseline[0]
    rows = []

    def seed_values(df: pd.DataFrame, arm: str, **where: str) -> pd.Series:
        sel = df[(df["arm"] == arm) & (df["metric"] == metric) & df["seed"].notna()]
        for col, val in where.items():
            sel = sel[sel[col] == val]
        return sel.set_index("seed")["value"]

    for arm in arms:
        if not isinstance(arm, DPSGDArm):
            continue
        overall_cost = seed_values(overall, arm.label) - seed_values(overall, base)
        for group in sorted(by_group["group"].unique()):
            cost = (seed_values(by_group, arm.label, group=group)
                    - seed_values(by_group, base, group=group))
            excess = cost - overall_cost
            c_lo, c_hi = t_interval(cost.to_numpy(), confidence)
            e_lo, e_hi = t_interval(excess.to_numpy(), confidence)
            rows.append({
                "arm": arm.label, "group": group, "metric": metric, "baseline": base,
                "cost": float(cost.mean()), "std": sample_std(cost.to_numpy()),
                "ci_low": c_lo, "ci_high": c_hi, "overall_cost": float(overall_cost.mean()),
                "excess": float(excess.mean()), "excess_ci_low": e_lo, "excess_ci_high": e_hi,
                "flagged": bool(e_lo > 0) if not math.isnan(e_lo) else False,
                "seeds": int(cost.shape[0]),
            })
    return pd.DataFrame(rows)
