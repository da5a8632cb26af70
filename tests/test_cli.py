from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main, parse_dp_dropout, parse_group_rates

from audit import CANARY_AUDITS, AuditResult, ConfigError

# Reports are rendered and checked by tests/test_reports.py; here only results.json matters.
FAST = ["--epochs", "1", "--hidden", "8", "--bootstrap", "20", "--quiet", "--no-report"]


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_all_four_arms_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke("run", "--dataset", "synthetic", "--rows", "1200", "--seeds", "2",
                 "--arms", "baseline,uniform_dropout,group_dropout,dp_sgd",
                 "--group-rates", "majority=0.6,minority=0.1", "--epsilon", "2",
                 "--out", str(out), *FAST)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert [a["kind"] for a in data["arms"]] == ["baseline", "uniform_dropout", "group_dropout", "dp_sgd"]
    eps = {a["kind"]: a["privacy"]["epsilon"] for a in data["arms"]}
    assert eps["baseline"] is None and eps["uniform_dropout"] is None and eps["group_dropout"] is None
    assert 0 < eps["dp_sgd"] <= 2
    assert data["arms"][2]["params"] == {"rates": {"majority": 0.6, "minority": 0.1},
                                         "budget": None, "objective": "equalize"}
    assert data["arms"][2]["solver"] is None  # explicit rates: nothing solved
    # the summary table lists every arm with per-group errors and epsilon
    assert "error[majority]" in res.output and "error[minority]" in res.output
    assert f"{eps['dp_sgd']:.2f}" in res.output
    # the eps lower bound column names the audit that gave the largest bound; the notes
    # list each canary audit once, with what it observes
    lines = res.output.splitlines()
    dp_row = next(line for line in lines if line.startswith("dp_sgd "))
    best = max(data["arms"][3]["privacy"]["empirical"]["by_audit"].items(),
               key=lambda kv: kv[1]["epsilon_lower_bound"])
    if best[1]["epsilon_lower_bound"] > 0:
        assert f"{best[1]['epsilon_lower_bound']:.2f} ({CANARY_AUDITS[best[0]].label})" in dp_row
    ran = {e["audit"] for a in data["arms"] for e in a["privacy"]["empirical"]["per_seed"]}
    assert {"black_box", "white_box_gradient"} <= ran  # too few test rows left for crafted rows
    for audit in ran:
        info = CANARY_AUDITS[audit]
        notes = [line for line in lines if line.startswith(f"  {info.label} (")]
        assert len(notes) == 1 and info.observes in notes[0], notes


def test_csv_with_intersectional_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({
        "x": rng.normal(size=n), "job": rng.choice(["a", "b"], n),
        "sex": rng.choice(["F", "M"], n), "race": rng.choice(["B", "W"], n),
        "label": rng.choice(["no", "yes"], n, p=[0.6, 0.4]),
    })
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    res = invoke("run", "--dataset", str(path), "--target", "label", "--sensitive", "sex",
                 "--sensitive", "race", "--arms", "baseline", "--seeds", "1",
                 "--positive-label", "yes", "--out", str(tmp_path / "o"), *FAST)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert set(data["dataset"]["groups"]) == {"F|B", "F|W", "M|B", "M|W"}
    assert data["dataset"]["positive_label"] == "yes"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arms", "baseline,dropout"], "unknown arm 'dropout'; valid arms: baseline, uniform_dropout"),
        (["--arms", "group_dropout", "--budget", "0.97"],
         r"Error: --budget must be a number in \[0, 0.95\], not 0.97"),
        (["--arms", "group_dropout", "--group-rates", "A=0.1,B=0.2"],
         r"no rate for group\(s\) \['majority', 'minority'\]"),
        (["--arms", "uniform_dropout", "--dropout", "1.5"],
         r"Error: --dropout must be a number in \[0, 0.95\], not 1.5"),
        (["--epochs", "0"], r"Error: --epochs must be an integer >= 1, not 0"),
        (["--mia", "lira", "--shadows", "1"], r"LiRA needs at least 2 shadow models, not 1 \(--shadows\)"),
        (["--min-group-rows", "500"],
         r"fewer than 500 rows in a split.*Merge them \(--small-groups merge\), lower --min-group-rows"),
        (["--arms", "dp_sgd", "--dp-dropout", "a=0.1"],
         r"unknown group\(s\) \['a'\].*\(e\.g\. --dp-dropout majority=0\.3,minority=0\.3\)"),
        (["--target", "nope"], "target column 'nope' not found"),
        (["--missing-rates", "Female=0.3,Male=0.1"],
         r"unknown group\(s\) \['Female', 'Male'\].*majority=0\.2,minority=0\.2.*\(--missing-rates\)"),
        (["--missing-rates", "minority"], r"'group=rate,\.\.\.' or one number.*\(--missing-rates\)"),
        (["--missing-rates", "2"], r"must be a number in \[0, 0\.95\], not 2\.0.*\(--missing-rates\)"),
        (["--missing-grid", "0,x"], r"--missing-grid must be comma-separated numbers"),
        (["--missing-grid", "0"], r"p_test \(0\) hold no rate above 0.*\(--missing-grid\)"),
        (["--missing-grid", "0.2,1.5"], r"p_test: 1\.5 is not a rate; each must be a number from 0 to 0\.95 \(--missing-grid\)"),
        (["--missing-rates", '{"a, b": 0.2'], r"not valid JSON.*\(--missing-rates\)"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["run", "--dataset", "synthetic", "--rows", "800",
                                    "--out", str(tmp_path), *FAST, *args])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "Error:" in res.output
    import re

    assert re.search(message, res.output), res.output


def test_missing_rates_turn_the_measurement_on(tmp_path: Path) -> None:
    res = invoke("run", "--dataset", "synthetic", "--rows", "1200", "--seeds", "1", "--arms", "baseline",
                 "--out", str(tmp_path), *FAST, "--missing-rates", "minority=0.3,majority=0.1",
                 "--missing-train-grid", "0,0.3", "--missing-draws", "1")
    assert res.exit_code == 0, res.output
    assert "Missing features at test time" in res.output
    result = AuditResult.from_json(tmp_path / "results.json")
    # The default grid is on when --missing-rates is given.
    assert sorted(result.missing_setup["grid"]) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert set(result.missing_match["p_train"]) == {0.0, 0.3}


def test_missing_grid_alone_measures_without_group_rates(tmp_path: Path) -> None:
    res = invoke("run", "--dataset", "synthetic", "--rows", "1200", "--seeds", "1", "--arms", "baseline",
                 "--out", str(tmp_path), *FAST, "--missing-grid", "0.2,0.4", "--missing-train-grid", "",
                 "--missing-draws", "1")
    assert res.exit_code == 0, res.output
    assert "as features go missing (p_test 0 to 0.4)" in res.output
    result = AuditResult.from_json(tmp_path / "results.json")
    assert sorted(result.missing["p_test"].unique()) == [0.0, 0.2, 0.4]
    assert result.missing_scenario().empty and result.missing_match.empty


def test_missing_options_without_the_measurement_are_refused(tmp_path: Path) -> None:
    res = invoke("run", "--dataset", "synthetic", "--rows", "800", "--out", str(tmp_path), *FAST,
                 "--missing-train-grid", "0,0.3")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--missing-train-grid only applies with --missing-rates or --missing-grid" in res.output


def test_missing_file_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--dataset", str(tmp_path / "x.csv"), "--target", "y",
                                    "--sensitive", "g", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "data file not found" in res.output


def test_parse_group_rates() -> None:
    assert parse_group_rates("Female=0.5, Male=0.2") == {"Female": 0.5, "Male": 0.2}
    assert parse_group_rates("Female|Black=0.4,a=b=0.1") == {"Female|Black": 0.4, "a=b": 0.1}
    with pytest.raises(ConfigError, match="write GROUP=RATE pairs"):
        parse_group_rates("Female:0.5")
    with pytest.raises(ConfigError, match="rate for group 'Male' is not a number: 'x'"):
        parse_group_rates("Male=x")


def test_help_lists_options() -> None:
    res = invoke("run", "--help")
    assert res.exit_code == 0
    for opt in ("--dataset", "--target", "--sensitive", "--arms", "--seeds", "--epsilon",
                "--delta", "--device", "--out", "--group-rates", "--positive-label"):
        assert opt in res.output


def test_dp_dropout_option(tmp_path: Path) -> None:
    assert parse_dp_dropout(None) is None
    assert parse_dp_dropout("0.2") == 0.2
    assert parse_dp_dropout("majority=0.3,minority=0.1") == {"majority": 0.3, "minority": 0.1}
    with pytest.raises(ConfigError, match="--dp-dropout must be a rate"):
        parse_dp_dropout("lots")
    res = invoke("run", "--dataset", "synthetic", "--rows", "800", "--seeds", "1", "--arms", "dp_sgd",
                 "--dp-dropout", "majority=0.3,minority=0.1", "--out", str(tmp_path), *FAST)
    assert res.exit_code == 0, res.output
    arm = json.loads((tmp_path / "results.json").read_text())["arms"][0]
    assert arm["params"]["dropout"] == {"majority": 0.3, "minority": 0.1}
    assert arm["privacy"]["epsilon"] > 0


def test_run_with_solved_group_rates(tmp_path: Path) -> None:
    res = invoke("run", "--dataset", "synthetic", "--rows", "1500", "--seeds", "2",
                 "--arms", "uniform_dropout,group_dropout", "--dropout", "0.4",
                 "--out", str(tmp_path), *FAST)
    assert res.exit_code == 0, res.output
    arm = json.loads((tmp_path / "results.json").read_text())["arms"][1]
    assert arm["params"]["rates"] == "auto"
    assert arm["solver"]["budget"] == 0.4
    assert "group_dropout: solved rates majority=" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--hidden", "a"], "--hidden must be comma-separated positive integers"),
     (["--arms", "baseline,baseline"], r"--arms lists \['baseline'\] more than once"),
     (["--arms", "dp_sgd", "--delta", "0.5"], r"delta 0.5 is not below 1/n_train")],
)
def test_more_option_errors(tmp_path: Path, args: list[str], message: str) -> None:
    import re

    res = CliRunner().invoke(main, ["run", "--dataset", "synthetic", "--rows", "800",
                                    "--out", str(tmp_path), *FAST, *args])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert re.search(message, res.output), res.output


def test_epsilon_command_matches_reference_and_round_trips() -> None:
    res = invoke("epsilon", "-q", "0.04", "-s", "1.5", "-t", "2250", "-d", "1e-5",
                 "--accountant", "rdp", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["epsilon"] == pytest.approx(7.32911117143, rel=1e-6)  # Opacus' RDP test value
    back = invoke("epsilon", "-q", "0.04", "--target-epsilon", "7.32911117143", "-t", "2250",
                  "-d", "1e-5", "--accountant", "rdp", "--json")
    sigma = json.loads(back.output)["noise_multiplier"]
    assert sigma == pytest.approx(1.5, abs=0.01)
    bad = CliRunner().invoke(main, ["epsilon", "-q", "0.04", "-t", "10", "-d", "1e-5"])
    assert bad.exit_code == 1 and "exactly one of --noise-multiplier and --target-epsilon" in bad.output


# --- engine errors: Python parameters in the engine, flags on the command line


def _cli_error(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    return res.output


def _flags(text: str) -> list[str]:
    import re

    return re.findall(r"(?<![\w-])--[a-z][a-z-]*", text)


def test_small_groups_error_names_parameters_in_python_and_flags_in_the_cli(tmp_path: Path) -> None:
    from audit import DataError, load_dataset, split_dataset

    with pytest.raises(DataError) as info:
        split_dataset(load_dataset("synthetic", n_rows=800), min_group_rows=500)
    message = str(info.value)
    assert "small_groups='merge'" in message and "lower min_group_rows" in message
    assert _flags(message) == []
    assert info.value.param == "small_groups" and info.value.fix == {"small_groups": "merge"}

    output = _cli_error("run", "--dataset", "synthetic", "--rows", "800", "--min-group-rows", "500",
                        "--out", str(tmp_path), *FAST)
    assert "Merge them (--small-groups merge), lower --min-group-rows" in output
    assert "small_groups" not in output and "min_group_rows" not in output


def test_missing_target_and_sensitive_name_the_flags(tmp_path: Path) -> None:
    from audit import DataError, load_dataset

    path = tmp_path / "d.csv"
    pd.DataFrame({"x": range(40), "g": ["a", "b"] * 20, "y": [0, 1] * 20}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"pass target= with one of its columns: x, g, y") as info:
        load_dataset(path)
    assert info.value.param == "target" and _flags(str(info.value)) == []
    assert "pass --target with one of its columns: x, g, y" in _cli_error(
        "run", "--dataset", str(path), "--out", str(tmp_path))
    with pytest.raises(DataError, match="pass sensitive= with one or more") as info:
        load_dataset(path, target="y")
    assert _flags(str(info.value)) == []
    assert "pass --sensitive with one or more" in _cli_error(
        "run", "--dataset", str(path), "--target", "y", "--out", str(tmp_path))
    # The same error from audit-model, whose target option is --y-true.
    assert "target column 'nope' not found" in _cli_error(
        "audit-model", "--predictions", str(path), "--y-true", "nope", "--sensitive", "g",
        "--out", str(tmp_path)).replace("\n", " ")
    assert "--y-pred column 'nope' not found" in _cli_error(
        "audit-model", "--predictions", str(path), "--y-true", "y", "--y-pred", "nope",
        "--sensitive", "g", "--out", str(tmp_path))


def test_encoding_error_suggests_the_encoding_flag(tmp_path: Path) -> None:
    from audit import DataFileError, load_dataset

    path = tmp_path / "latin.csv"
    path.write_bytes("x,g,y\n1,caf\xe9,0\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"\(e\.g\. encoding='latin-1'\)") as info:
        load_dataset(path, target="y", sensitive="g")
    assert info.value.fix == {"encoding": "latin-1"} and _flags(str(info.value)) == []
    assert "(e.g. --encoding latin-1)" in _cli_error(
        "run", "--dataset", str(path), "--target", "y", "--sensitive", "g", "--out", str(tmp_path))


def test_adult_offline_names_data_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from audit import DataError, load_dataset
    from audit.data import _datasets

    monkeypatch.setattr(_datasets, "_online", lambda host, timeout=2.0: False)
    with pytest.raises(DataError, match=r"offline.*as path=") as info:
        load_dataset("adult")
    assert _flags(str(info.value)) == []
    output = _cli_error("run", "--dataset", "adult", "--out", str(tmp_path))
    assert "as --data-path (or load it as a table of your own with --target and --sensitive)" in output


def test_cli_message_rewrites_only_the_commands_own_options() -> None:
    from fairpriv_cli.main import cli_message

    from audit import DataError, TrainingConfig

    run_cmd, solve_cmd = main.commands["run"], main.commands["solve-dropout"]
    with pytest.raises(ConfigError) as info:
        TrainingConfig(batch_size=0)
    assert str(info.value) == "TrainingConfig batch_size must be an integer >= 1, not 0"
    assert cli_message(info.value, run_cmd) == "--batch-size must be an integer >= 1, not 0"
    # solve-dropout has no --batch-size: the message stays in Python terms.
    assert cli_message(info.value, solve_cmd) == str(info.value)
    assert cli_message(info.value, None) == str(info.value)
    # Column names listed in a message are not parameters.
    listed = DataError("sensitive column 'z' not found. Available columns: y_true, na_values, g",
                       param="sensitive")
    assert cli_message(listed, main.commands["audit-model"]).startswith(
        "sensitive column 'z' not found. Available columns: y_true, na_values, g")


def _option(command: str, name: str) -> Any:
    return next(p for p in main.commands[command].params if p.name == name)


def test_run_defaults_and_choices_are_the_engines() -> None:

    from audit import (
        AuditConfig,
        DPSGDArm,
        GroupDropoutArm,
        LoadOptions,
        PrivacyAuditConfig,
        TrainingConfig,
        UniformDropoutArm,
        parse_hidden_layers,
    )
    from audit import defaults as d

    audit_cfg, training, privacy = AuditConfig(), TrainingConfig(), PrivacyAuditConfig()
    expected = {
        "dropout": UniformDropoutArm().p, "objective": GroupDropoutArm().objective,
        "seeds": len(audit_cfg.seeds), "epsilon": audit_cfg.epsilon,
        "max_grad_norm": DPSGDArm().max_grad_norm, "accountant": DPSGDArm().accountant,
        "epochs": training.epochs, "batch_size": training.batch_size, "lr": training.lr,
        "trainer": audit_cfg.trainer, "device": audit_cfg.device, "n_bootstrap": audit_cfg.n_bootstrap,
        "min_group_rows": audit_cfg.min_group_rows, "small_groups": audit_cfg.small_groups,
        "missing_target": LoadOptions.missing_target,
        "mia": privacy.mia, "shadows": privacy.shadows, "canaries": privacy.canaries,
        "canary_kind": privacy.canary_kind, "canary_rows": privacy.canary_rows,
    }
    for name, value in expected.items():
        assert _option("run", name).default == value, name
    assert parse_hidden_layers(_option("run", "hidden").default) == training.hidden
    assert tuple(_option("run", "na_values").default.split(",")) == d.DEFAULT_NA_VALUES
    assert tuple(_option("run", "arms_text").default.split(",")) == tuple(a.kind for a in audit_cfg.arms)
    choices = {"objective": d.OBJECTIVE_CHOICES, "accountant": d.GUARANTEE_ACCOUNTANT_CHOICES,
               "device": d.DEVICE_CHOICES, "small_groups": d.SMALL_GROUPS_CHOICES,
               "missing_target": d.MISSING_TARGET_CHOICES, "mia": d.MIA_CHOICES,
               "canary_kind": d.CANARY_KIND_CHOICES, "canary_rows": d.CANARY_ROWS_CHOICES}
    for name, values in choices.items():
        assert tuple(_option("run", name).type.choices) == values, name
    assert tuple(_option("epsilon", "accountant").type.choices) == d.ACCOUNTANT_CHOICES
    assert tuple(_option("solve-dropout", "model").type.choices) == d.SOLVER_MODEL_CHOICES


def test_cli_imports_only_the_public_api() -> None:
    import ast
    import importlib

    cli = importlib.import_module("fairpriv_cli.main")  # the package's `main` is the command
    tree = ast.parse(Path(str(cli.__file__)).read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    engine = sorted(m for m in modules if m and m.split(".")[0] == "audit")
    assert engine == ["audit", "audit.defaults"]


def test_build_arms_uses_the_registry() -> None:
    from fairpriv_cli.main import build_arms

    from audit import DPSGDArm, GroupDropoutArm, UniformDropoutArm

    arms = build_arms(["dp_sgd", "uniform_dropout", "group_dropout", "baseline"], dropout=0.3,
                      group_rates=None, max_grad_norm=2.0, accountant="rdp", dp_dropout=0.1)
    assert arms[0] == DPSGDArm(max_grad_norm=2.0, accountant="rdp", dropout=0.1)
    assert arms[1] == UniformDropoutArm(p=0.3)
    assert arms[2] == GroupDropoutArm(rates="auto", budget=0.3)
    assert [a.kind for a in arms] == ["dp_sgd", "uniform_dropout", "group_dropout", "baseline"]
    with pytest.raises(ConfigError, match=r"unknown arm 'nope'; valid arms: baseline, ") as info:
        build_arms(["nope"], dropout=0.3, group_rates=None, max_grad_norm=1.0, accountant="prv")
    assert info.value.param == "kind"


def test_notes_and_messages_without_hints_are_shown_with_flags() -> None:
    from fairpriv_cli.main import cli_message, option_flags, to_flags

    from audit import ConfigError, load_dataset

    note = "positive class of 'y' is 'yes' (default: the less frequent value; set positive_label to change)"
    assert to_flags(note, option_flags(main.commands["run"])) == note.replace(
        "positive_label", "--positive-label")
    frame = pd.DataFrame({"x": range(40), "g": ["a", "b"] * 20, "y": ["no", "no", "no", "yes"] * 10})
    assert "set positive_label to change" in " ".join(load_dataset(frame, target="y", sensitive="g").notes)
    # No param hint: the leading "<param> must" still names the flag.
    bare = ConfigError("noise_multiplier must be a positive finite number, not 0.0")
    assert cli_message(bare, main.commands["epsilon"]) == \
        "--noise-multiplier must be a positive finite number, not 0.0"


def test_app_execs_streamlit_with_the_options_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    # `fairpriv app` replaces itself with Streamlit (os.execv), so that a SIGTERM reaches the
    # server (tests/test_app_lifecycle.py runs it for real); here the exec is only recorded.
    import os

    calls: list[tuple[str, list[str]]] = []

    def execv(path: str, args: list[str]) -> None:
        calls.append((path, args))

    monkeypatch.setattr(os, "execv", execv)
    res = CliRunner().invoke(main, ["app", "--host", "0.0.0.0", "--port", "8600", "--no-headless"])
    assert res.exit_code == 0, res.output
    assert "fairpriv app on http://0.0.0.0:8600" in res.output and "warning: serving on 0.0.0.0" in res.output
    (path, args), = calls
    assert args[1:4] == ["-m", "streamlit", "run"] and path == args[0]
    flags = dict(zip(args[5::2], args[6::2], strict=True))
    assert flags["--server.address"] == "0.0.0.0" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "false" and flags["--browser.gatherUsageStats"] == "false"
    calls.clear()
    assert CliRunner().invoke(main, ["app"]).exit_code == 0
    defaults = dict(zip(calls[0][1][5::2], calls[0][1][6::2], strict=True))
    assert defaults["--server.headless"] == "true" and defaults["--server.address"] == "127.0.0.1"


def test_app_help_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import os

    res = invoke("app", "--help")
    for opt in ("--host", "--port", "--headless / --no-headless", "SIGTERM"):
        assert opt in res.output
    res = CliRunner().invoke(main, ["app", "--port", "0"])
    assert res.exit_code == 2 and "0 is not in the range 1<=x<=65535" in res.output
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("must not exec without Streamlit"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    res = CliRunner().invoke(main, ["app"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: the app needs Streamlit, which is not installed: pip install streamlit"
