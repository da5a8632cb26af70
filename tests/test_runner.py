from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import (
    SCHEMA_VERSION,
    AuditConfig,
    AuditResult,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    GroupDropoutArm,
    ProgressEvent,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
)

FOUR_ARMS = (
    BaselineArm(),
    UniformDropoutArm(p=0.5),
    GroupDropoutArm(rates={"majority": 0.6, "minority": 0.1}),
    DPSGDArm(),
)


def small_config(**overrides: object) -> AuditConfig:
    base: dict[str, object] = dict(
        arms=FOUR_ARMS, seeds=2, epsilon=2.0, n_bootstrap=50,
        training=TrainingConfig(epochs=2, hidden=(16,)),
    )
    base.update(overrides)
    return AuditConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", n_rows=1500)


@pytest.fixture(scope="module")
def result(dataset) -> AuditResult:
    return run_audit(dataset, small_config())


def test_every_arm_and_group_has_metrics(result: AuditResult) -> None:
    assert result.arm_names == ["baseline", "uniform_dropout", "group_dropout", "dp_sgd"]
    agg = result.aggregate("by_group")
    for arm in result.arm_names:
        rows = agg[(agg["arm"] == arm) & (agg["metric"] == "error_rate")]
        assert set(rows["group"]) == {"majority", "minority"}
        assert rows["value"].between(0, 1).all()
    # Two seeds: per-seed rows and one aggregate per arm, group and metric.
    assert set(result.by_group["seed"].dropna()) == {0, 1}


def test_only_dp_arm_carries_epsilon(result: AuditResult) -> None:
    privacy = result.privacy
    non_dp = privacy[privacy["kind"] != "dp_sgd"]
    assert non_dp["epsilon"].isna().all()
    assert (non_dp["guarantee"] == "no guarantee").all()
    assert non_dp["noise_multiplier"].isna().all()
    dp = privacy[privacy["kind"] == "dp_sgd"]
    assert ((dp["epsilon"] > 0) & (dp["epsilon"] <= 2.0)).all()
    assert (dp["noise_multiplier"] > 0).all()
    assert dp["accountant"].eq("prv").all()
    n_train = result.dataset["splits"]["counts"]
    total_train = sum(c["train"] for c in n_train.values())
    assert dp["delta"].iloc[0] == pytest.approx(min(1e-5, 1 / (10 * total_train)))


def test_json_never_gives_non_dp_arm_an_epsilon(result: AuditResult) -> None:
    data = json.loads(result.to_json())
    for arm in data["arms"]:
        if arm["kind"] == "dp_sgd":
            assert isinstance(arm["privacy"]["epsilon"], float)
        else:
            assert arm["privacy"]["epsilon"] is None
            assert all(s["epsilon"] is None for s in arm["privacy"]["per_seed"])


def test_results_json_schema(result: AuditResult, dataset) -> None:
    data = json.loads(result.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert {"config", "dataset", "arms", "meta"} <= set(data)
    expected = {g: int((dataset.groups == g).sum()) for g in ("majority", "minority")}
    assert data["dataset"]["groups"] == expected
    assert data["dataset"]["rows"] == 1500
    arm = data["arms"][0]
    assert {"name", "kind", "params", "privacy", "metrics"} <= set(arm)
    agg = arm["metrics"]["aggregate"]
    assert set(agg) == {"overall", "by_group", "gaps"}
    assert set(agg["by_group"]) == {"majority", "minority"}
    assert {"value", "std", "ci_low", "ci_high", "ci_method", "n"} == set(agg["by_group"]["minority"]["error_rate"])
    assert set(agg["gaps"]["error_rate"]) == {"difference", "ratio"}
    assert [s["seed"] for s in arm["metrics"]["seeds"]] == [0, 1]


def test_json_round_trip(result: AuditResult, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    result.to_json(path)
    back = AuditResult.from_json(path)
    for name in ("by_group", "overall", "gaps", "privacy"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name), check_exact=True)
    assert back.config == result.config
    assert back.dataset == result.dataset
    assert back.to_dict() == result.to_dict()


def test_config_round_trip(result: AuditResult) -> None:
    config = AuditConfig.from_dict(result.config)
    assert config.to_dict() == result.config
    assert config == small_config()


def test_same_seed_gives_identical_metrics(dataset) -> None:
    cfg = small_config(arms=(UniformDropoutArm(p=0.3), DPSGDArm()), seeds=1)
    a, b = run_audit(dataset, cfg), run_audit(dataset, cfg)
    for name in ("by_group", "overall", "gaps", "privacy"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    c = run_audit(dataset, small_config(arms=(UniformDropoutArm(p=0.3), DPSGDArm()), seeds=(5,)))
    assert not np.allclose(
        a.by_group.loc[a.by_group["metric"] == "log_loss", "value"].to_numpy(),
        c.by_group.loc[c.by_group["metric"] == "log_loss", "value"].to_numpy(),
    )


def test_progress_callback(dataset) -> None:
    events: list[ProgressEvent] = []
    run_audit(dataset, small_config(arms=(BaselineArm(),), seeds=2, n_bootstrap=0),
              progress=events.append)
    stages = [e.stage for e in events]
    # Every model is counted: two seeds, then a canary run per seed; then the measurement
    # steps. The batched trainer trains the seeds together (both advance, then both finish).
    assert list(dict.fromkeys(stages)) == ["arms", "canaries", "measure", "done"]
    finished = [e for prev, e in zip(events, events[1:], strict=False) if e.done > prev.done]
    assert [(e.stage, e.arm, e.seed) for e in finished] == [
        ("arms", "baseline", 0), ("arms", "baseline", 1), ("canaries", "baseline", 0),
        ("canaries", "baseline", 1)]
    assert [e.done for e in finished] == [1, 2, 3, 4]
    assert events[-1].done == 4 and events[-1].fraction == 1.0
    assert all(e.total == 4 for e in events)
    # The two arms' seeds advance together, epoch by epoch, before either finishes.
    together = [e for e in events if e.stage == "arms" and e.detail and "2 models together" in e.detail]
    assert together and all(e.done == 0 for e in together)


def test_wrong_group_rates_fail_before_training(dataset) -> None:
    calls: list[ProgressEvent] = []
    cfg = small_config(arms=(BaselineArm(), GroupDropoutArm(rates={"Female": 0.2, "Male": 0.3})))
    with pytest.raises(ConfigError, match=r"no rate for group\(s\) \['majority', 'minority'\].*unknown group\(s\) \['Female', 'Male'\]"):
        run_audit(dataset, cfg, progress=calls.append)
    assert calls == []


def test_regression_dataset_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a binary classification target"):
        run_audit("synthetic-regression", small_config(), n_rows=300)


def test_load_options_with_dataset_object(dataset) -> None:
    with pytest.raises(ConfigError, match="load options"):
        run_audit(dataset, small_config(), target="y")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": ()}, "at least one arm"),
        ({"arms": (BaselineArm(), BaselineArm())}, r"arm names must be unique; repeated: \['baseline'\]"),
        ({"arms": ("baseline",)}, "must be Arm instances"),
        ({"seeds": 0}, "AuditConfig seeds must be an integer >= 1 or a sequence of integers >= 0, not 0"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"epsilon": 0.0}, "AuditConfig epsilon must be a finite number > 0, not 0.0"),
        ({"delta": 1.5}, r"AuditConfig delta must be a number in \(0, 1\) or None, not 1.5"),
        ({"small_groups": "drop"}, r"small_groups must be one of \['error', 'merge'\]"),
        ({"device": "tpu"}, r"device must be one of \['auto', 'cpu', 'cuda'\], not 'tpu'"),
        ({"trainer": "fast"}, r"unknown trainer 'fast'; valid: \[.*'batched'.*'reference'"),
        ({"ci_level": 1.0}, r"AuditConfig ci_level must be a number in \(0, 1\), not 1.0"),
        ({"threshold": float("nan")}, r"AuditConfig threshold must be a number in \[0, 1\], not nan"),
        ({"n_bootstrap": -1}, r"AuditConfig n_bootstrap must be an integer >= 0, not -1"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \(0.5\) and test_fraction \(0.5\) must sum"),
        ({"training": {"epochs": 1}}, "AuditConfig training must be a TrainingConfig"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditConfig(**kwargs)


def test_two_arms_of_one_kind_with_names(dataset) -> None:
    cfg = small_config(arms=(UniformDropoutArm(p=0.1, name="p=0.1"), UniformDropoutArm(p=0.5, name="p=0.5")),
                       seeds=1, n_bootstrap=0)
    res = run_audit(dataset, cfg)
    assert res.arm_names == ["p=0.1", "p=0.5"]
    assert set(res.arms["kind"]) == {"uniform_dropout"}


def test_summary_and_html(result: AuditResult) -> None:
    text = result.summary()
    for arm in result.arm_names:
        assert arm in text
    assert "error[minority]" in text
    dp_line = next(line for line in text.splitlines() if line.startswith("dp_sgd"))
    eps = result.aggregate("privacy").set_index("arm").loc["dp_sgd", "epsilon"]
    assert f"{eps:.2f}" in dp_line
    base_line = next(line for line in text.splitlines() if line.startswith("baseline"))
    assert " none " in base_line
    html = result._repr_html_()
    assert "<table" in html and "no guarantee" in html


def test_from_json_rejects_other_major_version(result: AuditResult) -> None:
    data = result.to_dict()
    data["schema_version"] = "2.0"
    from audit import DataFileError

    with pytest.raises(DataFileError, match="schema_version '2.0' is not supported"):
        AuditResult.from_json(json.dumps(data))
    with pytest.raises(DataFileError, match="not a valid results JSON"):
        AuditResult.from_json("{not json")
