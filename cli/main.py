"""The ``fairpriv`` command line.

Every command prints errors the user can act on as one line (``Error: ...``,
exit status 1) instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from audit import run_audit
from audit._exceptions import ConfigError, FairprivError
from audit.arms._arms import ARM_KINDS, Arm, BaselineArm, DPSGDArm, GroupDropoutArm, UniformDropoutArm
from audit.data._datasets import BUILTIN_DATASETS, load_dataset
from audit.data._readers import DEFAULT_NA_VALUES
from audit.pipeline._config import AuditConfig
from audit.privacy._accounting import (
    ACCOUNTANTS,
    GUARANTEE_ACCOUNTANTS,
    compute_epsilon,
    noise_multiplier_for_epsilon,
)
from audit.privacy._config import PrivacyAuditConfig
from audit.training._config import TrainingConfig
from audit.training._trainer import available_trainers

__all__ = ["main"]


class _FairprivGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FairprivError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_FairprivGroup)
@click.version_option(package_name="fairpriv", prog_name="fairpriv")
def main() -> None:
    """fairpriv: audit a tabular model for disparate error and privacy loss."""


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


def build_arms(
    kinds: Sequence[str], *, dropout: float, group_rates: dict[str, float] | None,
    max_grad_norm: float, accountant: str, dp_dropout: float | dict[str, float] | None = None,
    budget: float | None = None, objective: str = "equalize",
) -> tuple[Arm, ...]:
    """The arms named on the command line, in the order given."""
    arms: list[Arm] = []
    for kind in kinds:
        if kind == "baseline":
            arms.append(BaselineArm())
        elif kind == "uniform_dropout":
            arms.append(UniformDropoutArm(p=dropout))
        elif kind == "group_dropout":
            if group_rates:
                arms.append(GroupDropoutArm(rates=group_rates))
            else:
                arms.append(GroupDropoutArm(rates="auto", budget=budget if budget is not None
                                            else dropout, objective=objective))
        elif kind == "dp_sgd":
            arms.append(DPSGDArm(max_grad_norm=max_grad_norm, accountant=accountant,
                                 dropout=dp_dropout))
        else:
            raise ConfigError(f"unknown arm {kind!r}; valid arms: {', '.join(ARM_KINDS)}")
    return tuple(arms)


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"64,32"`` -> ``(64, 32)``; empty -> ``()`` (a linear model)."""
    try:
        widths = tuple(int(h) for h in _split_list(text))
    except ValueError:
        raise ConfigError(
            f"--hidden must be comma-separated positive integers (e.g. 64,32; empty for a "
            f"linear model), not {text!r}") from None
    if any(w < 1 for w in widths):
        raise ConfigError(f"--hidden widths must be positive, not {text!r}")
    return widths


@main.command()
@click.option("--dataset", required=True,
              help=f"Built-in name ({', '.join(BUILTIN_DATASETS)}) or a CSV/TSV/Parquet path.")
@click.option("--data-path", type=click.Path(dir_okay=False), default=None,
              help="For --dataset adult: the UCI adult.data / adult.test file.")
@click.option("--target", default=None, help="Target column (binary).")
@click.option("--sensitive", multiple=True,
              help="Sensitive column; repeat for intersectional groups (--sensitive sex --sensitive race).")
@click.option("--positive-label", default=None,
              help="Target value that counts as positive (default: 1/True, else the rarer value).")
@click.option("--arms", "arms_text", default="baseline,uniform_dropout,group_dropout,dp_sgd",
              show_default=True,
              help=f"Comma-separated arms from: {', '.join(ARM_KINDS)}.")
@click.option("--dropout", type=float, default=0.5, show_default=True,
              help="Rate p of the uniform_dropout arm.")
@click.option("--group-rates", default=None,
              help="Explicit rates of the group_dropout arm, e.g. Female=0.5,Male=0.2 "
                   "[default: solved on validation rows at --budget].")
@click.option("--budget", type=float, default=None,
              help="Group-dropout budget sum_g pi_g p_g [default: --dropout].")
@click.option("--objective", type=click.Choice(["equalize", "minimax"]), default="equalize",
              show_default=True, help="What the group-dropout solver minimises.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Training seeds per arm.")
@click.option("--epsilon", type=float, default=3.0, show_default=True, help="Target epsilon of dp_sgd.")
@click.option("--delta", type=float, default=None,
              help="Target delta of dp_sgd [default: min(1e-5, 1/(10 n_train))].")
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True,
              help="DP-SGD per-row clipping norm C.")
@click.option("--accountant", type=click.Choice(GUARANTEE_ACCOUNTANTS), default="prv", show_default=True)
@click.option("--dp-dropout", default=None,
              help="Dropout inside the dp_sgd arm: a rate (0.2) or rates per group (A=0.3,B=0.1).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=0.005, show_default=True, help="Adam learning rate.")
@click.option("--hidden", default="64", show_default=True,
              help="Hidden layer widths, e.g. 64,64; empty string for a linear model.")
@click.option("--trainer", type=click.Choice(["auto", *available_trainers()]), default="auto",
              show_default=True,
              help="batched: all models at once (auto picks it); reference: one at a time via Opacus.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--bootstrap", "n_bootstrap", type=int, default=1000, show_default=True,
              help="Bootstrap resamples of the test rows for CIs (0: none).")
@click.option("--min-group-rows", type=int, default=20, show_default=True,
              help="Minimum rows per group in every split.")
@click.option("--small-groups", type=click.Choice(["error", "merge"]), default="error",
              show_default=True, help="Groups below the minimum: fail, or merge into 'other'.")
@click.option("--missing-target", type=click.Choice(["drop", "error"]), default="drop",
              show_default=True, help="Rows with a missing target/sensitive value.")
@click.option("--na-values", default=",".join(DEFAULT_NA_VALUES), show_default=True,
              help="Comma-separated cell values read as missing.")
@click.option("--encoding", default=None, help="Text encoding of the data file (default UTF-8).")
@click.option("--rows", "n_rows", type=int, default=None, help="Rows of the synthetic datasets.")
@click.option("--mia", type=click.Choice(["loss", "lira", "none"]), default="loss", show_default=True,
              help="Membership inference: loss-threshold attack; lira adds LiRA (shadow models, heavy).")
@click.option("--shadows", type=int, default=16, show_default=True, help="LiRA shadow models per arm.")
@click.option("--canaries", type=int, default=1000, show_default=True,
              help="Canaries for the one-run epsilon lower bound (0: skip it).")
@click.option("--canary-kind", type=click.Choice(["flipped", "natural"]), default="flipped",
              show_default=True)
@click.option("--canary-rows", type=click.Choice(["isolated", "random"]), default="isolated",
              show_default=True, help="Which test rows become canaries.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output directory for results.json, report.pdf and report.html.")
@click.option("--no-report", is_flag=True, help="Write results.json only.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
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
                      objective=opts["objective"])
    hidden = parse_hidden(opts["hidden"])
    config = AuditConfig(
        arms=arms, seeds=opts["seeds"], epsilon=opts["epsilon"], delta=opts["delta"],
        training=TrainingConfig(hidden=hidden, epochs=opts["epochs"],
                                batch_size=opts["batch_size"], lr=opts["lr"]),
        trainer=opts["trainer"], device=opts["device"], n_bootstrap=opts["n_bootstrap"],
        min_group_rows=opts["min_group_rows"], small_groups=opts["small_groups"],
        privacy_audit=PrivacyAuditConfig(mia=opts["mia"], shadows=opts["shadows"],
                                         canaries=opts["canaries"], canary_kind=opts["canary_kind"],
                                         canary_rows=opts["canary_rows"]),
    )
    na_values = tuple(v for v in opts["na_values"].split(","))
    dataset = load_dataset(
        opts["dataset"], target=opts["target"], sensitive=list(opts["sensitive"]) or None,
        positive_label=opts["positive_label"], path=opts["data_path"], na_values=na_values,
        encoding=opts["encoding"], missing_target=opts["missing_target"], n_rows=opts["n_rows"],
    )
    for note in dataset.notes:
        click.echo(f"note: {note}", err=True)
    result = run_audit(dataset, config, show_progress=not opts["quiet"])
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




@main.command()
@click.option("--sample-rate", "-q", type=float, required=True, help="Poisson sampling rate q.")
@click.option("--noise-multiplier", "-s", type=float, default=None, help="sigma (noise std / C).")
@click.option("--target-epsilon", type=float, default=None,
              help="Instead of --noise-multiplier: print the sigma that reaches this epsilon.")
@click.option("--steps", "-t", type=int, required=True, help="Number of DP-SGD steps.")
@click.option("--delta", "-d", type=float, required=True)
@click.option("--accountant", type=click.Choice(ACCOUNTANTS), default="prv", show_default=True,
              help="gdp is an approximation that can under-report epsilon.")
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
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False), default=None, help="PDF report path.")
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, help="HTML report path.")
def report(results: str, pdf: str | None, html: str | None) -> None:
    """Render RESULTS (a results.json) to PDF and/or HTML (default: both, beside it)."""
    from audit import AuditResult

    result = AuditResult.from_json(Path(results))
    if pdf is None and html is None:
        base = Path(results).with_suffix("")
        pdf, html = str(base.with_name("report.pdf")), str(base.with_name("report.html"))
    _write_reports(result, Path(pdf) if pdf else None, Path(html) if html else None)
    if result.dp_violations:
        click.echo(f"DP VIOLATION in {', '.join(result.dp_violations)} (shown on page 1).", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8501, show_default=True)
def app(host: str, port: int) -> None:
    """Launch the Streamlit app (upload data, audit, download the report)."""
    import os
    import subprocess
    from importlib.resources import files

    main_py = Path(str(files("fairpriv_app").joinpath("main.py")))
    if not main_py.exists():
        raise ConfigError(f"the app files are missing ({main_py}); reinstall fairpriv")
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.address", host,
           "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false",
           "--server.maxUploadSize", os.environ.get("FAIRPRIV_MAX_UPLOAD_MB", "200")]
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach it can upload data and read "
                   "server-side files through the 'adult (from a path)' source.", err=True)
    click.echo(f"fairpriv app on http://{host}:{port}")
    raise SystemExit(subprocess.call(cmd))


@main.command("audit-model")
@click.option("--predictions", default=None, type=click.Path(dir_okay=False),
              help="CSV/Parquet with one row per person: y_true, y_pred, optional y_score, "
                   "group column(s), optional member.")
@click.option("--onnx", "onnx_model", default=None, type=click.Path(dir_okay=False),
              help="Instead of --predictions: an ONNX classifier, run on --data.")
@click.option("--data", "data_path", default=None, type=click.Path(dir_okay=False),
              help="With --onnx: the labelled dataset (its target column is --y-true).")
@click.option("--sensitive", multiple=True, required=True, help="Sensitive column (repeatable).")
@click.option("--y-true", default="y_true", show_default=True)
@click.option("--y-pred", default="y_pred", show_default=True)
@click.option("--y-score", default=None, help="Score column (probability of the positive class).")
@click.option("--member", default=None, help="Membership column (1 = in the training data).")
@click.option("--positive-label", default=None)
@click.option("--bootstrap", "n_bootstrap", type=int, default=1000, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--no-report", is_flag=True, help="Write results.json only.")
def audit_model(**opts: Any) -> None:
    """Audit a model trained elsewhere from its predictions (no training)."""
    from audit.pipeline._external import audit_onnx_model, audit_predictions

    if opts["onnx_model"] is not None:
        if opts["data_path"] is None or opts["predictions"] is not None:
            raise ConfigError("--onnx needs --data (and no --predictions)")
        result = audit_onnx_model(
            opts["onnx_model"], opts["data_path"], target=opts["y_true"],
            sensitive=list(opts["sensitive"]), member=opts["member"],
            positive_label=opts["positive_label"], n_bootstrap=opts["n_bootstrap"])
    elif opts["predictions"] is not None:
        result = audit_predictions(
            opts["predictions"], sensitive=list(opts["sensitive"]), y_true=opts["y_true"],
            y_pred=opts["y_pred"], y_score=opts["y_score"], member=opts["member"],
            positive_label=opts["positive_label"], n_bootstrap=opts["n_bootstrap"])
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
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def audit_bound(canaries: int, guesses: int, correct: int, delta: float, confidence: float,
                as_json: bool) -> None:
    """One-run audit (Steinke, Nasr, Jagielski 2023): epsilon lower bound from guess counts."""
    import json

    from audit.privacy._audit_bound import epsilon_lower_bound

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
@click.option("--model", type=click.Choice(["linear", "mlp"]), default="linear", show_default=True,
              help="linear: exact closed form on a regression target, logistic otherwise.")
@click.option("--objective", type=click.Choice(["equalize", "minimax"]), default="equalize",
              show_default=True)
@click.option("--p-max", type=float, default=0.9, show_default=True)
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds per candidate (empirical).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--hidden", default="64", show_default=True, help="MLP hidden widths (--model mlp).")
@click.option("--candidates", type=int, default=9, show_default=True,
              help="Candidate rate vectors besides uniform (empirical route).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--rows", "n_rows", type=int, default=None, help="Rows of the synthetic datasets.")
@click.option("--small-groups", type=click.Choice(["error", "merge"]), default="error", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")
def solve_dropout(**opts: Any) -> None:
    """Choose group dropout rates that equalise group error under one budget."""
    import json

    from audit.solver._solver import solve_group_dropout

    dataset = load_dataset(
        opts["dataset"], target=opts["target"], sensitive=list(opts["sensitive"]) or None,
        positive_label=opts["positive_label"], path=opts["data_path"], n_rows=opts["n_rows"],
    )
    groups = None
    if opts["small_groups"] == "merge":
        from audit.data._datasets import split_dataset

        groups = split_dataset(dataset, small_groups="merge").groups
    solution = solve_group_dropout(
        dataset, budget=opts["budget"], model=opts["model"], objective=opts["objective"],
        p_max=opts["p_max"], seeds=opts["seeds"], groups=groups, device=opts["device"],
        n_candidates=opts["candidates"],
        training=TrainingConfig(hidden=parse_hidden(opts["hidden"]), epochs=opts["epochs"]),
    )
    click.echo(solution.summary())
    if opts["as_json"]:
        click.echo(json.dumps(solution.to_dict(), allow_nan=False))


@main.command()
@click.option("--models", "-k", type=int, default=8, show_default=True, help="Models per side (K).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--hidden", default="256,256", show_default=True, help="MLP hidden widths.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="UCI adult.data [default: ../shared/data/adult.data, else synthetic data].")
@click.option("--rows", "max_rows", type=int, default=None,
              help="Use only the first N training rows (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")
def bench(models: int, device: str, epochs: int, hidden: str, batch_size: int,
          data_path: str | None, max_rows: int | None, as_json: bool) -> None:
    """Time K models trained one by one with Opacus against the batched trainer."""
    import json

    from audit.training._bench import run_trainer_benchmark

    if models < 1:
        raise ConfigError(f"--models must be at least 1, not {models}")
    result = run_trainer_benchmark(
        models=models, device=device, epochs=epochs,
        hidden=parse_hidden(hidden), batch_size=batch_size,
        data_path=data_path, max_rows=max_rows)
    click.echo(result.table())
    if as_json:
        click.echo(json.dumps(result.to_dict()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
