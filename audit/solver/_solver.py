"""Group-specific dropout: choose a rate per group that equalises group error.

The budget is the expected dropout rate over training rows, ``sum_g pi_g p_g``, where
``pi_g`` is group g's share of the training rows; uniform dropout at rate ``p`` spends
the budget ``p``. Among rate vectors on that budget (and within ``[0, p_max]``) the
solver picks, on rows the candidates' models did not train on (out of fold, by
cross-fitting over the training and validation rows; the validation rows for the
exact route):

* ``objective="equalize"`` -- the smallest spread of group errors (max - min);
* ``objective="minimax"`` -- the smallest worst-group error;

and, among near-ties, the lower overall error. Test rows are only used to report and
to confirm: every verdict states the smallest change its held-out test could detect.

Two routes:

* **exact** -- a linear model on a regression target: the mask-averaged loss is a
  ridge regression with a data-dependent penalty (:mod:`audit.solver._dropout_theory`), so
  each candidate costs one linear solve; two groups are solved by a 1-D search on the
  budget line (and a root-finder where the group errors cross), k groups by SLSQP on
  the budget simplex.
* **empirical** -- logistic or MLP models (and MLP regression): candidates on the
  budget set are cross-fitted (one model per fold, each with its own seed; all
  trained through the audit's executor with the batched trainer) and compared by
  their out-of-fold objective. An improvement over uniform dropout is only claimed
  when it holds on test rows beyond its uncertainty over test rows and fits.

Equalising can *level down* (make a group worse to close the gap, DESIGN section 2):
every result reports each group's error change against uniform dropout and flags it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from .._exceptions import ConfigError, DataError, InternalError
from .._format import decimals_for, format_number
from .._stats import sample_std, t_half_width
from .._validation import Interval, Options, check_param, options_from_keywords
from ..arms._arms import make_arm
from ..data._datasets import Dataset, split_dataset
from ..data._preprocess import TabularPreprocessor
from ..defaults import (
    AUTO_TRAINER,
    DEFAULT_DEVICE,
    DEFAULT_MIN_GROUP_ROWS,
    DEFAULT_OBJECTIVE,
    DEFAULT_SEEDS,
    DEFAULT_SOLVER_CANDIDATES,
    DEFAULT_SOLVER_FOLDS,
    DEFAULT_SOLVER_MODEL,
    DEFAULT_SPLIT_SEED,
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    MAX_SOLVER_RATE,
    OBJECTIVE_CHOICES,
    SOLVER_MODEL_CHOICES,
)
from ..result._schema import json_safe
from ..training._config import TrainingConfig, resolve_device
from ..training._executor import Executor, LocalExecutor
from ..training._trainer import FitJob, FittedModel, TrainingRows
from ._dropout_theory import fit_dropout_linear, fit_dropout_logistic

__all__ = [
    "DropoutSolution",
    "GroupDropoutSearch",
    "GroupErrors",
    "SolveOptions",
    "SolverProblem",
    "solve_group_dropout",
    "solve_on_arrays",
]

Objective = Literal["equalize", "minimax"]
SolverModel = Literal["linear", "logistic", "mlp"]
OBJECTIVES = OBJECTIVE_CHOICES
_GRID_POINTS = 201
#: Budget and rates are checked to this precision.
_TOL = 1e-9


@dataclass(frozen=True)
class GroupErrors:
    """Per-group errors of one rate vector on validation and test rows.

    ``*_std`` hold the standard deviation over training seeds (zero for the exact
    route, which has no randomness).
    """

    rates: dict[str, float]
    val: dict[str, float]
    test: dict[str, float]
    val_gap: float
    test_gap: float
    val_worst: float
    test_worst: float
    val_overall: float
    test_overall: float
    val_gap_std: float = 0.0
    test_gap_std: float = 0.0
    test_std: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rates": self.rates, "errors": self.test, "gap": self.test_gap,
            "worst": self.test_worst, "overall": self.test_overall,
            "gap_std": self.test_gap_std, "errors_std": self.test_std,
            "validation": {"errors": self.val, "gap": self.val_gap, "worst": self.val_worst,
                           "overall": self.val_overall, "gap_std": self.val_gap_std},
        }


@dataclass(frozen=True)
class DropoutSolution:
    """What :func:`solve_group_dropout` found; ``to_dict()`` is its JSON form.

    Attributes
    ----------
    rates, shares
        Solved rate and training share per group.
    budget, budget_check
        The requested budget and ``sum_g pi_g p_g`` of the solved rates.
    uniform, solved
        Errors of uniform dropout at the budget and of the solved rates.
    error_change
        Test error of the solved rates minus uniform's, per group.
    levelled_down
        Groups whose test error rises under the solved rates beyond the 95% bootstrap
        interval of the change (test rows resampled within groups).
    improved, verdict
        Whether the solved rates, chosen on the selection rows (cross-fitted or
        validation), beat uniform dropout on held-out test rows beyond the uncertainty
        (row bootstrap, and fits for the empirical route), and a sentence saying so,
        with the smallest change the test could detect.
    curve
        Every candidate explored: one rate column per group (``rate[g]``), its error per
        group on the rows it was selected on (``val_error[g]``), then ``val_gap``,
        ``val_worst``, ``val_overall`` (and their ``*_std`` for the empirical route).
    seeds, selection, folds
        The training seed of each fit; ``"cross-fitted"`` (out-of-fold errors over
        ``folds`` folds of the training and validation rows) or ``"validation"`` (the
        validation rows), what ``val_*`` and ``curve`` are measured on.
    logistic_seed
        The logistic closed form's choice that seeded an MLP search, or None.
    """

    model: str
    route: str
    objective: str
    metric: str
    budget: float
    p_max: float
    rates: dict[str, float]
    shares: dict[str, float]
    budget_check: float
    uniform: GroupErrors
    solved: GroupErrors
    error_change: dict[str, float]
    levelled_down: list[str]
    improved: bool
    verdict: str
    curve: pd.DataFrame
    seeds: list[int]
    selection: str = "validation"
    folds: int = 0
    logistic_seed: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN, e.g. a standard deviation over one seed, becomes ``None``)."""
        curve = self.curve.to_dict(orient="records")
        return json_safe({
            "model": self.model, "route": self.route, "objective": self.objective,
            "metric": self.metric, "budget": self.budget, "p_max": self.p_max,
            "rates": self.rates, "shares": self.shares, "budget_check": self.budget_check,
            "uniform": self.uniform.to_dict(), "solved": self.solved.to_dict(),
            "error_change": self.error_change, "levelled_down": self.levelled_down,
            "improved": self.improved, "verdict": self.verdict, "seeds": self.seeds,
            "selection": self.selection, "folds": self.folds, "logistic_seed": self.logistic_seed,
            "curve": curve,
        })

    def summary(self) -> str:
        groups = list(self.rates)
        lines = [
            f"group dropout ({self.route}, {self.model}, objective {self.objective}), budget "
            f"{self.budget:g} (check: {self.budget_check:.6f}); test {self.metric}:",
            f"{'group':<20} {'share':>6} {'rate':>6} {'uniform':>9} {'solved':>9} {'change':>9}",
        ]
        for g in groups:
            lines.append(
                f"{g:<20} {self.shares[g]:6.3f} {self.rates[g]:6.3f} {self.uniform.test[g]:9.4f} "
                f"{self.solved.test[g]:9.4f} {self.error_change[g]:+9.4f}"
                + ("  levelled down" if g in self.levelled_down else ""))
        lines.append(f"gap: uniform {self.uniform.test_gap:.4f} -> solved {self.solved.test_gap:.4f}")
        lines.append(self.verdict)
        return "\n".join(lines)


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True, kw_only=True)
class SolveOptions:
    """Options of :func:`solve_group_dropout` (see its docstring), validated in one place."""

    model: SolverModel = DEFAULT_SOLVER_MODEL  # type: ignore[assignment]
    objective: Objective = DEFAULT_OBJECTIVE  # type: ignore[assignment]
    groups: Sequence[str] | np.ndarray | None = None
    p_max: float = MAX_SOLVER_RATE
    seeds: int | Sequence[int] = DEFAULT_SEEDS
    training: TrainingConfig | None = None
    trainer: str = AUTO_TRAINER
    device: str = DEFAULT_DEVICE
    n_candidates: int = DEFAULT_SOLVER_CANDIDATES
    folds: int = DEFAULT_SOLVER_FOLDS
    split_seed: int = DEFAULT_SPLIT_SEED
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS


def solve_group_dropout(dataset: Dataset, *, budget: float, **options: Any) -> DropoutSolution:
    """Choose dropout rates per group that equalise group error under one budget.

    Parameters
    ----------
    dataset
        A loaded :class:`Dataset`; split into train/validation/test as in an audit.
    budget
        Expected dropout rate over training rows, ``sum_g pi_g p_g``.
    **options
        The fields of :class:`SolveOptions`:

        model
            ``"linear"``: on a regression target the exact closed form; on a binary target
            a logistic model trained empirically. ``"logistic"`` (binary target): the
            logistic model's adaptive-regulariser closed form (Wager et al. 2013,
            :func:`~audit.solver._dropout_theory.fit_dropout_logistic`), deterministic,
            on a grid of the budget set, selected on the validation rows. ``"mlp"``: the
            MLP of ``training``, trained empirically (cross-fitted), with the logistic
            closed form's choice among its candidates on a binary target.
        objective
            ``"equalize"`` (minimise the spread of group errors) or ``"minimax"``
            (minimise the worst group's error).
        groups
            Group label per row, overriding the dataset's groups.
        p_max
            Largest rate any group may get.
        seeds
            Training seeds for the empirical route (count or list).
        training, trainer, device
            How the empirical route trains (default: :class:`TrainingConfig`, batched).
        n_candidates
            Candidate rate vectors for the empirical route (besides uniform).
        folds
            Cross-fitting folds of the empirical route (default 4): each candidate is
            trained once per fold on the training and validation rows outside it and
            scored out of fold; 0 or 1 scores models trained on the training rows on the
            validation rows instead (one per seed).

    Examples
    --------
    >>> from audit import load_dataset
    >>> sol = solve_group_dropout(load_dataset("synthetic-regression", n_rows=3000), budget=0.3)
    >>> round(sol.budget_check, 6)
    0.3
    >>> sol.solved.test_gap < sol.uniform.test_gap
    True
    """
    opts = options_from_keywords(SolveOptions, "solve_group_dropout", options)
    if opts.groups is not None:
        labels = np.asarray(opts.groups).astype(str)
        if labels.shape[0] != dataset.n_rows:
            raise DataError(f"groups has {labels.shape[0]} labels for {dataset.n_rows} rows", param="groups")
        dataset = Dataset(**{**dataset.__dict__, "groups": labels})
    splits = split_dataset(dataset, seed=opts.split_seed, val_fraction=opts.val_fraction,
                           test_fraction=opts.test_fraction, min_group_rows=opts.min_group_rows)
    pre = TabularPreprocessor().fit(dataset.features.iloc[splits.train])

    def part(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return pre.transform(dataset.features.iloc[idx]), dataset.y[idx], splits.groups[idx]

    seeds = opts.seeds
    seed_list = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    problem = SolverProblem(
        train=part(splits.train), val=part(splits.val), test=part(splits.test),
        budget=budget, model=opts.model, objective=opts.objective, p_max=opts.p_max, task=dataset.task,
        seeds=seed_list, training=opts.training or TrainingConfig(), n_candidates=opts.n_candidates,
        folds=opts.folds,
    )
    return solve_on_arrays(problem, executor=LocalExecutor(opts.trainer), device=opts.device)


Split = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, kw_only=True, eq=False)
class SolverProblem:
    """Encoded splits and options of one group-dropout solve; validated at construction.

    Without ``test`` the validation rows stand in for it in the reported errors and the
    verdict (and cross-fitting pools the training rows only).
    """

    train: Split
    val: Split
    test: Split | None
    budget: float
    model: SolverModel
    objective: Objective
    p_max: float
    task: str
    seeds: tuple[int, ...]
    training: TrainingConfig
    n_candidates: int = DEFAULT_SOLVER_CANDIDATES
    folds: int = DEFAULT_SOLVER_FOLDS

    def __post_init__(self) -> None:
        check_param("", "objective", self.objective, Options(OBJECTIVES))
        check_param("", "folds", self.folds, Interval(int, 0, None))
        if self.model == "logistic" and self.task != "classification":
            raise ConfigError("model='logistic' needs a binary target; for a regression target use "
                              "model='linear' (its exact closed form)", param="model",
                              fix={"model": "linear"})
        check_param("", "model", self.model, Options(SOLVER_MODEL_CHOICES))
        p_max = check_param("", "p_max", self.p_max, Interval(float, 0, 1, closed="neither"))
        if not 0 <= self.budget <= p_max:
            raise ConfigError(
                f"budget must be in [0, p_max={p_max}] (the mean rate over training rows), "
                f"not {self.budget}", param="budget")
        if not self.seeds:
            raise ConfigError("seeds must not be empty")
        if len(self.labels) < 2:
            raise DataError("group dropout needs at least two groups in the training rows")
        checked = [("validation", self.val)] + ([("test", self.test)] if self.test is not None else [])
        for name, (_, _, g) in checked:
            missing = [lab for lab in self.labels if not np.any(g == lab)]
            if missing:
                raise DataError(
                    f"group(s) {missing} have no rows in the {name} data, so their error cannot be "
                    "measured; use a larger split, or merge small groups (small_groups='merge').",
                    param="small_groups", fix={"small_groups": "merge"})

    @cached_property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(g) for g in np.unique(self.train[2]))

    @cached_property
    def shares(self) -> np.ndarray:
        return np.array([np.mean(self.train[2] == lab) for lab in self.labels])

    @property
    def exact(self) -> bool:
        """Linear regression and logistic regression (``model="logistic"``) have closed
        forms; everything else is trained."""
        return (self.model == "linear" and self.task == "regression") or self.model == "logistic"

    @property
    def report_split(self) -> Split:
        return self.test if self.test is not None else self.val

    def space(self) -> _BudgetSet:
        return _BudgetSet(self.shares, self.budget, self.p_max)

    def empirical_training(self) -> TrainingConfig:
        """The empirical route's models: a logistic model for ``"linear"``, else the MLP."""
        cfg = self.training
        hidden = () if self.model == "linear" else cfg.hidden
        return TrainingConfig(hidden=hidden, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                              optimizer=cfg.optimizer)


class GroupDropoutSearch:
    """The empirical route as a plan and a conclusion, so that its candidates are
    trained by the audit's own executor like every other model.

    ``jobs`` lists every candidate x seed to train (candidates fixed in advance);
    ``conclude(models)`` takes the fitted models in the same order and returns the
    :class:`DropoutSolution`.

    An MLP search on a binary target first fits the logistic closed form on
    :attr:`closed_form_fits` candidates (:meth:`seed`; seconds to a minute on 20,000
    rows), whose choice joins the grid unless a grid point is that choice already.
    Building the search is cheap; the closed form runs when :meth:`seed` or ``jobs``
    is first called, so that progress can count its fits.
    """

    def __init__(self, problem: SolverProblem) -> None:
        if problem.exact:
            raise ConfigError("the exact (linear regression) route trains nothing; use solve_on_arrays")
        self.problem = problem
        self.space = problem.space()
        self.evaluator = _EmpiricalEvaluator(problem)
        self.candidates = _empirical_candidates(self.space, problem.n_candidates)
        #: The logistic closed form's choice, added as a candidate of an MLP search on a
        #: binary target (where the grid may have no point near it); set by :meth:`seed`.
        self.logistic_seed: np.ndarray | None = None
        self._seeds = problem.model == "mlp" and problem.task == "classification" and problem.budget > 0
        #: Logistic models the closed form fits before the candidates are trained (0: none).
        self.closed_form_fits = len(_empirical_candidates(self.space, _SEED_CANDIDATES)) if self._seeds else 0
        self._jobs: list[FitJob] | None = None
        self._provisional: list[FitJob] | None = None

    def seed(self, on_fit: Callable[[], None] | None = None) -> None:
        """Fit the closed form (once; ``on_fit()`` after each of its fits) and fix the
        candidates and :attr:`jobs`."""
        if self._jobs is not None:
            return
        if self._seeds:
            self.logistic_seed = _logistic_choice(self.problem, on_fit)
            if all(np.abs(self.logistic_seed - c).max() > _SEED_DISTINCT for c in self.candidates):
                self.candidates.append(self.logistic_seed)
        self._jobs = self.evaluator.jobs_for(self.candidates)

    @property
    def jobs(self) -> list[FitJob]:
        """Every candidate x seed, candidate-major (fixed once the closed form has run)."""
        self.seed()
        if self._jobs is None:  # pragma: no cover - seed() sets it
            raise InternalError("the search's jobs were not planned")
        return self._jobs

    def provisional_jobs(self) -> list[FitJob]:
        """The most jobs :attr:`jobs` can hold, known before the closed form runs: the
        grid's, and one more candidate's (stand-in rates) when the closed form's choice
        may join it. For estimating the work ahead only (the same list at every call)."""
        if self._provisional is None:
            extra = self.evaluator.jobs_for(self.candidates[:1]) if self._seeds else []
            self._provisional = [*self.evaluator.jobs_for(self.candidates), *extra]
        return self._provisional

    @property
    def rows_scored(self) -> int:
        """Rows each fitted candidate model predicts when the search concludes (its
        scored rows and the report split)."""
        fits = self.evaluator.fits.fits
        return sum(len(fit.scored_rows) for fit in fits) // max(1, len(fits)) + len(self.evaluator.test[1])

    @property
    def training(self) -> TrainingConfig:
        """How the candidates are trained."""
        return self.evaluator.config

    def conclude(self, models: Sequence[FittedModel]) -> DropoutSolution:
        self.evaluator.record(self.candidates, models)
        best = _select_empirical(self.evaluator, self.candidates, self.problem.objective)
        return _solution(self.problem, self.evaluator, best, self.logistic_seed)


def planned_job_count(problem: SolverProblem) -> int:
    """How many models :class:`GroupDropoutSearch` plans for ``problem``, without planning.

    Planning an MLP search fits the logistic closed form for its extra candidate (seconds
    on large data); this count assumes that candidate is distinct from the grid, so it
    is exact or one candidate's fits too many.
    """
    candidates = len(_empirical_candidates(problem.space(), problem.n_candidates))
    if problem.model == "mlp" and problem.task == "classification" and problem.budget > 0:
        candidates += 1
    return candidates * len(_plan_fits(problem).fits)


#: Convergence tolerance of the logistic closed form in the solver.
_LOGISTIC_TOL = 1e-5
#: A logistic seed closer than this (per group) to a grid candidate adds nothing.
_SEED_DISTINCT = 0.01
#: Candidates of the logistic closed form when it only seeds an MLP search.
_SEED_CANDIDATES = 12


def _logistic_choice(problem: SolverProblem, on_fit: Callable[[], None] | None = None) -> np.ndarray:
    """The rates the logistic closed form picks on the same problem (a cheap grid)."""
    evaluator = _ExactEvaluator(problem.train, problem.val, problem.report_split, problem.labels,
                                logistic=True)
    return _solve_on_candidates(evaluator, problem.space(), problem.objective, _SEED_CANDIDATES, on_fit)


def solve_on_arrays(
    problem: SolverProblem, *, executor: Executor | None = None, device: str = "auto",
) -> DropoutSolution:
    """Solve ``problem``: the exact route in closed form, the empirical route by training
    its candidates through ``executor`` (default: in-process, batched trainer)."""
    if problem.exact:
        evaluator = _ExactEvaluator(problem.train, problem.val, problem.report_split, problem.labels,
                                    logistic=problem.model == "logistic")
        if evaluator.logistic:
            best = _solve_on_candidates(evaluator, problem.space(), problem.objective, _LOGISTIC_CANDIDATES)
        else:
            best = _solve_exact(evaluator, problem.space(), problem.objective)
        return _solution(problem, evaluator, best)
    search = GroupDropoutSearch(problem)
    runner = executor if executor is not None else LocalExecutor()
    models = runner.run(search.jobs, config=search.training, device=resolve_device(device),
                        task=problem.task)  # type: ignore[arg-type]
    return search.conclude(models)


def _solution(problem: SolverProblem, evaluator: _ExactEvaluator | _EmpiricalEvaluator,
              best: np.ndarray, logistic_seed: np.ndarray | None = None) -> DropoutSolution:
    labels, shares = problem.labels, problem.shares
    uniform = np.full(len(labels), problem.budget)
    uni_err, sol_err = evaluator.report(uniform), evaluator.report(best)
    improved, verdict = evaluator.verdict(uniform, best, problem.objective)
    levelled = _levelled_down(evaluator.test_row_losses(uniform), evaluator.test_row_losses(best),
                              problem.report_split[2], labels)
    return DropoutSolution(
        model=problem.model,
        route=("adaptive-regulariser" if problem.model == "logistic" else "exact") if problem.exact
        else "empirical",
        objective=problem.objective, metric="mse" if problem.task == "regression" else "error_rate",
        budget=float(problem.budget), p_max=float(problem.p_max),
        rates={g: float(p) for g, p in zip(labels, best, strict=True)},
        shares={lab: float(s) for lab, s in zip(labels, shares, strict=True)},
        budget_check=float(shares @ best), uniform=uni_err, solved=sol_err,
        error_change={g: sol_err.test[g] - uni_err.test[g] for g in labels},
        levelled_down=levelled, improved=improved, verdict=verdict,
        curve=evaluator.curve(),
        seeds=list(evaluator.seeds) if isinstance(evaluator, _EmpiricalEvaluator) else [],
        selection=evaluator.fits.scored_name if isinstance(evaluator, _EmpiricalEvaluator) else "validation",
        folds=problem.folds if isinstance(evaluator, _EmpiricalEvaluator) and evaluator.fits.cross_fitted
        else 0,
        logistic_seed=None if logistic_seed is None else {
            g: float(p) for g, p in zip(labels, logistic_seed, strict=True)},
    )


_HELDOUT_BOOTSTRAP = 1000


def _bootstrap_group_means(loss: np.ndarray, groups: np.ndarray, labels: Sequence[str],
                           idx: list[np.ndarray]) -> np.ndarray:
    """(B, G) group means of ``loss`` under the per-group resample indices ``idx``."""
    return np.stack([loss[np.flatnonzero(groups == lab)][i].mean(axis=1)
                     for lab, i in zip(labels, idx, strict=True)], axis=1)


def _resample_indices(groups: np.ndarray, labels: Sequence[str], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, 0xB007])
    return [rng.integers(0, int(np.sum(groups == lab)), size=(_HELDOUT_BOOTSTRAP, int(np.sum(groups == lab))))
            for lab in labels]


#: Power of the minimum detectable effect stated with every verdict, and the normal
#: quantiles it is computed with: the 95% level, and 85% power (a margin over the 80%
#: stated, for the normal approximation; simulated power at the stated effect is about
#: 0.81 for groups of 1000 and 300 rows, tests/test_solver.py).
_POWER = 0.80
_Z_LEVEL, _Z_POWER = 1.959963984540054, 1.0364333894937898


def _heldout_verdict(loss_uniform: np.ndarray, loss_solved: np.ndarray, groups: np.ndarray,
                     labels: Sequence[str], objective: str,
                     seed_diffs: np.ndarray | None, power_only: bool = False) -> tuple[bool, str]:
    """Decide on held-out test rows whether the solved rates beat uniform dropout.

    The rates were chosen on other rows (among many candidates), so the improvement seen
    there is optimistic; the claim is checked on test rows instead: the 95% bootstrap
    interval (test rows resampled within groups) of the objective's reduction must
    exclude 0, and with several fits so must the paired t-interval over fits.

    Every verdict states the test's power: the smallest reduction it would detect with
    at least 80% probability at the 95% level, ``floor + (z_0.975 + z_0.85) * sd``: ``sd``
    is the bootstrap standard deviation of the reduction, and ``floor`` the gap that
    sampling noise alone puts between equal groups (the mean range of the solved arm's
    centred bootstrap group errors; for minimax, their largest): a gap closed completely
    still measures about ``floor``, so a true reduction must exceed it to show, and an
    interval's upper end ``hi`` bounds the true reduction only up to ``hi + floor``. A
    null result then reads as "it does not help" when that bound is below the
    detectable reduction, and as "this data cannot tell" when it is not.
    """
    what = "gap" if objective == "equalize" else "worst-group error"
    idx = _resample_indices(groups, labels)
    u = _bootstrap_group_means(loss_uniform, groups, labels, idx)
    b = _bootstrap_group_means(loss_solved, groups, labels, idx)
    if objective == "equalize":
        red = (u.max(1) - u.min(1)) - (b.max(1) - b.min(1))
    else:
        red = u.max(1) - b.max(1)
    lo, hi = np.percentile(red, [2.5, 97.5])
    point = float(np.mean(red))
    centred = b - b.mean(axis=0)
    floor = float(np.mean(centred.max(1) - centred.min(1))) if objective == "equalize" else 0.0
    if objective == "minimax":
        # The worst group's error is biased up by the same noise (the max of noisy means).
        floor = float(np.mean(centred.max(1)))
    detectable = floor + (_Z_LEVEL + _Z_POWER) * float(np.std(red, ddof=1))
    n_test = len(groups)
    half, seed_mean = math.nan, math.nan
    if seed_diffs is not None and seed_diffs.shape[0] >= 2:
        half = t_half_width(seed_diffs, 0.95)
        seed_mean = float(seed_diffs.mean())
    # The measured reduction understates a true one by up to about the floor (the solved
    # arm's gap keeps its noise), so the true reduction is bounded by hi + floor.
    bound = hi + floor
    # One number of decimals for the whole sentence (3 for error rates; more for a metric
    # on a smaller scale), so that a value and its interval read alike.
    d = decimals_for(point, lo, hi, detectable, bound, seed_mean, half)

    def num(value: float, signed: bool = False) -> str:
        return format_number(value, d, signed=signed)

    interval = f"95% CI of the reduction {num(lo)} to {num(hi)}"
    power = (f"with {n_test} test rows this test detects a {what} reduction of {num(detectable)} or "
             f"more with {_POWER:.0%} probability")
    rows_ok = lo > 0
    seeds_ok, seed_text = True, ""
    if seed_diffs is not None and seed_diffs.shape[0] >= 2:
        S = seed_diffs.shape[0]
        seeds_ok = seed_mean - half > 0
        seed_text = f"; over {S} fits {num(seed_mean)} ± {num(half)}"
    elif seed_diffs is not None:
        seeds_ok = False
        seed_text = "; one training seed, so training randomness is not accounted for"
    if power_only:
        return rows_ok, (f"the held-out {what} changes by {num(-point, signed=True)} ({interval}); "
                         f"{power}.")
    if rows_ok and seeds_ok:
        return True, (f"confirmed on held-out test rows: the {what} falls by {num(point)} (95% CI "
                      f"{num(lo)} to {num(hi)}{seed_text}); {power}.")
    reading = (f"so it does not help by that much: a reduction above {num(bound)} is ruled out"
               if bound < detectable else
               f"so this data cannot tell: reductions up to {num(bound)} remain possible")
    return False, (f"no improvement over uniform dropout beyond its uncertainty: on held-out test "
                   f"rows the {what} changes by {num(-point, signed=True)} ({interval}{seed_text}); "
                   f"{power}, {reading}.")


def _levelled_down(loss_uniform: np.ndarray, loss_solved: np.ndarray, groups: np.ndarray,
                   labels: Sequence[str]) -> list[str]:
    """Groups whose test error rises under the solved rates, beyond the 95% bootstrap CI."""
    idx = _resample_indices(groups, labels, seed=1)
    change = (_bootstrap_group_means(loss_solved, groups, labels, idx)
              - _bootstrap_group_means(loss_uniform, groups, labels, idx))
    low = np.percentile(change, 2.5, axis=0)
    return [lab for lab, lo in zip(labels, low, strict=True) if lo > 0]


# --------------------------------------------------------------------------- budget set


class _BudgetSet:
    """Rate vectors p with ``shares . p = budget`` and ``0 <= p <= p_max``."""

    def __init__(self, shares: np.ndarray, budget: float, p_max: float) -> None:
        self.shares, self.budget, self.p_max = shares, budget, p_max

    def first_group_range(self) -> tuple[float, float]:
        """Feasible rates of group 0 when there are two groups."""
        a, b = self.shares
        lo = max(0.0, (self.budget - b * self.p_max) / a)
        hi = min(self.p_max, self.budget / a)
        return lo, hi

    def from_first(self, p0: float) -> np.ndarray:
        a, b = self.shares
        return np.array([p0, min(self.p_max, max(0.0, (self.budget - a * p0) / b))])

    def along(self, direction: np.ndarray) -> np.ndarray:
        """The point ``clip(s * direction, 0, p_max)`` on the budget (bisection in s)."""
        direction = np.maximum(np.asarray(direction, dtype=float), 0.0)
        if self.budget == 0 or not np.any(direction > 0):
            return np.zeros_like(self.shares)
        lo, hi = 0.0, 1.0
        while self.shares @ np.clip(hi * direction, 0, self.p_max) < self.budget - _TOL:
            hi *= 2.0
            if hi > 1e12:
                raise ConfigError("budget cannot be reached with these rates")
        for _ in range(200):
            mid = (lo + hi) / 2
            if self.shares @ np.clip(mid * direction, 0, self.p_max) < self.budget:
                lo = mid
            else:
                hi = mid
        return np.clip(hi * direction, 0, self.p_max)

    def project(self, p: np.ndarray) -> np.ndarray:
        """Put an optimiser's point back on the budget set (it may violate it slightly)."""
        p = np.clip(np.asarray(p, dtype=float), 0.0, self.p_max)
        for _ in range(50):
            excess = self.shares @ p - self.budget
            if abs(excess) <= 1e-13:
                break
            movable = p > 0 if excess > 0 else p < self.p_max
            weight = self.shares[movable].sum()
            if weight == 0:
                break
            # Shifting every movable rate by excess / weight moves shares . p by excess.
            p[movable] -= excess / weight
            p = np.clip(p, 0.0, self.p_max)
        return p


# --------------------------------------------------------------------------- evaluators


class _Evaluator:
    labels: tuple[str, ...]
    records: list[dict[str, Any]]

    def curve(self) -> pd.DataFrame:
        df = pd.DataFrame(self.records)
        key = [f"rate[{g}]" for g in self.labels]
        return df.drop_duplicates(subset=key).sort_values(key).reset_index(drop=True)

    def _overall(self, per_group: np.ndarray, split: Split) -> float:
        """Overall error from group errors, weighted by the split's group sizes."""
        counts = np.array([np.sum(split[2] == lab) for lab in self.labels])
        return float(per_group @ counts / counts.sum())


class _ExactEvaluator(_Evaluator):
    """Closed forms under dropout, scored on validation/test rows: linear regression
    (group MSE) or, with ``logistic``, logistic regression's adaptive regulariser
    (group error rate at the 0.5 threshold)."""

    def __init__(self, train: Split, val: Split, test: Split, labels: tuple[str, ...], *,
                 logistic: bool = False) -> None:
        self.train, self.val, self.test, self.labels = train, val, test, labels
        self.logistic = logistic
        self._last_fit: tuple[np.ndarray, float] | None = None
        self.records = []
        self._index = {lab: i for i, lab in enumerate(labels)}
        self._cache: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._test_rows: dict[tuple[float, ...], np.ndarray] = {}

    def test_row_losses(self, p: np.ndarray) -> np.ndarray:
        """Loss of every test row under the closed-form model for rates ``p``."""
        self.errors(p)
        return self._test_rows[tuple(np.round(p, 15))]

    def _row_loss(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
        score = b + X @ w
        if self.logistic:
            return ((score >= 0) != (y > 0.5)).astype(float)
        return (y - score) ** 2

    def errors(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(np.round(p, 15))
        if key not in self._cache:
            X, y, g = self.train
            row_rates = p[np.array([self._index[str(v)] for v in g])]
            if self.logistic:
                # The rates are compared by group error rates: 1e-5 is far tighter than
                # they can tell, and converges on Adult's 100 one-hot columns.
                w, b = fit_dropout_logistic(X, y, row_rates, tol=_LOGISTIC_TOL, max_iter=5000,
                                            start=self._last_fit)
                # Candidates come in a fixed order along the budget set, so each warm start
                # is a neighbour's fit, and the same problem gives the same answers.
                self._last_fit = (w, b)
            else:
                w, b = fit_dropout_linear(X, y, row_rates)
            out = []
            for Xs, ys, gs in (self.val, self.test):
                sq = self._row_loss(Xs, ys, w, b)
                out.append(_group_means(sq, gs, self.labels))
            self._test_rows[key] = sq
            self._cache[key] = (out[0], out[1])
            val_err = out[0]
            self.records.append({
                **{f"rate[{lab}]": float(r) for lab, r in zip(self.labels, p, strict=True)},
                **{f"val_error[{lab}]": float(e) for lab, e in zip(self.labels, val_err, strict=True)},
                "val_gap": float(val_err.max() - val_err.min()), "val_worst": float(val_err.max()),
                "val_overall": self._overall(val_err, self.val),
            })
        return self._cache[key]

    def report(self, p: np.ndarray) -> GroupErrors:
        val_e, test_e = self.errors(p)
        return GroupErrors(
            rates={lab: float(r) for lab, r in zip(self.labels, p, strict=True)},
            val=dict(zip(self.labels, map(float, val_e), strict=True)),
            test=dict(zip(self.labels, map(float, test_e), strict=True)),
            val_gap=float(val_e.max() - val_e.min()), test_gap=float(test_e.max() - test_e.min()),
            val_worst=float(val_e.max()), test_worst=float(test_e.max()),
            val_overall=self._overall(val_e, self.val), test_overall=self._overall(test_e, self.test),
        )

    def verdict(self, uniform: np.ndarray, best: np.ndarray, objective: str) -> tuple[bool, str]:
        return _heldout_verdict(self.test_row_losses(uniform), self.test_row_losses(best),
                                self.test[2], self.labels, objective, seed_diffs=None)


class _EmpiricalEvaluator(_Evaluator):
    """Trains every candidate and scores it on rows its models did not train on.

    With ``folds >= 2`` (cross-fitting, the default) the training and validation rows
    are pooled and cut into ``folds`` parts, stratified by group and label; each
    candidate gets one model per fold, trained on the other folds (with a seed of its
    own), and is scored by its out-of-fold errors: every pooled row predicted once, by
    a model that never saw it. Four times the rows of a single validation split score
    each candidate (at four folds), which is what lets a gap change of a few points be
    seen on 20,000 rows. With ``folds`` 0 or 1, each seed's model trains on the
    training rows and is scored on the validation rows (the solver before
    cross-fitting).

    Candidates are planned as jobs (``jobs_for``) that the caller trains through its
    executor and hands back (``record``); every question asked afterwards
    (``report``, ``test_row_losses``) is about a recorded candidate.
    """

    def __init__(self, problem: SolverProblem) -> None:
        self.test = problem.report_split
        self.labels, self.task = problem.labels, problem.task
        self.config = problem.empirical_training()
        self.records = []
        self.fits = _plan_fits(problem)
        #: The rows a candidate is scored on (pooled out-of-fold, or validation).
        self.val: Split = self.fits.scored
        # key -> (selection errors per fit (F, G), test errors per fit (F, G), pooled (G,))
        self._results: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # key -> per test row loss, averaged over fits
        self._test_rows: dict[tuple[float, ...], np.ndarray] = {}

    @property
    def seeds(self) -> list[int]:
        return [fit.seed for fit in self.fits.fits]

    def _new(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        todo = [c for c in candidates if self._key(c) not in self._results]
        return list({self._key(c): c for c in todo}.values())

    def jobs_for(self, candidates: Sequence[np.ndarray]) -> list[FitJob]:
        """One job per new candidate and fit, candidate-major."""
        jobs = []
        for c in self._new(candidates):
            rates_by_group = {lab: float(r) for lab, r in zip(self.labels, c, strict=True)}
            arm = make_arm("group_dropout", rates=rates_by_group)
            jobs += [FitJob(arm=arm, data=fit.rows, rates=arm.row_dropout_rates(fit.groups, self.labels),
                            seed=fit.seed, purpose="solver")
                     for fit in self.fits.fits]
        return jobs

    def evaluate(self, candidates: Sequence[np.ndarray]) -> None:
        """Every candidate asked about must have been planned and recorded."""
        todo = self._new(candidates)
        if todo:
            raise InternalError(f"solver candidate(s) {todo} were never planned or trained")

    def record(self, candidates: Sequence[np.ndarray], models: Sequence[FittedModel]) -> None:
        """Errors of the fitted models of ``jobs_for(candidates)``, in the same order."""
        todo = self._new(candidates)
        F = len(self.fits.fits)
        if len(models) != len(todo) * F:
            raise InternalError(f"{len(models)} fitted models for {len(todo)} candidates x {F} fits")
        for i, c in enumerate(todo):
            self._record_one(c, models[i * F:(i + 1) * F])

    def _record_one(self, c: np.ndarray, fitted: Sequence[FittedModel]) -> None:
        _, ys, gs = self.val
        pooled_loss = np.empty(len(ys))
        per_fit = []
        for fit, model in zip(self.fits.fits, fitted, strict=True):
            loss = self.row_loss(model.predict(fit.X_scored), ys[fit.scored_rows])
            pooled_loss[fit.scored_rows] = loss
            per_fit.append(_group_means(loss, gs[fit.scored_rows], self.labels))
        val_e = np.stack(per_fit)
        pooled = _group_means(pooled_loss, gs, self.labels) if self.fits.cross_fitted else val_e.mean(0)
        test_pred = [m.predict(self.test[0]) for m in fitted]
        test_e = np.stack([self._group_errors(p, self.test) for p in test_pred])
        self._results[self._key(c)] = (val_e, test_e, pooled)
        self._test_rows[self._key(c)] = np.mean([self.row_loss(p, self.test[1])
                                                 for p in test_pred], axis=0)
        gaps = val_e.max(axis=1) - val_e.min(axis=1)
        self.records.append({
            **{f"rate[{lab}]": float(r) for lab, r in zip(self.labels, c, strict=True)},
            **{f"val_error[{lab}]": float(e) for lab, e in zip(self.labels, pooled, strict=True)},
            "val_gap": float(pooled.max() - pooled.min()), "val_gap_std": sample_std(gaps),
            "val_worst": float(pooled.max()), "val_worst_std": sample_std(val_e.max(axis=1)),
            "val_overall": self._overall(pooled, self.val),
        })

    def _key(self, p: np.ndarray) -> tuple[float, ...]:
        return tuple(float(x) for x in np.round(p, 12))

    def row_loss(self, pred: np.ndarray, ys: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return ((pred >= 0.5) != (ys > 0.5)).astype(float)
        return (pred - ys) ** 2

    def _group_errors(self, pred: np.ndarray, split: Split) -> np.ndarray:
        _, ys, gs = split
        return _group_means(self.row_loss(pred, ys), gs, self.labels)

    def test_row_losses(self, p: np.ndarray) -> np.ndarray:
        self.evaluate([p])
        return self._test_rows[self._key(p)]

    def objective(self, p: np.ndarray, objective: str) -> float:
        """The candidate's objective on its pooled selection errors."""
        return _score(self._results[self._key(p)][2], objective)

    def objective_per_seed(self, p: np.ndarray, objective: str) -> np.ndarray:
        """The objective of each fit on its own scored rows (its spread gives the SE)."""
        val_e = self._results[self._key(p)][0]
        if objective == "equalize":
            return np.asarray(val_e.max(axis=1) - val_e.min(axis=1))
        return np.asarray(val_e.max(axis=1))

    def overall(self, p: np.ndarray) -> float:
        return self._overall(self._results[self._key(p)][2], self.val)

    def report(self, p: np.ndarray) -> GroupErrors:
        self.evaluate([p])
        val_e, test_e, pooled = self._results[self._key(p)]
        vg, tg = val_e.max(1) - val_e.min(1), test_e.max(1) - test_e.min(1)
        return GroupErrors(
            rates={lab: float(r) for lab, r in zip(self.labels, p, strict=True)},
            val=dict(zip(self.labels, map(float, pooled), strict=True)),
            test=dict(zip(self.labels, map(float, test_e.mean(0)), strict=True)),
            val_gap=float(pooled.max() - pooled.min()), test_gap=float(tg.mean()),
            val_worst=float(pooled.max()), test_worst=float(test_e.max(1).mean()),
            val_overall=self._overall(pooled, self.val),
            test_overall=float(np.mean([self._overall(v, self.test) for v in test_e])),
            val_gap_std=sample_std(vg), test_gap_std=sample_std(tg),
            test_std=dict(zip(self.labels, (sample_std(test_e[:, j]) for j in range(len(self.labels))),
                              strict=True)),
        )

    def verdict(self, uniform: np.ndarray, best: np.ndarray, objective: str) -> tuple[bool, str]:
        if np.allclose(uniform, best):
            return self._fallback_verdict(uniform, objective)
        u_test, b_test = self._results[self._key(uniform)][1], self._results[self._key(best)][1]
        score = (lambda e: e.max(1) - e.min(1)) if objective == "equalize" else (lambda e: e.max(1))
        return _heldout_verdict(self.test_row_losses(uniform), self.test_row_losses(best),
                                self.test[2], self.labels, objective,
                                seed_diffs=np.asarray(score(u_test) - score(b_test)))

    def _fallback_verdict(self, uniform: np.ndarray, objective: str) -> tuple[bool, str]:
        """Uniform won the selection: say so, and what the held-out test could have seen
        for the best other candidate, so that "no effect" and "cannot tell" differ."""
        what = "gap" if objective == "equalize" else "worst-group error"
        others = [np.asarray(k) for k in self._results if not np.allclose(np.asarray(k), uniform)]
        text = f"no candidate beat uniform dropout on the {self.fits.scored_name} {what}."
        if not others:
            return False, text
        runner_up = min(others, key=lambda c: self.objective(c, objective))
        _, power = _heldout_verdict(self.test_row_losses(uniform), self.test_row_losses(runner_up),
                                    self.test[2], self.labels, objective, seed_diffs=None,
                                    power_only=True)
        rates = ", ".join(f"{lab}={r:.3f}" for lab, r in zip(self.labels, runner_up, strict=True))
        return False, f"{text} For the best other candidate ({rates}) {power}"


def _group_means(loss: np.ndarray, groups: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    return np.array([loss[groups == lab].mean() for lab in labels], dtype=float)


@dataclass(frozen=True, eq=False)
class _Fit:
    """One model per candidate: the rows it trains on and the rows it is scored on."""

    rows: TrainingRows
    groups: np.ndarray
    seed: int
    scored_rows: np.ndarray
    X_scored: np.ndarray


@dataclass(frozen=True, eq=False)
class _Fits:
    fits: list[_Fit]
    scored: Split
    cross_fitted: bool

    @property
    def scored_name(self) -> str:
        return "cross-fitted" if self.cross_fitted else "validation"


def _plan_fits(problem: SolverProblem) -> _Fits:
    """The empirical route's fits (see :class:`_EmpiricalEvaluator`), fixed in advance."""
    seeds = list(problem.seeds)
    if problem.folds < 2:
        rows = TrainingRows(problem.train[0], problem.train[1], name="solver train")
        everything = np.arange(len(problem.val[1]))
        return _Fits([_Fit(rows, problem.train[2], s, everything, problem.val[0]) for s in seeds],
                     problem.val, cross_fitted=False)
    # Without test rows the validation rows are what the verdict is checked on, so they
    # stay out of the pool.
    parts = [problem.train] if problem.test is None else [problem.train, problem.val]
    X, y, g = (np.concatenate([part[i] for part in parts]) for i in range(3))
    fold = _stratified_folds(g, y, problem.folds)
    fits = []
    for k in range(problem.folds):
        held = np.flatnonzero(fold == k)
        kept = np.flatnonzero(fold != k)
        # Each fold trains with its own seed: the seeds given, then further ones.
        seed = seeds[k] if k < len(seeds) else seeds[-1] + k - len(seeds) + 1
        rows = TrainingRows(X[kept], y[kept], name=f"solver fold {k + 1} of {problem.folds}")
        fits.append(_Fit(rows, g[kept], seed, held, X[held]))
    return _Fits(fits, (X, y, g), cross_fitted=True)


def _stratified_folds(groups: np.ndarray, y: np.ndarray, folds: int) -> np.ndarray:
    """A fold per row, dealt in turn within each (group, label) cell in a fixed shuffle,
    so that every fold holds its share of every group and label."""
    rng = np.random.default_rng(0xF01D)
    fold = np.empty(len(y), dtype=int)
    cells: dict[tuple[str, bool], list[int]] = {}
    for i, key in enumerate(zip(np.asarray(groups).astype(str), np.asarray(y) > 0.5, strict=True)):
        cells.setdefault(key, []).append(i)
    offset = 0
    for key in sorted(cells):
        idx = rng.permutation(np.asarray(cells[key]))
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return fold


# --------------------------------------------------------------------------- search


def _score(val_err: np.ndarray, objective: str) -> float:
    return float(val_err.max() - val_err.min()) if objective == "equalize" else float(val_err.max())


def _solve_exact(ev: _ExactEvaluator, space: _BudgetSet, objective: str) -> np.ndarray:
    k = space.shares.shape[0]
    if space.budget == 0:
        zero = np.zeros(k)
        ev.errors(zero)
        return zero
    ev.errors(np.full(k, space.budget))
    if k == 2:
        return _solve_exact_two(ev, space, objective)
    return _solve_exact_many(ev, space, objective)


def _solve_exact_two(ev: _ExactEvaluator, space: _BudgetSet, objective: str) -> np.ndarray:
    lo, hi = space.first_group_range()
    grid = np.linspace(lo, hi, _GRID_POINTS)
    vals = [ev.errors(space.from_first(t))[0] for t in grid]
    candidates: list[float] = list(grid)
    if objective == "equalize":
        diff = np.array([v[0] - v[1] for v in vals])
        for i in np.flatnonzero(np.sign(diff[:-1]) * np.sign(diff[1:]) <= 0):
            if diff[i] == 0:
                candidates.append(float(grid[i]))
                continue
            root = optimize.brentq(lambda t: float(np.subtract(*ev.errors(space.from_first(t))[0])),
                                   grid[i], grid[i + 1], xtol=1e-12)
            candidates.append(float(root))
    scores = np.array([_score(ev.errors(space.from_first(t))[0], objective) for t in candidates])
    i_best = int(np.argmin(scores))
    if objective == "minimax" or scores[i_best] > 1e-12:
        # Refine the best grid cell with a bounded 1-D search.
        j = int(np.argmin(np.abs(grid - candidates[i_best])))
        a, b = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(
            lambda t: _score(ev.errors(space.from_first(t))[0], objective),
            bounds=(a, b), method="bounded", options={"xatol": 1e-10})
        candidates.append(float(res.x))
    return _pick(ev, [space.from_first(t) for t in candidates], objective)


def _solve_exact_many(ev: _ExactEvaluator, space: _BudgetSet, objective: str) -> np.ndarray:
    k = space.shares.shape[0]
    starts = [np.full(k, space.budget)] + [space.along(np.eye(k)[g] + 0.5) for g in range(k)] + [
        space.along(1.5 - np.eye(k)[g]) for g in range(k)]
    found = []
    cons = [{"type": "eq", "fun": lambda p: space.shares @ p - space.budget}]
    bounds = [(0.0, space.p_max)] * k
    for start in starts:
        if objective == "equalize":
            def f(p: np.ndarray) -> float:
                e = ev.errors(space.project(p))[0]
                return float(np.sum((e - e.mean()) ** 2))
            res = optimize.minimize(f, start, method="SLSQP", bounds=bounds, constraints=cons,
                                    options={"ftol": 1e-14, "maxiter": 300})
            smooth = space.project(res.x)
            found.append(smooth)
            # The variance is a smooth stand-in; when exact equality is out of reach its
            # minimum need not minimise max - min, so polish on the spread itself:
            # minimise u - l subject to l <= e_g(p) <= u for every group g.
            e0 = ev.errors(smooth)[0]
            band = [{"type": "ineq", "fun": (lambda z, j=j: z[-2] - ev.errors(space.project(z[:-2]))[0][j])}
                    for j in range(k)] + [
                {"type": "ineq", "fun": (lambda z, j=j: ev.errors(space.project(z[:-2]))[0][j] - z[-1])}
                for j in range(k)]
            eq_band = [{"type": "eq", "fun": lambda z: space.shares @ z[:-2] - space.budget}]
            z0 = np.concatenate([smooth, [e0.max(), e0.min()]])
            res2 = optimize.minimize(lambda z: float(z[-2] - z[-1]), z0, method="SLSQP",
                                     bounds=[*bounds, (None, None), (None, None)],
                                     constraints=eq_band + band, options={"ftol": 1e-12, "maxiter": 300})
            found.append(space.project(res2.x[:-2]))
        else:
            def f_t(z: np.ndarray) -> float:
                return float(z[-1])
            worst = [{"type": "ineq",
                      "fun": (lambda z, j=j: z[-1] - ev.errors(space.project(z[:-1]))[0][j])}
                     for j in range(k)]
            eq = [{"type": "eq", "fun": lambda z: space.shares @ z[:-1] - space.budget}]
            z0 = np.append(start, ev.errors(start)[0].max())
            res = optimize.minimize(f_t, z0, method="SLSQP", bounds=[*bounds, (None, None)],
                                    constraints=eq + worst, options={"ftol": 1e-12, "maxiter": 300})
            found.append(space.project(res.x[:-1]))
    return _pick(ev, starts + found, objective)


#: Candidates of the logistic closed form (its group error rates are step functions of
#: the rates, so a grid rather than a root-finder or SLSQP): 41 points on the budget
#: line for two groups, else the empirical route's directions plus random ones.
_LOGISTIC_CANDIDATES = 40


def _solve_on_candidates(ev: _ExactEvaluator, space: _BudgetSet, objective: str, n: int,
                         on_fit: Callable[[], None] | None = None) -> np.ndarray:
    """The best of a fixed candidate set (uniform included), as :func:`_pick` decides;
    ``on_fit()`` is called after each candidate is fitted."""
    candidates = _empirical_candidates(space, n)
    for c in candidates:
        ev.errors(c)
        if on_fit is not None:
            on_fit()
    return _pick(ev, candidates, objective)


def _pick(ev: _ExactEvaluator, points: Sequence[np.ndarray], objective: str) -> np.ndarray:
    """Best objective; among near-ties (within 1e-9) the lowest overall error."""
    scored = [(p, _score(ev.errors(p)[0], objective)) for p in points]
    best = min(s for _, s in scored)
    near = [p for p, s in scored if s <= best + 1e-9]
    return min(near, key=lambda p: ev.report(p).val_overall)


def _empirical_candidates(space: _BudgetSet, n_candidates: int) -> list[np.ndarray]:
    """Uniform dropout first, then candidates spread over the budget set (fixed in advance)."""
    k = space.shares.shape[0]
    uniform = np.full(k, space.budget)
    if space.budget == 0:
        return [uniform]
    if k == 2:
        lo, hi = space.first_group_range()
        cands = [space.from_first(t) for t in np.linspace(lo, hi, max(n_candidates, 2))]
    else:
        rng = np.random.default_rng(0)
        dirs = [np.eye(k)[g] + 0.25 for g in range(k)] + [1.25 - np.eye(k)[g] for g in range(k)]
        dirs += list(rng.dirichlet(np.ones(k), size=max(0, n_candidates - 2 * k)))
        cands = [space.along(d) for d in dirs]
    return [uniform, *cands]


def _select_empirical(ev: _EmpiricalEvaluator, cands: Sequence[np.ndarray], objective: str) -> np.ndarray:
    """The best objective on the selection rows (pooled out of fold); within one standard
    error (from the fits' spread), the lowest overall error."""
    if len(cands) == 1:
        return cands[0]
    means = [(c, ev.objective(c, objective)) for c in cands]
    best_c, best_v = min(means, key=lambda t: t[1])
    per_seed = ev.objective_per_seed(best_c, objective)
    se = float(per_seed.std(ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else 0.0
    near = [c for c, v in means if v <= best_v + se]
    return min(near, key=ev.overall)
