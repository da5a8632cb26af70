"""Membership inference on trained models: loss-threshold, LiRA and RMIA offline
attacks, per group, with ROC points for log-axis plots.

Members are training rows, non-members an equal number of test rows, which no model
trained on and no model selection looked at. Loss-threshold attack (Yeom et al. 2018):
score = -loss on the true label. LiRA offline (Carlini et al. 2022): shadow models
trained with the arm's own mechanism on random halves of the member/non-member pool
give, per row, a Gaussian of OUT confidences. RMIA offline (Zarifzadeh et al. 2024):
the same shadow models, as reference models, give each row's OUT probability of its
true label, and the row's likelihood ratio is compared with those of population rows
(validation rows, which neither the target nor any shadow model trained on). One set of
shadow models serves both attacks: they are trained once per audit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._exceptions import InternalError
from ..data._encoded import EncodedSplit
from ..defaults import DEFAULT_RMIA_GAMMA, DEFAULT_RMIA_POPULATION
from ..training._trainer import FittedModel, TrainingRows
from ._config import PrivacyAuditConfig
from ._mia import attack_metrics, lira_offline_scores, logit_confidence, rmia_fit_a, rmia_offline_scores


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


def run_membership_inference(  # noqa: PLR0913 - the models, their data, and three optional outputs
    models: Mapping[tuple[str, int], FittedModel],
    *,
    kinds: Mapping[str, str],
    train: EncodedSplit,
    test: EncodedSplit,
    config: PrivacyAuditConfig,
    shadows: ShadowModels | None = None,
    roc_out: list[pd.DataFrame] | None = None,
    roc_seed: int | None = None,
    on_scored: Callable[[str, int], None] | None = None,
) -> pd.DataFrame:
    """Attack metrics for every (arm, seed) model: a tidy frame with ``attack`` column.

    ``shadows.models[(arm, seed)]`` lists (shadow model, in-mask over the pool) pairs,
    where the pool is the members followed by the non-members of the sample: LiRA is
    scored from them, and RMIA too when ``shadows.population`` is given. ROC points of
    ``roc_seed``'s attacks (default: the smallest seed) are appended to ``roc_out`` when
    given; an audit passes the seed its shadows were trained for. ``on_scored(arm, seed)``
    is called after each model's attacks (progress).
    """
    if roc_seed is None:
        roc_seed = min((s for _, s in models), default=0)
    frames = []
    for (arm, seed), model in models.items():
        sample = membership_sample(len(train), len(test), seed)
        Xm, ym, gm = train.take(sample.members).as_tuple()
        Xn, yn, gn = test.take(sample.nonmembers).as_tuple()
        attacks: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "loss": (-row_losses(model, Xm, ym), -row_losses(model, Xn, yn)),
        }
        if shadows is not None and (arm, seed) in shadows.models:
            pairs = shadows.models[(arm, seed)]
            Xp, yp = np.concatenate([Xm, Xn]), np.concatenate([ym, yn])
            target = logit_confidence(_true_label_prob(model, Xp, yp))
            shadow_conf = []
            for shadow, inside in pairs:
                conf = logit_confidence(_true_label_prob(shadow, Xp, yp))
                shadow_conf.append(np.where(inside, np.nan, conf))
            with warnings.catch_warnings():
                # Rows that no shadow left out get NaN; they are dropped just below.
                warnings.filterwarnings("ignore", message=".*no OUT shadow.*")
                scores = lira_offline_scores(target, np.stack(shadow_conf))
            attacks["lira"] = (scores[: len(ym)], scores[len(ym):])
            if shadows.population is not None:
                scores = _rmia_scores(model, [m for m, _ in pairs], [inside for _, inside in pairs],
                                      Xp, yp, shadows.population)
                attacks["rmia"] = (scores[: len(ym)], scores[len(ym):])
        for attack, (s_mem, s_non) in attacks.items():
            keep_m, keep_n = ~np.isnan(s_mem), ~np.isnan(s_non)
            if roc_out is not None and seed == roc_seed:
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
        if on_scored is not None:
            on_scored(arm, seed)
    if not frames:
        return pd.DataFrame()
    per_seed = pd.concat(frames, ignore_index=True)
    return pd.concat([per_seed, _aggregate_mia(per_seed)], ignore_index=True)


def _rmia_scores(model: FittedModel, shadows: Sequence[FittedModel], inside: Sequence[np.ndarray],
                 X: np.ndarray, y: np.ndarray, population: RmiaPopulation) -> np.ndarray:
    """Offline RMIA scores of the pool rows ``(X, y)``, the shadows as reference models."""
    if len(population.unused) != len(shadows):
        raise InternalError(f"{len(population.unused)} population masks for {len(shadows)} shadow models")
    probs = np.stack([_true_label_prob(m, X, y) for m in shadows])
    a = rmia_fit_a(probs, np.stack(inside))  # from the shadows alone, before any target score
    ref_x = np.where(np.stack(inside), np.nan, probs)
    ref_z = np.stack([np.where(mask, np.nan, _true_label_prob(m, population.X, population.y))
                      for m, mask in zip(shadows, population.unused, strict=True)])
    keep = ~np.isnan(ref_z).all(axis=0)  # population rows every shadow's mask left out
    with warnings.catch_warnings():
        # Rows that no shadow left out get NaN; they are dropped by the caller.
        warnings.filterwarnings("ignore", message=".*no OUT reference.*")
        return rmia_offline_scores(_true_label_prob(model, X, y), ref_x,
                                   _true_label_prob(model, population.X[keep], population.y[keep]),
                                   ref_z[:, keep], a=a, gamma=DEFAULT_RMIA_GAMMA)


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


@dataclass(frozen=True, eq=False)
class RmiaPopulation:
    """RMIA's population rows ``z`` and, per shadow model, which of them it does not
    score (``unused[s]``), drawn before any training.

    The rows are validation rows: no model of the audit trains on them, so they are
    non-members of the target and OUT for every shadow. Each shadow still scores only
    a random half of them, with the probability that a pool row is OUT for it, so that
    a population row's ``Pr(z)`` averages over as many reference models as a non-member
    pool row's ``Pr(x)`` and the two likelihood ratios have the same distribution.
    """

    X: np.ndarray
    y: np.ndarray
    unused: list[np.ndarray]


@dataclass(frozen=True, eq=False)
class ShadowModels:
    """Trained shadow (reference) models per (arm, seed) target, each with its in-mask
    over the pool, and RMIA's population (None: LiRA only)."""

    models: Mapping[tuple[str, int], Sequence[tuple[FittedModel, np.ndarray]]]
    population: RmiaPopulation | None = None


@dataclass(frozen=True, eq=False)
class ShadowPool:
    """The shadow (reference) models' pool for one seed (that seed's members, then its
    non-members), the random halves the shadow models train on, and RMIA's population;
    all drawn before any training. LiRA and RMIA are both scored from these shadows."""

    seed: int
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    halves: list[np.ndarray]
    population: RmiaPopulation | None = None

    def rows(self, half: int, arm: str) -> TrainingRows:
        """The rows of one shadow model (each shadow is trained on its own)."""
        inside = self.halves[half]
        return TrainingRows(self.X[inside], self.y[inside], name=f"shadow {half} of {arm}, seed {self.seed}")

    def shadow_seed(self, half: int) -> int:
        return 10_000 + 100 * self.seed + half


def plan_shadow_pool(train: EncodedSplit, test: EncodedSplit, *, seed: int, shadows: int,
                     population: EncodedSplit | None = None,
                     population_rows: int = DEFAULT_RMIA_POPULATION) -> ShadowPool:
    """The pool of ``membership_sample(seed)``, ``shadows`` random halves of it and, when
    ``population`` rows are given, at most ``population_rows`` of them for RMIA."""
    sample = membership_sample(len(train), len(test), seed)
    members, nonmembers = train.take(sample.members), test.take(sample.nonmembers)
    X = np.concatenate([members.X, nonmembers.X])
    y = np.concatenate([members.y, nonmembers.y])
    groups = np.concatenate([members.groups, nonmembers.groups])
    rng = np.random.default_rng([seed, 0x5AD0, shadows])
    halves = [rng.random(len(y)) < 0.5 for _ in range(shadows)]
    return ShadowPool(seed, X, y, groups, halves,
                      None if population is None else plan_rmia_population(
                          population, seed=seed, shadows=shadows, max_rows=population_rows))


def plan_rmia_population(rows: EncodedSplit, *, seed: int, shadows: int, max_rows: int) -> RmiaPopulation:
    """At most ``max_rows`` of ``rows`` (all of them when there are fewer), and each
    shadow's random half of them to leave out; drawn with a fixed seed."""
    rng = np.random.default_rng([seed, 0x2A1A, shadows])
    n = len(rows)
    chosen = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    picked = rows.take(chosen)
    return RmiaPopulation(picked.X, picked.y, [rng.random(len(chosen)) < 0.5 for _ in range(shadows)])
