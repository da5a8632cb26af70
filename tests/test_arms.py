"""Arms: registry, dict round trip, validation, and per-row dropout rates."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
import pytest

from audit import (
    ARM_KINDS,
    Arm,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    GroupDropoutArm,
    UniformDropoutArm,
    arm_from_dict,
    available_arms,
    register_arm,
)
from audit.arms._arms import MAX_DROPOUT

GROUPS = np.array(["Female", "Male", "Male", "Female", "Male"])
LABELS = ("Female", "Male")

EXAMPLE_ARMS: list[Arm] = [
    BaselineArm(),
    BaselineArm(name="reference"),
    UniformDropoutArm(p=0.25),
    UniformDropoutArm(name="u0", p=0.0),
    GroupDropoutArm(rates={"Female": 0.5, "Male": 0.1}),
    DPSGDArm(),
    DPSGDArm(name="dp-strict", epsilon=1.0, delta=1e-6, max_grad_norm=0.5, accountant="rdp",
             dropout=0.2),
    DPSGDArm(epsilon=8.0, accountant="rdp", dropout={"Female": 0.3, "Male": 0.0}),
]


def test_registry_lists_the_four_kinds_in_order() -> None:
    assert ARM_KINDS == ("baseline", "uniform_dropout", "group_dropout", "dp_sgd")
    # The four default kinds, then the opt-in ones.
    assert available_arms() == (*ARM_KINDS, "dp_sgd_f")
    classes: list[type[Arm]] = [BaselineArm, UniformDropoutArm, GroupDropoutArm, DPSGDArm]
    assert [c.kind for c in classes] == list(ARM_KINDS)


def test_register_arm_refuses_duplicate_kind() -> None:
    with pytest.raises(ValueError, match="'baseline' is already registered"):
        register_arm(BaselineArm)
    assert available_arms() == (*ARM_KINDS, "dp_sgd_f")


@pytest.mark.parametrize("arm", EXAMPLE_ARMS, ids=lambda a: a.label)
def test_dict_round_trip(arm: Arm) -> None:
    data = arm.to_dict()
    assert data["kind"] == arm.kind
    assert data["name"] == arm.label
    back = arm_from_dict(data)
    assert type(back) is type(arm)
    assert back == arm
    # and through JSON text, as results.json stores it
    assert arm_from_dict(json.loads(json.dumps(data))) == arm


def test_every_kind_covered_by_round_trip() -> None:
    assert {a.kind for a in EXAMPLE_ARMS} == set(ARM_KINDS)


def test_arm_from_flat_dict() -> None:
    arm = arm_from_dict({"kind": "uniform_dropout", "name": "u", "p": 0.4})
    assert arm == UniformDropoutArm(name="u", p=0.4)


def test_unknown_kind_names_value_and_lists_valid() -> None:
    with pytest.raises(ConfigError, match=r"unknown arm kind 'dropout'.*") as info:
        arm_from_dict({"kind": "dropout"})
    for kind in ARM_KINDS:
        assert repr(kind) in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown arm kind None; valid kinds: \['baseline'"):
        arm_from_dict({"p": 0.3})


def test_unknown_parameter_names_value_and_lists_valid() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape("unknown parameter(s) ['rate'] for arm 'uniform_dropout'; "
                        "valid: ['name', 'p']"),
    ):
        arm_from_dict({"kind": "uniform_dropout", "params": {"rate": 0.3}})
    with pytest.raises(ConfigError, match=r"\['sigma'\] for arm 'dp_sgd'.*'max_grad_norm'"):
        arm_from_dict({"kind": "dp_sgd", "sigma": 1.0})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-0.1, r"uniform_dropout p must be a number in \[0, 0.95\], not -0.1"),
        (0.96, r"uniform_dropout p must be a number in \[0, 0.95\], not 0.96"),
        (1.0, r"uniform_dropout p must be a number in \[0, 0.95\], not 1.0"),
        (float("nan"), r"uniform_dropout p must be a number in \[0, 0.95\], not nan"),
        ("high", r"uniform_dropout p must be a number in \[0, 0.95\], not 'high'"),
        (None, r"uniform_dropout p must be a number in \[0, 0.95\], not None"),
    ],
)
def test_uniform_rate_validation(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UniformDropoutArm(p=value)


def test_rate_bounds_are_inclusive_and_coerced_to_float() -> None:
    assert UniformDropoutArm(p=0).p == 0.0
    assert UniformDropoutArm(p=MAX_DROPOUT).p == MAX_DROPOUT
    arm = UniformDropoutArm(p="0.3")  # type: ignore[arg-type]
    assert isinstance(arm.p, float) and arm.p == 0.3


def test_group_rate_validation_names_group() -> None:
    with pytest.raises(ConfigError, match=r"group_dropout rate for 'Male' must be a number in \[0, 0.95\], not 0.99"):
        GroupDropoutArm(rates={"Female": 0.2, "Male": 0.99})
    with pytest.raises(ConfigError, match=r"rate for 'Female' must be a number .*not 'x'"):
        GroupDropoutArm(rates={"Female": "x", "Male": 0.1})  # type: ignore[dict-item]


@pytest.mark.parametrize("rates", [{}, None, [("Female", 0.2)]])
def test_group_dropout_needs_rates_per_group_or_auto(rates: Any) -> None:
    with pytest.raises(ConfigError, match=r"needs rates per group.*rates=\{'Female'.*rates='auto'.*; not "
                       + re.escape(repr(rates))) as info:
        GroupDropoutArm(rates=rates)
    assert info.value.param == "rates"


def test_group_dropout_defaults_to_solver() -> None:
    arm = GroupDropoutArm()
    assert arm.auto and arm.rates == "auto" and arm.budget is None and arm.objective == "equalize"
    assert GroupDropoutArm(budget="0.4").budget == 0.4  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"group_dropout budget must be a number in \[0, 0.95\] or None, not 1.2"):
        GroupDropoutArm(budget=1.2)


def test_group_rates_map_rows_to_their_group() -> None:
    arm = GroupDropoutArm(rates={"Female": 0.5, "Male": 0.1})
    rates = arm.row_dropout_rates(GROUPS, LABELS)
    assert rates.dtype == np.float32
    np.testing.assert_array_equal(rates, np.array([0.5, 0.1, 0.1, 0.5, 0.1], dtype=np.float32))
    # the budget: mean over the given rows (2 of 5 at 0.5, 3 of 5 at 0.1)
    assert arm.expected_rate(GROUPS, LABELS) == pytest.approx((2 * 0.5 + 3 * 0.1) / 5)


def test_group_rates_keys_become_strings() -> None:
    arm = GroupDropoutArm(rates={1: 0.2, 2: 0.4})  # type: ignore[dict-item]
    assert arm.rates == {"1": 0.2, "2": 0.4}
    np.testing.assert_allclose(arm.row_dropout_rates(np.array(["2", "1"]), ("1", "2")), [0.4, 0.2])


def test_group_without_rate_errors_with_groups_and_example() -> None:
    arm = GroupDropoutArm(name="gd", rates={"Female": 0.5})
    with pytest.raises(ConfigError) as info:
        arm.row_dropout_rates(GROUPS, LABELS)
    message = str(info.value)
    assert "arm 'gd'" in message
    assert "no rate for group(s) ['Male']" in message
    assert "the groups are ['Female', 'Male']" in message
    assert "rates={'Female': 0.3, 'Male': 0.3}" in message
    assert info.value.param == "rates"
    assert info.value.fix == {"rates": {"Female": 0.3, "Male": 0.3}}


def test_rate_for_unknown_group_errors() -> None:
    arm = GroupDropoutArm(rates={"Female": 0.5, "Male": 0.1, "Other": 0.2})
    with pytest.raises(
        ConfigError, match=r"unknown group\(s\) \['Other'\].*groups are \['Female', 'Male'\]"
    ):
        arm.row_dropout_rates(GROUPS, LABELS)


def test_missing_and_unknown_reported_together() -> None:
    arm = GroupDropoutArm(rates={"female": 0.5, "Male": 0.1})
    with pytest.raises(
        ConfigError, match=r"no rate for group\(s\) \['Female'\]; unknown group\(s\) \['female'\]"
    ):
        arm.row_dropout_rates(GROUPS, LABELS)


def test_baseline_and_uniform_rows() -> None:
    np.testing.assert_array_equal(BaselineArm().row_dropout_rates(GROUPS, LABELS), np.zeros(5))
    rates = UniformDropoutArm(p=0.3).row_dropout_rates(GROUPS, LABELS)
    assert rates.dtype == np.float32 and rates.shape == (5,)
    np.testing.assert_array_equal(rates, np.full(5, 0.3, dtype=np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": 0}, r"dp_sgd epsilon must be a finite number > 0 or None, not 0"),
        ({"epsilon": -1.0}, r"dp_sgd epsilon must be a finite number > 0 or None, not -1.0"),
        ({"epsilon": float("inf")}, r"dp_sgd epsilon must be a finite number > 0 or None, not inf"),
        ({"epsilon": float("nan")}, r"dp_sgd epsilon must be a finite number > 0 or None, not nan"),
        ({"delta": 0}, r"dp_sgd delta must be a number in \(0, 1\) or None, not 0"),
        ({"delta": 1}, r"dp_sgd delta must be a number in \(0, 1\) or None, not 1"),
        ({"delta": 1.5}, r"dp_sgd delta must be a number in \(0, 1\) or None, not 1.5"),
        ({"delta": float("nan")}, r"dp_sgd delta must be a number in \(0, 1\) or None, not nan"),
        ({"max_grad_norm": 0}, r"dp_sgd max_grad_norm must be a finite number > 0, not 0"),
        ({"max_grad_norm": -1.0}, r"dp_sgd max_grad_norm must be a finite number > 0, not -1.0"),
        ({"max_grad_norm": float("nan")}, r"dp_sgd max_grad_norm must be a finite number > 0, not nan"),
        ({"accountant": "moments"},
         r"dp_sgd accountant must be one of \['prv', 'rdp'\], not 'moments'"),
        ({"dropout": 0.99}, r"dp_sgd dropout must be a number in \[0, 0.95\] or None, not 0.99"),
        ({"dropout": {"Female": -0.1}},
         r"dp_sgd dropout rate for 'Female' must be a number in \[0, 0.95\], not -0.1"),
    ],
)
def test_dpsgd_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DPSGDArm(**kwargs)


def test_dpsgd_rejects_infinite_clipping_norm() -> None:
    # An infinite norm means no clipping, so no bounded sensitivity and no guarantee.
    with pytest.raises(ConfigError, match="max_grad_norm"):
        DPSGDArm(max_grad_norm=float("inf"))


@pytest.mark.parametrize("field_name", ["epsilon", "delta", "max_grad_norm"])
def test_dpsgd_non_number_names_parameter(field_name: str) -> None:
    with pytest.raises(ConfigError, match=field_name):
        DPSGDArm(**{field_name: "abc"})  # type: ignore[arg-type]


def test_dpsgd_accepts_guarantee_accountants_only() -> None:
    for accountant in ("prv", "rdp"):
        assert DPSGDArm(accountant=accountant).accountant == accountant
    with pytest.raises(ConfigError, match="GDP approximation can under-report"):
        DPSGDArm(accountant="gdp")


def test_dpsgd_numeric_strings_are_coerced() -> None:
    arm = DPSGDArm(epsilon="3", delta="1e-6", max_grad_norm="2")  # type: ignore[arg-type]
    assert (arm.epsilon, arm.delta, arm.max_grad_norm) == (3.0, 1e-6, 2.0)
    assert arm.to_dict()["params"]["epsilon"] == 3.0


def test_dpsgd_dropout_float() -> None:
    arm = DPSGDArm(dropout=0.2)
    assert arm.dropout == 0.2
    np.testing.assert_array_equal(arm.row_dropout_rates(GROUPS, LABELS),
                                  np.full(5, 0.2, dtype=np.float32))
    np.testing.assert_array_equal(DPSGDArm().row_dropout_rates(GROUPS, LABELS), np.zeros(5))


def test_dpsgd_dropout_mapping() -> None:
    arm = DPSGDArm(dropout={"Female": 0.4, "Male": 0.0})
    np.testing.assert_array_equal(arm.row_dropout_rates(GROUPS, LABELS),
                                  np.array([0.4, 0.0, 0.0, 0.4, 0.0], dtype=np.float32))
    with pytest.raises(ConfigError, match=r"arm 'dp_sgd': no rate for group\(s\) \['Male'\]"):
        DPSGDArm(dropout={"Female": 0.4}).row_dropout_rates(GROUPS, LABELS)


def test_private_only_for_dp_sgd() -> None:
    assert DPSGDArm.private is True
    assert DPSGDArm().private is True
    for arm in (BaselineArm(), UniformDropoutArm(), GroupDropoutArm(rates={"a": 0.1})):
        assert arm.private is False


def test_label_defaults_to_kind() -> None:
    for arm in (BaselineArm(), UniformDropoutArm(), GroupDropoutArm(rates={"a": 0.1}), DPSGDArm()):
        assert arm.label == arm.kind
    assert UniformDropoutArm(name="u30", p=0.3).label == "u30"
    with pytest.raises(ConfigError, match="arm name must not be empty"):
        BaselineArm(name="  ")


def test_params_exclude_name_and_are_json_ready() -> None:
    arm = DPSGDArm(name="x", epsilon=2.0, dropout={"Female": 0.1, "Male": 0.2})
    params = arm.params()
    assert "name" not in params
    assert params == {"epsilon": 2.0, "delta": None, "max_grad_norm": 1.0, "accountant": "prv",
                      "dropout": {"Female": 0.1, "Male": 0.2}}
    json.dumps(arm.to_dict())  # must not raise
    assert UniformDropoutArm(p=0.1).params() == {"p": 0.1}
    assert BaselineArm().params() == {}


def test_arms_are_frozen() -> None:
    arm = UniformDropoutArm(p=0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        arm.p = 0.5  # type: ignore[misc]
