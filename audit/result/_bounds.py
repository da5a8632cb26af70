"""Claimed against proven privacy: one row per (arm, canary audit), with its verdict.

:func:`privacy_bounds` (``AuditResult.privacy_bounds()``) puts, for every arm, the
accountant's epsilon (the claim; NaN for an arm without a guarantee) next to each
canary audit's epsilon lower bound (what the audit proves) and the Gaussian-DP
estimate, and says in one sentence what that means. The sentence is built here, in
one place, so that the CLI, the report and the app say the same thing.

Which numbers are proofs:

* ``epsilon_lower_bound`` (Steinke, Nasr, Jagielski 2023) holds for any (epsilon,
  delta)-DP algorithm: a bound above the claim proves the claim wrong (``dp_violation``).
* ``epsilon_lower_bound_gdp`` (Mahloujifar, Melis, Chaudhuri 2024) assumes the run's
  privacy follows a Gaussian-DP trade-off curve: tighter, but an estimate under that
  assumption, never used to flag.

Per arm and audit the bound is the largest over seeds; each seed is audited at a
Bonferroni-corrected confidence, so the maximum holds at the result's confidence.
Pure pandas: nothing here trains or attacks a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._exceptions import InternalError
from .._format import EPSILON_DIGITS, format_number
from ._schema import EMPIRICAL_AUDITS, is_missing

if TYPE_CHECKING:
    from ._container import AuditResult

__all__ = [
    "CANARY_AUDITS",
    "GAUSSIAN_DP_NOTE",
    "PRIVACY_BOUNDS_COLUMNS",
    "CanaryAudit",
    "bound_verdict",
    "largest_bounds",
    "privacy_bounds",
]


@dataclass(frozen=True)
class CanaryAudit:
    """One kind of canary audit: its name in results, its label, what it observes and assumes."""

    name: str
    label: str
    observes: str
    assumes: str
    every_step: bool


#: The canary audits, in report order (the values of ``empirical["audit"]``).
CANARY_AUDITS: dict[str, CanaryAudit] = {
    "black_box": CanaryAudit(
        "black_box", "black-box",
        "final model only: canary rows scored by their loss",
        "Black-box: sees only the final model. Canary rows (test rows, with flipped labels "
        "by default) are each trained on with probability 1/2 and guessed in or out from "
        "their loss. The weakest attacker of the three: DP's guarantee covers far more "
        "than it sees, so its bound is usually well below the claim.",
        every_step=False),
    "white_box_rows": CanaryAudit(
        "white_box_rows", "white-box rows",
        "every step's update: crafted canary rows recognised in it",
        "White-box rows: sees the update of every training step (every arm). Crafted canary "
        "rows (random inputs about 1000 times larger than a real row, coin-flip labels) are "
        "each recognised by their input's direction in the first layer's update, on "
        "whichever features a dropout mask kept (the attacker does not see the masks), and "
        "guessed 'in' when they showed. DP-SGD's guarantee covers the release of every "
        "step's update, so this attacker is inside its threat model; for the other arms it "
        "measures what their training trajectory leaks.",
        every_step=True),
    "white_box_gradient": CanaryAudit(
        "white_box_gradient", "white-box gradient",
        "every step's privatised gradient: Dirac gradient canaries (DP-SGD only)",
        "White-box gradient (DP-SGD only): sees every step's privatised gradient. Dirac "
        "gradient canaries on an appended block of parameters are sampled, clipped and "
        "noised like real rows and scored by the most powerful test of their membership, "
        "using only the public noise multiplier and sampling rate. Inside DP-SGD's threat "
        "model, and the closest of the three to its worst case.",
        every_step=True),
}
if tuple(CANARY_AUDITS) != EMPIRICAL_AUDITS:  # pragma: no cover - caught by any import
    raise InternalError("CANARY_AUDITS and EMPIRICAL_AUDITS disagree")

#: What the Gaussian-DP figure assumes, for every front end.
GAUSSIAN_DP_NOTE = (
    "The Gaussian-DP figure (Mahloujifar, Melis, Chaudhuri 2024) is an estimate, not a "
    "proof: it assumes the run's privacy follows a Gaussian trade-off curve, which DP-SGD "
    "approaches over many steps but not exactly, so it is tighter than the proven lower "
    "bound (Steinke, Nasr, Jagielski 2023, valid for any (epsilon, delta)-DP algorithm) "
    "and is never used to flag a violation."
)

#: Columns of :func:`privacy_bounds`, in order.
PRIVACY_BOUNDS_COLUMNS = (
    "arm", "kind", "audit", "accountant_epsilon", "epsilon_lower_bound", "epsilon_lower_bound_gdp",
    "run_epsilon", "canaries", "guesses", "dp_violation", "verdict",
)  # fmt: skip


def _eps(value: float) -> str:
    return format_number(value, EPSILON_DIGITS)


def _level(confidence: float) -> str:
    return f"{100 * float(confidence):g}%"


def bound_verdict(audit: str, *, epsilon_lower_bound: float, accountant_epsilon: float | None,
                  dp_violation: bool, epsilon_lower_bound_gdp: float | None = None,
                  run_epsilon: float | None = None, confidence: float = 0.95) -> str:
    """One plain sentence saying what one audit's bound means for one arm's claim.

    ``accountant_epsilon`` is the arm's claim (``None``/NaN: no guarantee);
    ``run_epsilon`` the accountant's epsilon of the canary run, which the violation
    flag compares against (it trains on the canaries too, so it can be a little larger).

    Examples
    --------
    >>> bound_verdict("black_box", epsilon_lower_bound=0.0, accountant_epsilon=None,
    ...               dp_violation=False)
    'No guarantee; this audit could not show any leakage; that is not evidence of privacy.'
    """
    info = CANARY_AUDITS.get(audit)
    claim = None if is_missing(accountant_epsilon) else float(accountant_epsilon)  # type: ignore[arg-type]
    run = None if is_missing(run_epsilon) else float(run_epsilon)  # type: ignore[arg-type]
    bound = 0.0 if is_missing(epsilon_lower_bound) else float(epsilon_lower_bound)
    gdp = None if is_missing(epsilon_lower_bound_gdp) else float(epsilon_lower_bound_gdp)  # type: ignore[arg-type]
    level = _level(confidence)
    parts: list[str] = []
    if dp_violation:
        against = run if run is not None else claim
        whose = ("" if claim is None or against is None or _eps(against) == _eps(claim)
                 else " (its canary run's claim)")
        parts.append(f"Violates its claim: this audit proves, at {level} confidence, that the "
                     f"model's training leaks more than epsilon {_eps(against or 0.0)}{whose} allows "
                     f"(lower bound {_eps(bound)}), so the DP implementation or its accounting "
                     "is wrong")
    elif bound <= 0.0:
        prefix = "No guarantee; this" if claim is None else "This"
        parts.append(f"{prefix} audit could not show any leakage; that is not evidence of privacy")
    else:
        proof = (f"this audit proves, at {level} confidence, that the model's training leaks at "
                 f"least as much as epsilon {_eps(bound)} allows")
        if claim is None:
            parts.append(f"No guarantee; {proof} (a lower bound on its leakage, not an epsilon "
                         "guarantee)")
        elif bound <= claim:
            parts.append(f"{proof[0].upper()}{proof[1:]}, consistent with its claim of epsilon "
                         f"{_eps(claim)}")
        else:  # above the arm's claim, within its canary run's (which has more rows)
            parts.append(f"{proof[0].upper()}{proof[1:]}, consistent with the claim of its canary "
                         f"run (epsilon {_eps(run or bound)}, which also trains on the canaries)")
    if info is not None and info.every_step:
        parts.append("it observes every training step, which DP-SGD's guarantee covers"
                     if claim is not None else "it observes every training step")
    if gdp is not None and gdp > 0:
        above = claim is not None and gdp > claim and not dp_violation
        parts.append(f"the Gaussian-DP estimate, which assumes a Gaussian trade-off curve, is "
                     f"epsilon {_eps(gdp)}" + (" (above the claim, but an estimate, not a proof)"
                                               if above else ""))
    return "; ".join(parts) + "."


def privacy_bounds(result: AuditResult) -> pd.DataFrame:
    """One row per (arm, audit): the claim, the largest bounds over seeds, and the verdict."""
    emp = result.empirical
    if emp.empty:
        return pd.DataFrame(columns=list(PRIVACY_BOUNDS_COLUMNS))
    priv = result.aggregate("privacy")
    claims = dict(zip(priv["arm"], priv["epsilon"], strict=True)) if not priv.empty else {}
    arm_rank = {a: i for i, a in enumerate(result.arm_names)}
    audit_rank = {a: i for i, a in enumerate(EMPIRICAL_AUDITS)}
    rows: list[dict[str, Any]] = []
    for (arm, audit), sel in emp.groupby(["arm", "audit"], sort=False):
        claim = claims.get(arm, math.nan)
        claim = math.nan if is_missing(claim) else float(claim)
        bound = float(sel["epsilon_lower_bound"].max())
        gdp = sel["epsilon_lower_bound_gdp"].max() if "epsilon_lower_bound_gdp" in sel else math.nan
        run = sel["run_epsilon"].max() if "run_epsilon" in sel else math.nan
        gdp = math.nan if is_missing(gdp) else float(gdp)
        run = math.nan if is_missing(run) else float(run)
        violation = bool(sel["dp_violation"].fillna(False).astype(bool).any())
        rows.append({
            "arm": str(arm), "kind": str(sel["kind"].iloc[0]), "audit": str(audit),
            "accountant_epsilon": claim, "epsilon_lower_bound": bound,
            "epsilon_lower_bound_gdp": gdp, "run_epsilon": run,
            "canaries": int(sel["canaries"].max()), "guesses": int(sel["guesses"].max()),
            "dp_violation": violation,
            "verdict": bound_verdict(str(audit), epsilon_lower_bound=bound,
                                     accountant_epsilon=claim, dp_violation=violation,
                                     epsilon_lower_bound_gdp=gdp, run_epsilon=run,
                                     confidence=result.confidence),
        })
    df = pd.DataFrame(rows, columns=list(PRIVACY_BOUNDS_COLUMNS))
    keys = pd.DataFrame({"a": df["arm"].map(arm_rank).fillna(len(arm_rank)),
                         "b": df["audit"].map(audit_rank).fillna(len(audit_rank))})
    return df.loc[keys.sort_values(["a", "b"], kind="stable").index].reset_index(drop=True)


def largest_bounds(bounds: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the row of :func:`privacy_bounds` with the largest ``epsilon_lower_bound``
    (the first audit in report order on a tie); ``dp_violation`` is that of any audit."""
    if bounds.empty:
        return bounds.copy()
    ordered = bounds.sort_values("epsilon_lower_bound", ascending=False, kind="stable")
    top = ordered.drop_duplicates("arm").set_index("arm")
    top["dp_violation"] = bounds.groupby("arm")["dp_violation"].any()
    arms = list(dict.fromkeys(bounds["arm"]))
    return top.loc[arms].reset_index()[list(bounds.columns)]
