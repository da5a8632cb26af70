"""Sweeps: points, the tidy result, resuming, the CLI and the report (issue 15). The Ray
backend's tests are in test_sweep_ray.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pdf_checks import assert_pdf_sound

from audit import (
    SWEEP_COLUMNS,
    AuditConfig,
    AuditResult,
    ConfigError,
    PrivacyAuditConfig,
    SweepConfig,
    SweepEvent,
    SweepResult,
    TrainingConfig,
    load_dataset,
    run_audit,
    run_sweep,
)

AUDIT = AuditConfig(seeds=1, n_bootstrap=0, training=TrainingConfig(epochs=1, hidden=(8,)),
                    privacy_audit=PrivacyAuditConfig(mia="loss", canaries=100, white_box=False))
SMALL = SweepConfig(arms=("baseline", "uniform_dropout", "dp_sgd"), epsilons=(1, 4), budgets=(0.3,), audit=AUDIT)


@pytest.fixture(scope="module")
def dataset():  # type: ignore[no-untyped-def]
    return load_dataset("synthetic", n_rows=1500)


@pytest.fixture(scope="module")
def swept(dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepResult, Path]:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("sweep")
    return run_sweep(dataset, SMALL, out=out), out


def test_points_follow_each_arms_own_knob() -> None:
    config = SweepConfig(epsilons=(4, 0.5, 4.0), budgets=(0.5, 0.1))
    assert [p.key for p in config.points()] == [
        "baseline", "uniform_dropout-p0.1", "uniform_dropout-p0.5", "group_dropout-p0.1",
        "group_dropout-p0.5", "dp_sgd-eps0.5", "dp_sgd-eps4"]
    arm = config.point_config(config.points()[-1]).arms[0]
    assert (arm.kind, arm.label, arm.epsilon) == ("dp_sgd", "dp_sgd (epsilon 4)", 4.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("options, message", [
    ({"epsilons": (0,)}, "epsilons must be numbers above 0 (e.g. '0.5,1,2'), not 0"),
    ({"budgets": (0.1, 0.99)}, "budgets must be dropout rates from 0 to 0.95 (e.g. '0.1,0.3,0.5'), not 0.99"),
    ({"arms": ()}, "choose at least one arm to sweep"),
    ({"arms": ("dp",)}, "it cannot sweep ['dp']"),
    ({"arms": ("dp_sgd", "dp_sgd_f")}, "it cannot sweep ['dp_sgd_f'] (audit other arms, such as dp_sgd_f"),
    ({"arms": ("dp_sgd",), "epsilons": ()}, "a sweep with dp_sgd needs at least one epsilon"),
    ({"backend": "spark"}, "SweepConfig backend must be one of ['local', 'ray'], not 'spark'"),
    ({"arm_params": {"dp_sgd": {"clip": 1}}}, "unknown parameter(s) ['clip'] for arm 'dp_sgd'"),
])
def test_bad_sweeps_name_the_value(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SweepConfig(**options)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_the_tidy_frame_has_every_point_group_and_metric(swept: tuple[SweepResult, Path]) -> None:
    sweep, _ = swept
    frame = sweep.frame
    assert list(frame.columns) == SWEEP_COLUMNS
    assert sweep.points == ["baseline", "uniform_dropout-p0.3", "dp_sgd-eps1", "dp_sgd-eps4"]
    groups = frame[(frame["scope"] == "group") & (frame["metric"] == "error_rate")]
    assert len(groups) == 4 * 2 and groups["ci_low"].notna().all() and (groups["ci_low"] <= groups["value"]).all()
    eps = sweep.metric("accountant_epsilon", "privacy").set_index("point")["value"]
    assert np.isnan(eps["baseline"]) and np.isnan(eps["uniform_dropout-p0.3"])  # no guarantee
    assert eps["dp_sgd-eps1"] == pytest.approx(1, rel=0.02) and eps["dp_sgd-eps4"] == pytest.approx(4, rel=0.02)
    bounds = sweep.metric("epsilon_lower_bound", "privacy")
    assert bounds["value"].notna().all() and (bounds["value"] >= 0).all()
    accuracy = sweep.metric("accuracy", "overall").set_index("point")
    error = sweep.metric("error_rate", "overall").set_index("point")
    assert np.allclose(accuracy["value"], 1 - error["value"])
    assert np.allclose(accuracy["ci_low"], 1 - error["ci_high"])
    table = sweep.frontier()
    assert table["on_frontier"].any() and list(table["point"]) == sweep.points


def test_each_point_is_the_audit_of_its_arm_alone(dataset, swept: tuple[SweepResult, Path]) -> None:  # type: ignore[no-untyped-def]
    sweep, out = swept
    point = SMALL.points()[2]  # dp_sgd at epsilon 1
    alone = run_audit(dataset, SMALL.point_config(point))
    gaps = alone.aggregate("gaps")
    gap = gaps[(gaps["metric"] == "error_rate") & (gaps["gap"] == "difference")]["value"].iloc[0]
    swept_gap = sweep.metric("error_rate", "gap").set_index("point").loc[point.key, "value"]
    assert swept_gap == gap  # same splits, seeds and config: the same number, exactly
    saved = AuditResult.from_json(out / "points" / f"{point.key}.json")
    assert saved.arm_names == ["dp_sgd (epsilon 1)"]


def test_files_read_back_exactly(swept: tuple[SweepResult, Path]) -> None:
    sweep, out = swept
    back = SweepResult.load(out)
    pd.testing.assert_frame_equal(back.frame, sweep.frame, check_exact=True)
    assert back.config == sweep.config
    parquet = pd.read_parquet(out / "sweep.parquet")
    pd.testing.assert_frame_equal(parquet, sweep.frame, check_dtype=False, check_exact=True)
    data = json.loads((out / "sweep.json").read_text())
    assert data["kind"] == "sweep" and data["schema_version"] == "1.0"


class Interrupt(Exception):
    pass


def test_an_interrupted_sweep_resumes_without_recomputing(dataset, swept: tuple[SweepResult, Path],  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    full, _ = swept
    started: list[str] = []

    def stop_after_two(event: SweepEvent) -> None:
        if event.point is not None and event.point not in started:
            started.append(event.point)
        if event.points_done == 2:
            raise Interrupt  # Ctrl-C between points

    with pytest.raises(Interrupt):
        run_sweep(dataset, SMALL, out=tmp_path, progress=stop_after_two)
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == ["baseline.json", "uniform_dropout-p0.3.json"]
    assert not (tmp_path / "sweep.json").exists()
    (tmp_path / "points" / "uniform_dropout-p0.3.json").write_text('{"schema_version": "1.1", "arm')  # torn
    seen: list[str] = []
    resumed = run_sweep(dataset, SMALL, out=tmp_path,
                        progress=lambda e: seen.append(e.point) if e.audit is not None else None)
    assert resumed.meta["points_reused"] == ["baseline"]
    assert "baseline" not in seen and {"uniform_dropout-p0.3", "dp_sgd-eps1", "dp_sgd-eps4"} <= set(seen)
    pd.testing.assert_frame_equal(resumed.frame, full.frame, check_exact=True)


def test_a_folder_of_another_sweep_is_refused(dataset, swept: tuple[SweepResult, Path]) -> None:  # type: ignore[no-untyped-def]
    _, out = swept
    other = SweepConfig(arms=("baseline",), epsilons=(2,), audit=AUDIT)
    with pytest.raises(ConfigError, match="holds the points of a sweep with another configuration"):
        run_sweep(dataset, other, out=out)


def fairpriv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fairpriv_cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_cli_sweep_writes_results_and_a_report_and_report_rerenders_it(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = fairpriv("sweep", "--dataset", "synthetic", "--rows", "1500", "--arms", "baseline,dp_sgd",
                    "--epsilons", "2,8", "--seeds", "1", "--epochs", "1", "--hidden", "8", "--bootstrap", "0",
                    "--canaries", "0", "--mia", "none", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "dp_sgd (epsilon 2)" in done.stdout and "frontier" in done.stdout
    sweep = SweepResult.load(out / "sweep.json")
    assert sweep.points == ["baseline", "dp_sgd-eps2", "dp_sgd-eps8"]
    assert_pdf_sound(out / "report.pdf")
    (out / "report.pdf").unlink()
    again = fairpriv("report", str(out))
    assert again.returncode == 0, again.stderr
    assert_pdf_sound(out / "report.pdf")
    bad = fairpriv("sweep", "--dataset", "synthetic", "--epsilons", "1,two", "--out", str(tmp_path / "x"))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "Error: --epsilons must be comma-separated numbers (e.g. '0.5,1,2'), not '1,two'" in bad.stderr


def test_the_report_has_the_three_figures_and_the_frontier_table(swept: tuple[SweepResult, Path]) -> None:
    from reports import build_sweep_report

    report = build_sweep_report(swept[0])
    figures = [b for s in report.sections for b in s.blocks if hasattr(b, "png")]
    assert len(figures) == 3 and all(f.png.startswith(b"\x89PNG") for f in figures)
    tables = [b for s in report.sections for b in s.blocks if hasattr(b, "rows")]
    assert [row[0] for row in tables[0].rows] == ["baseline", "uniform dropout p = 0.3", "DP-SGD ε = 1",
                                                  "DP-SGD ε = 4"]
    assert tables[0].rows[0][3] == "no guarantee" and report.violation is None
