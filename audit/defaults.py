"""Every default and every set of valid choices of fairpriv, in one place.

The configuration dataclasses (:class:`audit.AuditConfig`, :class:`audit.TrainingConfig`,
:class:`audit.PrivacyAuditConfig`, the arms), the CLI's options and the app's widgets
all read these names, so a default changes here and nowhere else.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCOUNTANT_CHOICES",
    "AUTO_TRAINER",
    "CANARY_KIND_CHOICES",
    "CANARY_ROWS_CHOICES",
    "DEFAULT_ACCOUNTANT",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BOOTSTRAP_SEED",
    "DEFAULT_CANARIES",
    "DEFAULT_CANARY_KIND",
    "DEFAULT_CANARY_ROWS",
    "DEFAULT_CANARY_SCALE",
    "DEFAULT_CI_LEVEL",
    "DEFAULT_SIMULTANEOUS_CI",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_DEVICE",
    "DEFAULT_DROPOUT",
    "DEFAULT_EPOCHS",
    "DEFAULT_EPSILON",
    "DEFAULT_GRADIENT_CANARIES",
    "DEFAULT_GRADIENT_CANARY_NORM",
    "DEFAULT_GRADIENT_GUESS_FRACTIONS",
    "DEFAULT_GUESS_FRACTION",
    "DEFAULT_HIDDEN",
    "DEFAULT_LR",
    "DEFAULT_MAX_GRAD_NORM",
    "DEFAULT_MECHANISM_MASKS",
    "DEFAULT_MECHANISM_ROWS",
    "DEFAULT_MIA",
    "DEFAULT_MIA_BOOTSTRAP",
    "DEFAULT_MIN_GROUP_ROWS",
    "DEFAULT_MISSING_DRAWS",
    "DEFAULT_MISSING_GRID",
    "DEFAULT_MISSING_TARGET",
    "DEFAULT_MISSING_TRAIN_GRID",
    "DEFAULT_NA_VALUES",
    "DEFAULT_N_BOOTSTRAP",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_RMIA_A",
    "DEFAULT_RMIA_GAMMA",
    "DEFAULT_RMIA_POPULATION",
    "DEFAULT_ROW_GUESS_FRACTIONS",
    "DEFAULT_SEEDS",
    "DEFAULT_SHADOWS",
    "DEFAULT_WHITE_BOX",
    "DEFAULT_WHITE_BOX_CANARIES",
    "DEFAULT_SMALL_GROUPS",
    "DEFAULT_SOLVER_CANDIDATES",
    "DEFAULT_SOLVER_FOLDS",
    "DEFAULT_SOLVER_MODEL",
    "DEFAULT_SPLIT_SEED",
    "DEFAULT_SWEEP_BACKEND",
    "DEFAULT_SWEEP_BUDGETS",
    "DEFAULT_SWEEP_EPSILONS",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TRAINER",
    "DEFAULT_VAL_FRACTION",
    "DEVICE_CHOICES",
    "GUARANTEE_ACCOUNTANT_CHOICES",
    "MAX_DROPOUT",
    "MAX_SOLVER_RATE",
    "MIA_CHOICES",
    "MISSING_TARGET_CHOICES",
    "SWEEP_BACKEND_CHOICES",
    "OBJECTIVE_CHOICES",
    "OPTIMIZER_CHOICES",
    "SMALL_GROUPS_CHOICES",
    "SOLVER_MODEL_CHOICES",
    "TRAINER_AUTO",
    "DEFAULT_DPSGDF_STATISTICS_SHARE",
    "DEFAULT_DPSGDF_MAX_CLIP_RATIO",
]

# --- arms
#: Uniform dropout rate, and the group-dropout budget when no uniform arm sets one.
DEFAULT_DROPOUT = 0.5
#: Dropout rates must leave something to keep.
MAX_DROPOUT = 0.95
#: Largest rate the group-dropout solver may give a group inside an audit.
MAX_SOLVER_RATE = 0.9
DEFAULT_OBJECTIVE = "equalize"
OBJECTIVE_CHOICES: tuple[str, ...] = ("equalize", "minimax")
#: Candidate rate vectors the empirical solver trains besides uniform dropout.
DEFAULT_SOLVER_CANDIDATES = 9
#: Cross-fitting folds of the group-dropout solver's empirical route (0: one validation split).
DEFAULT_SOLVER_FOLDS = 4
#: Model of the group-dropout solver: ``"linear"`` (closed form) or ``"mlp"`` (trained).
DEFAULT_SOLVER_MODEL: Final = "linear"
SOLVER_MODEL_CHOICES: tuple[str, ...] = ("linear", "logistic", "mlp")
DEFAULT_EPSILON = 3.0
DEFAULT_MAX_GRAD_NORM = 1.0
DEFAULT_ACCOUNTANT = "prv"
#: Accountants :func:`audit.compute_epsilon` knows. ``gdp`` (a central-limit
#: approximation) can under-report epsilon, so it is never used for a guarantee.
ACCOUNTANT_CHOICES: tuple[str, ...] = ("prv", "rdp", "gdp")
GUARANTEE_ACCOUNTANT_CHOICES: tuple[str, ...] = ("prv", "rdp")

# --- data
DEFAULT_NA_VALUES: tuple[str, ...] = ("?", "", "NA")
DEFAULT_MISSING_TARGET: Final = "drop"
MISSING_TARGET_CHOICES: tuple[str, ...] = ("drop", "error")
DEFAULT_SPLIT_SEED = 0
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_MIN_GROUP_ROWS = 20
DEFAULT_SMALL_GROUPS = "error"
SMALL_GROUPS_CHOICES: tuple[str, ...] = ("error", "merge")

# --- training
DEFAULT_SEEDS = 3
DEFAULT_HIDDEN: tuple[int, ...] = (64,)
DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 256
DEFAULT_LR = 0.005
DEFAULT_OPTIMIZER = "adam"
OPTIMIZER_CHOICES: tuple[str, ...] = ("adam", "sgd")
#: The trainer name that lets the audit choose: the batched trainer for the built-in MLP.
TRAINER_AUTO = "auto"
#: The trainer ``"auto"`` stands for: every built-in arm trains the MLP it covers.
AUTO_TRAINER = "batched"
DEFAULT_TRAINER = TRAINER_AUTO
DEFAULT_DEVICE = "auto"
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")

# --- fairness measurement
DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_CI_LEVEL = 0.95
#: Intervals hold one at a time; True makes each metric's hold across all groups.
DEFAULT_SIMULTANEOUS_CI = False
DEFAULT_THRESHOLD = 0.5
DEFAULT_BOOTSTRAP_SEED = 0
#: Test-time missing-feature rates p_test at which every group's error is measured.
DEFAULT_MISSING_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Uniform dropout rates p_train of the models that show which training rate copes best
#: with each p_test.
DEFAULT_MISSING_TRAIN_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Independent feature masks per test row and missing rate.
DEFAULT_MISSING_DRAWS = 5

# --- privacy audit
DEFAULT_MIA = "loss"
#: ``"lira"`` and ``"rmia"`` train the same shadow (reference) models and both score
#: LiRA and RMIA from them, besides the loss attack.
MIA_CHOICES: tuple[str, ...] = ("loss", "lira", "rmia", "none")
DEFAULT_SHADOWS = 16
#: RMIA's offline slope ``a`` in ``P_IN(x) ~ a P_OUT(x) + (1 - a)`` when it is not fitted
#: (:func:`audit.rmia_fit_a` fits it on an audit's shadow models): 1, IN models no more
#: confident than OUT ones, the RMIA authors' choice when nothing is known.
DEFAULT_RMIA_A = 1.0
#: RMIA's pairwise threshold: ``x`` dominates ``z`` when ``LR(x) / LR(z) > gamma``.
DEFAULT_RMIA_GAMMA = 1.0
#: Most population rows (drawn from the validation split) RMIA compares each row with.
DEFAULT_RMIA_POPULATION = 10_000
DEFAULT_MIA_BOOTSTRAP = 200
DEFAULT_CANARIES = 1000
DEFAULT_CANARY_KIND = "flipped"
CANARY_KIND_CHOICES: tuple[str, ...] = ("flipped", "natural")
DEFAULT_CANARY_ROWS = "isolated"
CANARY_ROWS_CHOICES: tuple[str, ...] = ("isolated", "random")
DEFAULT_GUESS_FRACTION = 0.2
DEFAULT_CONFIDENCE = 0.95
#: White-box canary audit (every step observed) on by default.
DEFAULT_WHITE_BOX = True
#: Crafted row canaries of the white-box audit per canary run.
DEFAULT_WHITE_BOX_CANARIES = 400
#: Standard deviation of each (encoded) feature of a crafted canary: real rows are
#: standardised, so a canary's gradient outweighs a whole batch of them.
DEFAULT_CANARY_SCALE = 1000.0
#: "In" guesses on the row canaries as fractions of them, each tried at a Bonferroni
#: share of the confidence (no "out" guesses: a canary that never showed in an update
#: may still have been in).
DEFAULT_ROW_GUESS_FRACTIONS: tuple[float, ...] = (0.2, 0.4)
#: Dirac gradient canaries per DP-SGD canary run.
DEFAULT_GRADIENT_CANARIES = 5000
#: Gradient canaries' norm in units of the clipping norm C (clipped to C when honest).
DEFAULT_GRADIENT_CANARY_NORM = 4.0
#: Guesses on each side as fractions of the gradient canaries, each tried at a Bonferroni
#: share of the confidence: few guesses prove most for an honest run, many for a broken one.
DEFAULT_GRADIENT_GUESS_FRACTIONS: tuple[float, ...] = (0.01, 0.1)
DEFAULT_MECHANISM_ROWS = 200
DEFAULT_MECHANISM_MASKS = 64

# Sweeps (audit.run_sweep, `fairpriv sweep`).
#: Target epsilons a sweep audits dp_sgd at.
DEFAULT_SWEEP_EPSILONS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Dropout budgets a sweep audits the dropout arms at.
DEFAULT_SWEEP_BUDGETS: tuple[float, ...] = (0.1, 0.3, 0.5)
#: Where a sweep's points run: in this process, or as tasks of a Ray cluster.
SWEEP_BACKEND_CHOICES = ("local", "ray")
DEFAULT_SWEEP_BACKEND = "local"

# DPSGD-F (group-adaptive clipping, the opt-in arm ``dp_sgd_f``).
#: Share of each step's privacy spent on the noisy per-group statistics (the rest on the
#: gradient), in (0, 1).
DEFAULT_DPSGDF_STATISTICS_SHARE = 0.1
#: Cap on a group's clipping bound over the base bound, C_g / C0 (>= 1): it bounds the
#: gradient noise, which scales with the largest bound.
DEFAULT_DPSGDF_MAX_CLIP_RATIO = 4.0
