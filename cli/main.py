"""The ``fairpriv`` command line.

Every command prints errors the user can act on as one line (``Error: ...``,
exit status 1) instead of a traceback, in terms of its own options: engine messages
name Python parameters, and :func:`cli_message` turns them into flags.

The CLI uses only the public API (``audit`` and ``audit.defaults``); every default and
choice set of an option comes from there.
"""

from __future__ import annotations

import inspect
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from audit import (
    ARM_KINDS,
    BUILTIN_DATASETS,
    CANARY_AUDITS,
    SCHEMA_VERSION,
    Arm,
    AuditConfig,
    AuditResult,
    ConfigError,
    FairprivError,
    MissingFeaturesConfig,
    PredictionAuditOptions,
    PrivacyAuditConfig,
    RayExecutor,
    SolveOptions,
    SweepConfig,
    SweepResult,
    TrainingConfig,
    audit_onnx_model,
    audit_predictions,
    available_arms,
    available_trainers,
    compute_epsilon,
    epsilon_lower_bound,
    load_dataset,
    make_arm,
    noise_multiplier_for_epsilon,
    parse_hidden_layers,
    parse_missing_rates,
    parse_number_list,
    run_audit,
    run_sweep,
    run_trainer_benchmark,
    solve_group_dropout,
    split_dataset,
    validate_results,
)
from audit.defaults import (
    ACCOUNTANT_CHOICES,
    CANARY_KIND_CHOICES,
    CANARY_ROWS_CHOICES,
    DEFAULT_ACCOUNTANT,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CANARIES,
    DEFAULT_CANARY_KIND,
    DEFAULT_CANARY_ROWS,
    DEFAULT_CI_LEVEL,
    DEFAULT_CONFIDENCE,
    DEFAULT_DEVICE,
    DEFAULT_DPSGDF_MAX_CLIP_RATIO,
    DEFAULT_DPSGDF_STATISTICS_SHARE,
    DEFAULT_DROPOUT,
    DEFAULT_EPOCHS,
    DEFAULT_EPSILON,
    DEFAULT_GRADIENT_CANARIES,
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MIA,
    DEFAULT_MIN_GROUP_ROWS,
    DEFAULT_MISSING_DRAWS,
    DEFAULT_MISSING_GRID,
    DEFAULT_MISSING_TARGET,
    DEFAULT_MISSING_TRAIN_GRID,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_NA_VALUES,
    DEFAULT_OBJECTIVE,
    DEFAULT_SEEDS,
    DEFAULT_SHADOWS,
    DEFAULT_SMALL_GROUPS,
    DEFAULT_SOLVER_MODEL,
    DEFAULT_SWEEP_BACKEND,
    DEFAULT_SWEEP_BUDGETS,
    DEFAULT_SWEEP_EPSILONS,
    DEFAULT_TRAINER,
    DEFAULT_WHITE_BOX,
    DEFAULT_WHITE_BOX_CANARIES,
    DEVICE_CHOICES,
    GUARANTEE_ACCOUNTANT_CHOICES,
    MIA_CHOICES,
    MISSING_TARGET_CHOICES,
    OBJECTIVE_CHOICES,
    SMALL_GROUPS_CHOICES,
    SOLVER_MODEL_CHOICES,
    SWEEP_BACKEND_CHOICES,
    TRAINER_AUTO,
)

__all__ = ["cli_message", "main"]


# --- engine errors in the words of the command line
#
# Engine messages name Python parameters (``small_groups='merge'``) and carry the
# parameter at fault and a fix as ``exc.param`` / ``exc.fix`` (audit/_exceptions.py).
# Here they become the options of the command that failed (``--small-groups merge``).

#: Engine parameter -> the command's option (click parameter name) that sets it, where
#: the two names differ; any other parameter is set by the option of its own name.
OPTION_OF_PARAM: dict[str, str] = {
    "source": "dataset",
    "path": "data_path",
    "kind": "arms_text",
    "p": "dropout",
    "rates": "group_rates",
    "dropout": "dp_dropout",
    "n_candidates": "candidates",
}
#: Per command, where its options set other engine parameters than ``run``'s.
OPTION_OF_PARAM_BY_COMMAND: dict[str, dict[str, str]] = {
    "audit-model": {"target": "y_true", "data": "data_path", "model": "onnx_model",
                    "source": "predictions"},
}
#: Parameters engine messages name in prose ("lower min_group_rows"); a bare name is
#: read as a parameter only if it is one of these or the error's own ``param``/``fix``,
#: so that column names listed in a message stay as they are.
PROSE_PARAMS = frozenset({"min_group_rows", "missing_target", "na_values", "positive_label",
                          "small_groups", "max_grad_norm", "val_fraction", "test_fraction"})

_KEYWORD = re.compile(
    r"(?<![\w.-])([a-z_][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|-?\d[\w.+-]*|(?=[\s,.;:)]|$))")
_SUBJECT = re.compile(r"^(?:\S+ )?([a-z_][a-z0-9_]*) must ")
_IDENTIFIER = re.compile(r"(?<![\w'\"-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w'\"(=-])")


def option_flags(command: click.Command | None) -> Callable[[str], str | None]:
    """``flag(param)``: the long flag of ``command`` that sets engine parameter ``param``."""
    if command is None:
        return lambda param: None
    options = {p.name: p for p in command.params if isinstance(p, click.Option)}
    table = {**OPTION_OF_PARAM, **OPTION_OF_PARAM_BY_COMMAND.get(command.name or "", {})}

    def flag(param: str) -> str | None:
        option = options.get(table.get(param, param))
        if option is None:
            return None
        return next((o for o in option.opts if o.startswith("--")), None)

    return flag


def cli_value(value: object) -> str:
    """A Python value as an option takes it: ``{'A': 0.3}`` -> ``A=0.3``, ``('?', 'NA')`` -> ``?,NA``."""
    if isinstance(value, Mapping):
        text = ",".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    return shlex.quote(text)


def to_flags(text: str, flag: Callable[[str], str | None], words: frozenset[str] = PROSE_PARAMS) -> str:
    """Python spellings of parameters in ``text`` as flags: ``small_groups='merge'`` ->
    ``--small-groups merge``, ``target=`` -> ``--target``, and bare names in ``words``
    (``min_group_rows`` -> ``--min-group-rows``). Parameters without a flag stay as they are."""

    def keyword(m: re.Match[str]) -> str:
        option = flag(m.group(1))
        if option is None:
            return m.group(0)
        value = m.group(2)
        if value.startswith("'"):
            value = cli_value(value[1:-1])
        return f"{option} {value}" if value else option

    def identifier(m: re.Match[str]) -> str:
        return (flag(m.group(1)) if m.group(1) in words else None) or m.group(0)

    return _IDENTIFIER.sub(identifier, _KEYWORD.sub(keyword, text))


def cli_message(exc: FairprivError, command: click.Command | None) -> str:
    """The message of an engine error in terms of ``command``'s options."""
    flag = option_flags(command)
    message = str(exc)
    for name, value in (exc.fix or {}).items():
        option = flag(name)
        if option is not None:
            message = message.replace(f"{name}={value!r}", f"{option} {cli_value(value)}")
    param = exc.param
    if param is None:
        # Errors without the hint still say "<param> must ..." first.
        subject = _SUBJECT.match(message)
        param = subject.group(1) if subject else None
    param_flag = flag(param) if param else None
    if param_flag is not None and param is not None:
        # "TrainingConfig epochs must be ..." / "uniform_dropout p must be ..." -> "--epochs must be ..."
        message = re.sub(rf"^(?:\S+ )?{re.escape(param)}(?= must )", param_flag, message)
        if message.startswith(param_flag):
            # None is leaving the option out, which a command line cannot spell.
            message = message.replace(" or None, not ", ", not ", 1)
    own = frozenset(name for name in (param, *(exc.fix or {})) if name)
    message = to_flags(message, flag, PROSE_PARAMS | own)
    if param_flag is not None and param_flag not in message:
        message += f" ({param_flag})"
    return message


class _FairprivGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FairprivError as exc:
            name = ctx.invoked_subcommand
            command = self.get_command(ctx, name) if name else None
            raise click.ClickException(cli_message(exc, command)) from None


@click.group(cls=_FairprivGroup)
@click.version_option(package_name="fairpriv", prog_name="fairpriv")
def main() -> None:
    """fairpriv: audit a tabular model for disparate error and privacy loss."""


def _default(func: Callable[..., Any], name: str) -> Any:
    """The default of parameter ``name`` of an engine function (one source of truth)."""
    return inspect.signature(func).parameters[name].default


def _widths(hidden: Sequence[int]) -> str:
    return ",".join(str(h) for h in hidden)


def _numbers(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def parse_group_rates(text: str) -> dict[str, float]:
    """Parse ``"Female=0.5,Male=0.2"`` into ``{"Female": 0.5, "Male": 0.2}``."""
    rates: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"cannot read group rate {part!r}; write GROUP=RATE pairs separated by commas, "
                "e.g. --group-rates Female=0.5,Male=0.2"
            )
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"rate for group '{name.strip()}' is not a number: {value!r}") from None
    if not rates:
        raise ConfigError("--group-rates is empty; e.g. --group-rates Female=0.5,Male=0.2")
    return rates


def parse_dp_dropout(text: str | None) -> float | dict[str, float] | None:
    """``--dp-dropout``: nothing, one rate (``0.2``) or rates per group (``A=0.3,B=0.1``)."""
    if text is None or not text.strip():
        return None
    if "=" in text:
        return parse_group_rates(text)
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"--dp-dropout must be a rate (e.g. 0.2) or rates per group (A=0.3,B=0.1), not {text!r}"
        ) from None


def build_arms(  # noqa: PLR0913 - one keyword per arm option
    kinds: Sequence[str], *, dropout: float, group_rates: dict[str, float] | None,
    max_grad_norm: float, accountant: str, dp_dropout: float | dict[str, float] | None = None,
    budget: float | None = None, objective: str = DEFAULT_OBJECTIVE,
    statistics_share: float = DEFAULT_DPSGDF_STATISTICS_SHARE,
    max_clip_ratio: float = DEFAULT_DPSGDF_MAX_CLIP_RATIO,
) -> tuple[Arm, ...]:
    """The arms named on the command line, in the order given, built by :func:`audit.make_arm`.

    Arm kinds without options of their own (``baseline``, or any registered later) are
    built with their defaults.
    """
    params: dict[str, dict[str, Any]] = {
        "uniform_dropout": {"p": dropout},
        "group_dropout": ({"rates": group_rates} if group_rates else
                          {"rates": "auto", "budget": dropout if budget is None else budget,
                           "objective": objective}),
        "dp_sgd": {"max_grad_norm": max_grad_norm, "accountant": accountant, "dropout": dp_dropout},
        "dp_sgd_f": {"max_grad_norm": max_grad_norm, "accountant": accountant, "dropout": dp_dropout,
                     "statistics_share": statistics_share, "max_clip_ratio": max_clip_ratio},
    }
    known = available_arms()
    arms: list[Arm] = []
    for kind in kinds:
        if kind not in known:
            raise ConfigError(f"unknown arm {kind!r}; valid arms: {', '.join(known)}", param="kind")
        arms.append(make_arm(kind, **params.get(kind, {})))
    return tuple(arms)


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _with(*groups: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Apply option decorators in the order listed (the first is the first in --help)."""
    def decorate(func: Any) -> Any:
        for group in reversed(groups):
            for option in reversed(group):
                func = option(func)
        return func

    return decorate


#: What to audit: the data, its roles and its groups (``run`` and ``sweep``).
DATA_OPTIONS = [
    click.option("--dataset", required=True,
                 help=f"Built-in name ({', '.join(BUILTIN_DATASETS)}) or a CSV/TSV/Parquet path."),
    click.option("--data-path", type=click.Path(dir_okay=False), default=None,
                 help="For --dataset adult: the UCI adult.data / adult.test file."),
    click.option("--target", default=None, help="Target column (binary)."),
    click.option("--sensitive", multiple=True,
                 help="Sensitive column; repeat for intersectional groups "
                      "(--sensitive sex --sensitive race)."),
    click.option("--positive-label", default=None,
                 help="Target value that counts as positive (default: 1/True, else the rarer value)."),
    click.option("--min-group-rows", type=int, default=DEFAULT_MIN_GROUP_ROWS, show_default=True,
                 help="Minimum rows per group in every split."),
    click.option("--small-groups", type=click.Choice(SMALL_GROUPS_CHOICES), default=DEFAULT_SMALL_GROUPS,
                 show_default=True, help="Groups below the minimum: fail, or merge into 'other'."),
    click.option("--missing-target", type=click.Choice(MISSING_TARGET_CHOICES),
                 default=DEFAULT_MISSING_TARGET, show_default=True,
                 help="Rows with a missing target/sensitive value."),
    click.option("--na-values", default=",".join(DEFAULT_NA_VALUES), show_default=True,
                 help="Comma-separated cell values read as missing."),
    click.option("--encoding", default=None, help="Text encoding of the data file (default UTF-8)."),
    click.option("--rows", "n_rows", type=int, default=None, help="Rows of the synthetic datasets."),
]
#: The arms of one audit and their knobs (``run``; ``sweep`` varies the knobs).
ARM_OPTIONS = [
    click.option("--arms", "arms_text", default=",".join(ARM_KINDS),
                 show_default=True,
                 help=f"Comma-separated arms from: {', '.join(available_arms())} (dp_sgd_f: DP-SGD "
                      "with group-adaptive clipping, DPSGD-F, at the same --epsilon)."),
    click.option("--dropout", type=float, default=DEFAULT_DROPOUT, show_default=True,
                 help="Rate p of the uniform_dropout arm."),
    click.option("--group-rates", default=None,
                 help="Explicit rates of the group_dropout arm, e.g. Female=0.5,Male=0.2 "
                      "[default: solved on validation rows at --budget]."),
    click.option("--budget", type=float, default=None,
                 help="Group-dropout budget sum_g pi_g p_g [default: --dropout]."),
    click.option("--epsilon", type=float, default=DEFAULT_EPSILON, show_default=True,
                 help="Target epsilon of dp_sgd."),
    click.option("--dp-dropout", default=None,
                 help="Dropout inside the dp_sgd arm: a rate (0.2) or rates per group (A=0.3,B=0.1)."),
    click.option("--statistics-share", type=float, default=DEFAULT_DPSGDF_STATISTICS_SHARE,
                 show_default=True,
                 help="dp_sgd_f: share of each step's privacy spent on the noisy per-group counts "
                      "that set the groups' clipping bounds."),
    click.option("--max-clip-ratio", type=float, default=DEFAULT_DPSGDF_MAX_CLIP_RATIO, show_default=True,
                 help="dp_sgd_f: largest group clipping bound, in units of --max-grad-norm."),
]
#: How every arm is trained and measured (``run`` and ``sweep``).
AUDIT_OPTIONS = [
    click.option("--objective", type=click.Choice(OBJECTIVE_CHOICES), default=DEFAULT_OBJECTIVE,
                 show_default=True, help="What the group-dropout solver minimises."),
    click.option("--seeds", type=int, default=DEFAULT_SEEDS, show_default=True,
                 help="Training seeds per arm."),
    click.option("--delta", type=float, default=None,
                 help="Target delta of dp_sgd [default: min(1e-5, 1/(10 n_train))]."),
    click.option("--max-grad-norm", type=float, default=DEFAULT_MAX_GRAD_NORM, show_default=True,
                 help="DP-SGD per-row clipping norm C."),
    click.option("--accountant", type=click.Choice(GUARANTEE_ACCOUNTANT_CHOICES), default=DEFAULT_ACCOUNTANT,
                 show_default=True),
    click.option("--epochs", type=int, default=DEFAULT_EPOCHS, show_default=True),
    click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True),
    click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Adam learning rate."),
    click.option("--hidden", default=_widths(DEFAULT_HIDDEN), show_default=True,
                 help="Hidden layer widths, e.g. 64,64; empty string for a linear model."),
    click.option("--trainer", type=click.Choice([TRAINER_AUTO, *available_trainers()]),
                 default=DEFAULT_TRAINER, show_default=True,
                 help="batched: all models at once (auto picks it); reference: one at a time via Opacus."),
    click.option("--device", type=click.Choice(DEVICE_CHOICES), default=DEFAULT_DEVICE, show_default=True),
    click.option("--bootstrap", "n_bootstrap", type=int, default=DEFAULT_N_BOOTSTRAP, show_default=True,
                 help="Bootstrap resamples of the test rows for the CIs of AUC and log-loss (0: none); "
                      "rates and their gaps get score intervals without resampling."),
    click.option("--ci-level", type=float, default=DEFAULT_CI_LEVEL, show_default=True,
                 help="Confidence level of every interval."),
    click.option("--simultaneous-ci", is_flag=True,
                 help="Make each metric's intervals hold together across all groups (and gaps "
                      "across all pairs of groups), by Bonferroni: for many intersectional groups."),
    click.option("--mia", type=click.Choice(MIA_CHOICES), default=DEFAULT_MIA, show_default=True,
                 help="Membership inference: the loss-threshold attack; lira or rmia (the same) add "
                      "shadow models, trained once and scored by both LiRA and RMIA (heavy)."),
    click.option("--shadows", type=int, default=DEFAULT_SHADOWS, show_default=True,
                 help="Shadow (reference) models per arm, shared by LiRA and RMIA."),
    click.option("--canaries", type=int, default=DEFAULT_CANARIES, show_default=True,
                 help="Canaries for the one-run epsilon lower bound (0: skip it)."),
    click.option("--canary-kind", type=click.Choice(CANARY_KIND_CHOICES), default=DEFAULT_CANARY_KIND,
                 show_default=True),
    click.option("--canary-rows", type=click.Choice(CANARY_ROWS_CHOICES), default=DEFAULT_CANARY_ROWS,
                 show_default=True, help="Which test rows become canaries."),
    click.option("--white-box/--no-white-box", default=DEFAULT_WHITE_BOX, show_default=True,
                 help="Also audit every training step: crafted row canaries for every arm, Dirac "
                      "gradient canaries for DP-SGD."),
    click.option("--white-box-canaries", type=int, default=DEFAULT_WHITE_BOX_CANARIES, show_default=True,
                 help="Crafted row canaries of the white-box audit (cost grows linearly)."),
    click.option("--gradient-canaries", type=int, default=DEFAULT_GRADIENT_CANARIES, show_default=True,
                 help="Dirac gradient canaries of the white-box audit of DP-SGD arms (cheap)."),
    click.option("--missing-rates", default=None,
                 help="Measure each group's error as features go missing at test time, at these "
                      "rates per group (e.g. Female=0.3,Male=0.1, or one rate such as 0.2; group "
                      "names with ',' or '=' as a JSON object) and on the --missing-grid of rates "
                      "for every group [default: off]."),
    click.option("--missing-grid", default=None,
                 help="Test-time missing rates p_test measured for every group [default with "
                      f"--missing-rates: {_numbers(DEFAULT_MISSING_GRID)}]; alone, it turns the "
                      "measurement on without per-group rates."),
    click.option("--missing-train-grid", default=_numbers(DEFAULT_MISSING_TRAIN_GRID), show_default=True,
                 help="Uniform dropout rates p_train of the extra models that show which training "
                      "rate copes best with each p_test (empty: none)."),
    click.option("--missing-draws", type=int, default=DEFAULT_MISSING_DRAWS, show_default=True,
                 help="Feature masks drawn per test row and missing rate."),
]


def _missing_config(opts: Mapping[str, Any]) -> MissingFeaturesConfig | None:
    """The missing-feature measurement the --missing-* options ask for (None: off)."""
    if opts["missing_rates"] is None and opts["missing_grid"] is None:
        ctx = click.get_current_context(silent=True)
        typed = click.core.ParameterSource.COMMANDLINE
        given = [f"--{name.replace('_', '-')}" for name in ("missing_train_grid", "missing_draws")
                 if ctx is not None and ctx.get_parameter_source(name) is typed]
        if given:
            # Silently ignoring them would look like a measurement that found nothing.
            verb = "apply" if len(given) > 1 else "applies"
            raise click.UsageError(f"{' and '.join(given)} only {verb} with --missing-rates or "
                                   "--missing-grid, which turn the missing-feature measurement on.")
        return None
    grid = (parse_number_list(opts["missing_grid"], "missing_grid") if opts["missing_grid"] is not None
            else DEFAULT_MISSING_GRID)
    return MissingFeaturesConfig(
        rates=parse_missing_rates(opts["missing_rates"]) if opts["missing_rates"] is not None else None,
        grid=grid, train_grid=parse_number_list(opts["missing_train_grid"], "missing_train_grid"),
        draws=opts["missing_draws"])


def _audit_config(opts: Mapping[str, Any], arms: Sequence[Any] | None, *, epsilon: float = DEFAULT_EPSILON
                  ) -> AuditConfig:
    """The audit the options of AUDIT_OPTIONS (and DATA_OPTIONS' group minimum) describe
    (``arms=None``: the default arms, for a sweep, which sets each point's arm itself)."""
    chosen: dict[str, Any] = {"arms": tuple(arms)} if arms is not None else {}
    return AuditConfig(
        **chosen, seeds=opts["seeds"], epsilon=epsilon, delta=opts["delta"],
        training=TrainingConfig(hidden=parse_hidden_layers(opts["hidden"]), epochs=opts["epochs"],
                                batch_size=opts["batch_size"], lr=opts["lr"]),
        trainer=opts["trainer"], device=opts["device"], n_bootstrap=opts["n_bootstrap"],
        ci_level=opts["ci_level"], simultaneous_ci=opts["simultaneous_ci"],
        min_group_rows=opts["min_group_rows"], small_groups=opts["small_groups"],
        privacy_audit=PrivacyAuditConfig(mia=opts["mia"], shadows=opts["shadows"],
                                         canaries=opts["canaries"], canary_kind=opts["canary_kind"],
                                         canary_rows=opts["canary_rows"], white_box=opts["white_box"],
                                         white_box_canaries=opts["white_box_canaries"],
                                         gradient_canaries=opts["gradient_canaries"]),
        missing=_missing_config(opts),
    )


def _load(opts: Mapping[str, Any]) -> Any:
    """The dataset DATA_OPTIONS describe; its notes go to stderr in flags' words."""
    na_values = tuple(v for v in opts["na_values"].split(","))
    dataset = load_dataset(
        opts["dataset"], target=opts["target"], sensitive=list(opts["sensitive"]) or None,
        positive_label=opts["positive_label"], path=opts["data_path"], na_values=na_values,
        encoding=opts["encoding"], missing_target=opts["missing_target"], n_rows=opts["n_rows"],
    )
    flag = option_flags(click.get_current_context().command)
    for note in dataset.notes:
        click.echo(f"note: {to_flags(note, flag)}", err=True)
    return dataset


@main.command()
@_with(DATA_OPTIONS, ARM_OPTIONS, AUDIT_OPTIONS)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the models are trained: in this process, or as tasks of a Ray cluster (one "
                   "per set of shared rows; pip install 'fairpriv[ray]').")
@click.option("--address", default=None,
              help="With --executor ray: the cluster (auto, or HOST:PORT) [default: start a local one].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output directory for results.json, report.pdf and report.html.")
@click.option("--no-report", is_flag=True, help="Write results.json only.")
@click.option("--quiet", is_flag=True,
              help="No progress bar (on stderr: the stage, its models or steps done, percent, time left).")
def run(**opts: Any) -> None:
    """Run an audit and write OUT/results.json; print the summary table."""
    kinds = _split_list(opts["arms_text"])
    if not kinds:
        raise ConfigError(f"--arms is empty; choose from {', '.join(ARM_KINDS)}")
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise ConfigError(f"--arms lists {repeated} more than once; name each arm once")
    group_rates = parse_group_rates(opts["group_rates"]) if opts["group_rates"] else None
    arms = build_arms(kinds, dropout=opts["dropout"], group_rates=group_rates,
                      max_grad_norm=opts["max_grad_norm"], accountant=opts["accountant"],
                      dp_dropout=parse_dp_dropout(opts["dp_dropout"]), budget=opts["budget"],
                      objective=opts["objective"], statistics_share=opts["statistics_share"],
                      max_clip_ratio=opts["max_clip_ratio"])
    if opts["address"] is not None and opts["executor"] != "ray":
        raise ConfigError("--address names a Ray cluster: use it with --executor ray")
    config = _audit_config(opts, arms, epsilon=opts["epsilon"])
    executor = RayExecutor(config.trainer, address=opts["address"]) if opts["executor"] == "ray" else None
    dataset = _load(opts)
    result = run_audit(dataset, config, show_progress=not opts["quiet"], executor=executor)
    out = Path(opts["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    result.to_json(path)
    click.echo(result.summary())
    for arm, solution in result.solutions.items():
        rates = ", ".join(f"{g}={r:.3f}" for g, r in solution["rates"].items())
        used = ", ".join(f"{g}={r:.3f}" for g, r in solution.get("applied_rates", {}).items())
        click.echo(f"{arm}: solved rates {rates} (budget {solution['budget']:g}); "
                   f"{solution['verdict']} Trained with {used}.")
    click.echo(f"\nwrote {path}")
    if not opts["no_report"]:
        _write_reports(result, out / "report.pdf", out / "report.html")
    if result.dp_violations:
        click.echo(f"DP VIOLATION in {', '.join(result.dp_violations)}: the empirical lower bound "
                   "exceeds the accountant's epsilon (see results.json).", err=True)
        bounds = result.privacy_bounds()
        for _, row in bounds[bounds["dp_violation"]].iterrows():
            info = CANARY_AUDITS.get(str(row["audit"]))
            click.echo(f"  {row['arm']}, {info.label if info else row['audit']}: {row['verdict']}",
                       err=True)


@main.command()
@click.option("--sample-rate", "-q", type=float, required=True, help="Poisson sampling rate q.")
@click.option("--noise-multiplier", "-s", type=float, default=None, help="sigma (noise std / C).")
@click.option("--target-epsilon", type=float, default=None,
              help="Instead of --noise-multiplier: print the sigma that reaches this epsilon.")
@click.option("--steps", "-t", type=int, required=True, help="Number of DP-SGD steps.")
@click.option("--delta", "-d", type=float, required=True)
@click.option("--accountant", type=click.Choice(ACCOUNTANT_CHOICES), default=DEFAULT_ACCOUNTANT,
              show_default=True, help="gdp is an approximation that can under-report epsilon.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def epsilon(sample_rate: float, noise_multiplier: float | None, target_epsilon: float | None,
            steps: int, delta: float, accountant: str, as_json: bool) -> None:
    """Epsilon of DP-SGD for (q, sigma, steps, delta), or the sigma reaching a target epsilon."""
    import json

    if (noise_multiplier is None) == (target_epsilon is None):
        raise ConfigError("give exactly one of --noise-multiplier and --target-epsilon")
    if target_epsilon is not None:
        sigma = noise_multiplier_for_epsilon(target_epsilon=target_epsilon, sample_rate=sample_rate,
                                             steps=steps, delta=delta, accountant=accountant)
        eps = compute_epsilon(sample_rate=sample_rate, noise_multiplier=sigma, steps=steps,
                              delta=delta, accountant=accountant)
        out: dict[str, Any] = {"noise_multiplier": sigma, "epsilon": eps}
        text = f"noise multiplier {sigma:.6g} (epsilon {eps:.6g} <= {target_epsilon:g})"
    else:
        assert noise_multiplier is not None
        eps = compute_epsilon(sample_rate=sample_rate, noise_multiplier=noise_multiplier, steps=steps,
                              delta=delta, accountant=accountant)
        out = {"noise_multiplier": noise_multiplier, "epsilon": eps}
        text = f"epsilon {eps:.6g}"
    out.update(sample_rate=sample_rate, steps=steps, delta=delta, accountant=accountant)
    click.echo(json.dumps(out) if as_json else
               f"{text} at delta {delta:g} ({accountant}; q={sample_rate:g}, {steps} steps, "
               "Poisson sampling, add/remove-one neighbours)")


def _write_reports(result: Any, pdf: Path | None, html: Path | None) -> None:
    # reports depends on audit, never the reverse: imported only when rendering.
    from reports import render_html, render_pdf

    if pdf is not None:
        pages = render_pdf(result, pdf)
        click.echo(f"wrote {pdf} ({pages} pages)")
    if html is not None:
        render_html(result, html)
        click.echo(f"wrote {html}")


@main.command()
@_with(DATA_OPTIONS)
@click.option("--arms", "arms_text", default=",".join(ARM_KINDS), show_default=True,
              help=f"Comma-separated arm kinds to sweep, from: {', '.join(ARM_KINDS)}.")
@click.option("--epsilons", default=",".join(f"{e:g}" for e in DEFAULT_SWEEP_EPSILONS), show_default=True,
              help="Target epsilons of dp_sgd, comma-separated.")
@click.option("--budgets", default=",".join(f"{b:g}" for b in DEFAULT_SWEEP_BUDGETS), show_default=True,
              help="Dropout budgets of uniform_dropout (its rate) and group_dropout (the expected rate of "
                   "its solved per-group rates), comma-separated.")
@_with(AUDIT_OPTIONS)
@click.option("--backend", type=click.Choice(SWEEP_BACKEND_CHOICES), default=DEFAULT_SWEEP_BACKEND,
              show_default=True,
              help="local: point after point in this process; ray: points as tasks of a Ray cluster "
                   "(pip install 'fairpriv[ray]').")
@click.option("--address", default=None,
              help="With --backend ray: the cluster (auto, or HOST:PORT) [default: start a local one].")
@click.option("--workers", type=int, default=None,
              help="With --backend ray and no --address: points at once [default: one per CPU core].")
@click.option("--gpus-per-worker", type=float, default=0.0, show_default=True,
              help="With --backend ray: GPUs each point asks for (fractions share one).")
@click.option("--fresh", is_flag=True, help="Recompute every point, even those already in --out.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output directory: sweep.json, sweep.parquet, report.pdf/html, points/ (one "
                   "results.json per point; an interrupted sweep resumes from them).")
@click.option("--no-report", is_flag=True, help="Write sweep.json and sweep.parquet only.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(**opts: Any) -> None:
    """Audit every arm at every epsilon and dropout budget on the same splits; write OUT/sweep.json."""
    kinds = tuple(_split_list(opts["arms_text"]))
    arm_params = {"dp_sgd": {"max_grad_norm": opts["max_grad_norm"], "accountant": opts["accountant"]},
                  "group_dropout": {"objective": opts["objective"]}}
    config = SweepConfig(
        epsilons=parse_number_list(opts["epsilons"], "epsilons"),
        budgets=parse_number_list(opts["budgets"], "budgets"),
        arms=kinds, audit=_audit_config(opts, None),
        arm_params={k: v for k, v in arm_params.items() if k in kinds},
        backend=opts["backend"], address=opts["address"], workers=opts["workers"],
        gpus_per_worker=opts["gpus_per_worker"])
    dataset = _load(opts)
    out = Path(opts["out_dir"])
    result = run_sweep(dataset, config, out=out, resume=not opts["fresh"], show_progress=not opts["quiet"])
    click.echo(result.summary())
    if result.meta.get("points_reused"):
        click.echo(f"read back {len(result.meta['points_reused'])} finished point(s) from {out / 'points'}")
    click.echo(f"\nwrote {out / 'sweep.json'} and {out / 'sweep.parquet'}")
    if not opts["no_report"]:
        _write_sweep_reports(result, out / "report.pdf", out / "report.html")


def _write_sweep_reports(result: SweepResult, pdf: Path | None, html: Path | None) -> None:
    from reports import render_sweep_html, render_sweep_pdf

    if pdf is not None:
        click.echo(f"wrote {pdf} ({render_sweep_pdf(result, pdf)} pages)")
    if html is not None:
        render_sweep_html(result, html)
        click.echo(f"wrote {html}")


def _is_sweep(path: Path) -> bool:
    return (path / "sweep.json").exists() if path.is_dir() else path.name == "sweep.json"


@main.command()
@click.argument("results", type=click.Path(exists=True), metavar="RESULTS")
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False), default=None, help="PDF report path.")
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, help="HTML report path.")
def report(results: str, pdf: str | None, html: str | None) -> None:
    """Render RESULTS to PDF and/or HTML (default: both, beside it): a run's results.json, a
    sweep's sweep.json, or the folder holding either."""
    path = Path(results)
    folder = path if path.is_dir() else path.parent
    if pdf is None and html is None:
        pdf, html = str(folder / "report.pdf"), str(folder / "report.html")
    targets = (Path(pdf) if pdf else None, Path(html) if html else None)
    if _is_sweep(path):
        _write_sweep_reports(SweepResult.load(path), *targets)
        return
    result = AuditResult.from_json(folder / "results.json" if path.is_dir() else path)
    _write_reports(result, *targets)
    if result.dp_violations:
        click.echo(f"DP VIOLATION in {', '.join(result.dp_violations)} (shown on page 1).", err=True)
    if result.dp_violations:
        click.echo(f"DP VIOLATION in {', '.join(result.dp_violations)} (shown on page 1).", err=True)


def _minor_newer(version: str) -> bool:
    """Whether results ``version`` (already validated: MAJOR.MINOR) is newer than ours."""
    def pair(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))
    return pair(version) > pair(SCHEMA_VERSION)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True), metavar="FILE...")
def validate(files: tuple[str, ...]) -> None:
    """Check each results FILE (a results.json, or an output folder holding one) against
    fairpriv's results schema; exit status 1 if any does not conform.

    Prints "FILE: valid (schema 1.1)" for each good file and one "Error: FILE: ..." line,
    naming the first field at fault, for each bad one.
    """
    command = click.get_current_context().command
    failed = 0
    for name in files:
        # The path is checked by validate_results, not by click.Path(exists=True): a
        # missing file is reported like any other bad file, and the rest still checked.
        try:
            version = validate_results(name)
        except FairprivError as exc:
            failed += 1
            click.echo(f"Error: {name}: {cli_message(exc, command)}", err=True)
            continue
        note = (f"; newer than this fairpriv's {SCHEMA_VERSION}, so fields it does not know "
                "were not checked") if _minor_newer(version) else ""
        click.echo(f"{name}: valid (schema {version}{note})")
    if failed:
        # Exit status 1 like every other error; the messages are already printed.
        click.get_current_context().exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (Streamlit's --server.address); other than localhost, "
                   "anyone who can reach it can use the app.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True,
              help="Port to serve on (Streamlit's --server.port).")
@click.option("--headless/--no-headless", default=True, show_default=True,
              help="Headless: only serve; --no-headless also opens a browser on this machine.")
def app(host: str, port: int, headless: bool) -> None:
    """Launch the Streamlit app (upload data, audit, download the report).

    The command becomes the Streamlit server (same process), so stopping it with
    Ctrl-C or SIGTERM stops the server. The largest upload is FAIRPRIV_MAX_UPLOAD_MB
    megabytes (default 200).
    """
    import importlib.util
    import os
    from importlib.resources import files

    main_py = Path(str(files("fairpriv_app").joinpath("main.py")))
    if not main_py.exists():
        raise ConfigError(f"the app files are missing ({main_py}); reinstall fairpriv")
    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError("the app needs Streamlit, which is not installed: pip install streamlit")
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.address", host,
           "--server.port", str(port), "--server.headless", "true" if headless else "false",
           "--browser.gatherUsageStats", "false",
           # No "Deploy" button: this is a tool, not a Streamlit project to publish.
           "--client.toolbarMode", "minimal",
           "--server.maxUploadSize", os.environ.get("FAIRPRIV_MAX_UPLOAD_MB", "200")]
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach it can upload data and read "
                   "server-side files through the 'UCI Adult (a file on the server)' source.", err=True)
    click.echo(f"fairpriv app on http://{host}:{port}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the Streamlit server rather than wait on it as a child: a SIGTERM or Ctrl-C
    # sent to `fairpriv app` then reaches the server itself, and nothing is left serving
    # (tests/test_app_lifecycle.py).
    os.execv(sys.executable, cmd)


@main.command("audit-model")
@click.option("--predictions", default=None, type=click.Path(dir_okay=False),
              help="CSV/Parquet with one row per person: y_true, y_pred, optional y_score, "
                   "group column(s), optional member.")
@click.option("--onnx", "onnx_model", default=None, type=click.Path(dir_okay=False),
              help="Instead of --predictions: an ONNX classifier, run on --data.")
@click.option("--data", "data_path", default=None, type=click.Path(dir_okay=False),
              help="With --onnx: the labelled dataset (its target column is --y-true).")
@click.option("--sensitive", multiple=True, required=True, help="Sensitive column (repeatable).")
@click.option("--y-true", default=PredictionAuditOptions.y_true, show_default=True)
@click.option("--y-pred", default=PredictionAuditOptions.y_pred, show_default=True)
@click.option("--y-score", default=None, help="Score column (probability of the positive class).")
@click.option("--member", default=None, help="Membership column (1 = in the training data).")
@click.option("--positive-label", default=None)
@click.option("--bootstrap", "n_bootstrap", type=int, default=DEFAULT_N_BOOTSTRAP, show_default=True,
              help="Bootstrap resamples for the CIs of AUC and log-loss (rates need none).")
@click.option("--ci-level", type=float, default=DEFAULT_CI_LEVEL, show_default=True,
              help="Confidence level of every interval.")
@click.option("--simultaneous-ci", is_flag=True,
              help="Make each metric's intervals hold together across all groups (Bonferroni).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--no-report", is_flag=True, help="Write results.json only.")
def audit_model(**opts: Any) -> None:
    """Audit a model trained elsewhere from its predictions (no training)."""
    if opts["onnx_model"] is not None:
        if opts["data_path"] is None or opts["predictions"] is not None:
            raise ConfigError("--onnx needs --data (and no --predictions)")
        result = audit_onnx_model(
            opts["onnx_model"], opts["data_path"], target=opts["y_true"],
            sensitive=list(opts["sensitive"]), member=opts["member"],
            positive_label=opts["positive_label"], n_bootstrap=opts["n_bootstrap"],
            ci_level=opts["ci_level"], simultaneous_ci=opts["simultaneous_ci"])
    elif opts["predictions"] is not None:
        result = audit_predictions(
            opts["predictions"], sensitive=list(opts["sensitive"]), y_true=opts["y_true"],
            y_pred=opts["y_pred"], y_score=opts["y_score"], member=opts["member"],
            positive_label=opts["positive_label"], n_bootstrap=opts["n_bootstrap"],
            ci_level=opts["ci_level"], simultaneous_ci=opts["simultaneous_ci"])
    else:
        raise ConfigError("give --predictions FILE, or --onnx MODEL with --data FILE")
    out = Path(opts["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    result.to_json(out / "results.json")
    click.echo(result.summary())
    click.echo(f"\nwrote {out / 'results.json'}")
    if not opts["no_report"]:
        _write_reports(result, out / "report.pdf", out / "report.html")


@main.command("audit-bound")
@click.option("--canaries", "-m", type=int, required=True, help="Canaries m (each included w.p. 1/2).")
@click.option("--guesses", "-r", type=int, required=True, help="Guesses made (k+ + k-).")
@click.option("--correct", "-v", type=int, required=True, help="Correct guesses.")
@click.option("--delta", "-d", type=float, required=True)
@click.option("--confidence", type=float, default=DEFAULT_CONFIDENCE, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def audit_bound(canaries: int, guesses: int, correct: int, delta: float, confidence: float,
                as_json: bool) -> None:
    """One-run audit (Steinke, Nasr, Jagielski 2023): epsilon lower bound from guess counts."""
    import json

    bound = epsilon_lower_bound(canaries=canaries, guesses=guesses, correct=correct, delta=delta,
                                confidence=confidence)
    if as_json:
        click.echo(json.dumps({"epsilon_lower_bound": bound, "canaries": canaries,
                               "guesses": guesses, "correct": correct, "delta": delta,
                               "confidence": confidence}))
    else:
        click.echo(f"epsilon >= {bound:.4f} with {100 * confidence:g}% confidence "
                   f"({correct}/{guesses} correct guesses on {canaries} canaries, delta {delta:g})")


@main.command("solve-dropout")
@click.option("--dataset", required=True,
              help=f"Built-in name ({', '.join(BUILTIN_DATASETS)}) or a CSV/TSV/Parquet path.")
@click.option("--data-path", type=click.Path(dir_okay=False), default=None,
              help="For --dataset adult: the UCI file.")
@click.option("--target", default=None)
@click.option("--sensitive", multiple=True, help="Sensitive column (repeatable).")
@click.option("--positive-label", default=None)
@click.option("--budget", type=float, required=True, help="Expected dropout rate sum_g pi_g p_g.")
@click.option("--model", type=click.Choice(SOLVER_MODEL_CHOICES), default=DEFAULT_SOLVER_MODEL,
              show_default=True,
              help="linear: exact closed form on a regression target, a trained logistic model "
                   "otherwise; logistic: the logistic model's adaptive-regulariser closed form "
                   "(binary target); mlp: the MLP, trained.")
@click.option("--objective", type=click.Choice(OBJECTIVE_CHOICES), default=DEFAULT_OBJECTIVE,
              show_default=True)
@click.option("--p-max", type=float, default=SolveOptions.p_max, show_default=True)
@click.option("--seeds", type=int, default=SolveOptions.seeds, show_default=True,
              help="Training seeds (trained models): one per fold when cross-fitting (more folds "
                   "take the next seeds), else one model per seed.")
@click.option("--folds", type=int, default=SolveOptions.folds, show_default=True,
              help="Cross-fitting folds of the training and validation rows (trained models); 0 "
                   "scores models trained on the training rows on the validation rows.")
@click.option("--epochs", type=int, default=DEFAULT_EPOCHS, show_default=True)
@click.option("--hidden", default=_widths(DEFAULT_HIDDEN), show_default=True,
              help="MLP hidden widths (--model mlp).")
@click.option("--candidates", type=int, default=SolveOptions.n_candidates,
              show_default=True,
              help="Candidate rate vectors besides uniform (empirical route).")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default=DEFAULT_DEVICE, show_default=True)
@click.option("--rows", "n_rows", type=int, default=None, help="Rows of the synthetic datasets.")
@click.option("--small-groups", type=click.Choice(SMALL_GROUPS_CHOICES), default=DEFAULT_SMALL_GROUPS,
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")
def solve_dropout(**opts: Any) -> None:
    """Choose group dropout rates that equalise group error under one budget."""
    import json

    dataset = load_dataset(
        opts["dataset"], target=opts["target"], sensitive=list(opts["sensitive"]) or None,
        positive_label=opts["positive_label"], path=opts["data_path"], n_rows=opts["n_rows"],
    )
    groups = None
    if opts["small_groups"] == "merge":
        groups = split_dataset(dataset, small_groups="merge").groups
    solution = solve_group_dropout(
        dataset, budget=opts["budget"], model=opts["model"], objective=opts["objective"],
        p_max=opts["p_max"], seeds=opts["seeds"], groups=groups, device=opts["device"],
        n_candidates=opts["candidates"], folds=opts["folds"],
        training=TrainingConfig(hidden=parse_hidden_layers(opts["hidden"]), epochs=opts["epochs"]),
    )
    click.echo(solution.summary())
    if opts["as_json"]:
        click.echo(json.dumps(solution.to_dict(), allow_nan=False))


@main.command()
@click.option("--models", "-k", type=int, default=_default(run_trainer_benchmark, "models"),
              show_default=True, help="Models per side (K).")
@click.option("--device", type=click.Choice(DEVICE_CHOICES),
              default=_default(run_trainer_benchmark, "device"), show_default=True)
@click.option("--epochs", type=int, default=_default(run_trainer_benchmark, "epochs"), show_default=True)
@click.option("--hidden", default=_widths(_default(run_trainer_benchmark, "hidden")), show_default=True,
              help="MLP hidden widths.")
@click.option("--batch-size", type=int, default=_default(run_trainer_benchmark, "batch_size"),
              show_default=True)
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="UCI adult.data [default: ../shared/data/adult.data, else synthetic data].")
@click.option("--rows", "max_rows", type=int, default=None,
              help="Use only the first N training rows (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")
def bench(models: int, device: str, epochs: int, hidden: str, batch_size: int,
          data_path: str | None, max_rows: int | None, as_json: bool) -> None:
    """Time K models trained one by one with Opacus against the batched trainer."""
    import json

    if models < 1:
        raise ConfigError(f"--models must be at least 1, not {models}")
    result = run_trainer_benchmark(
        models=models, device=device, epochs=epochs,
        hidden=parse_hidden_layers(hidden), batch_size=batch_size,
        data_path=data_path, max_rows=max_rows)
    click.echo(result.table())
    if as_json:
        click.echo(json.dumps(result.to_dict()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
