from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main, parse_dp_dropout, parse_group_rates

from audit import ConfigError

FAST = ["--epochs", "1", "--hidden", "8", "--bootstrap", "20", "--quiet"]


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
         r"group_dropout budget must be a number in \[0, 0.95\] or None, not 0.97"),
        (["--arms", "group_dropout", "--group-rates", "A=0.1,B=0.2"],
         r"no rate for group\(s\) \['majority', 'minority'\]"),
        (["--arms", "uniform_dropout", "--dropout", "1.5"],
         r"uniform_dropout p must be a number in \[0, 0.95\], not 1.5"),
        (["--target", "nope"], "target column 'nope' not found"),
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
