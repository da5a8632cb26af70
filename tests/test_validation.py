"""The declarative option checks of audit/_validation.py."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from audit import ConfigError
from audit._validation import INVALID, Interval, Options, SequenceOf, check_param, validate_params


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        (Interval(int, 1, None), "an integer >= 1"),
        (Interval(int, 0, None, closed="right"), "an integer > 0"),
        (Interval(int, None, 10, closed="left"), "an integer < 10"),
        (Interval(int, None, None), "an integer"),
        (Interval(float, 0, 0.95), "a number in [0, 0.95]"),
        (Interval(float, 0, 1, closed="neither"), "a number in (0, 1)"),
        (Interval(float, 0, 0.5, closed="right"), "a number in (0, 0.5]"),
        (Interval(float, 0, 1, closed="left"), "a number in [0, 1)"),
        (Interval(float, 0, math.inf, closed="neither"), "a finite number > 0"),
        (Interval(float, 0, None, closed="neither"), "a number > 0"),
    ],
)
def test_interval_describes_itself(interval: Interval, words: str) -> None:
    assert str(interval) == words


@pytest.mark.parametrize(
    ("closed", "low_in", "high_in"),
    [("both", True, True), ("left", True, False), ("right", False, True), ("neither", False, False)],
)
def test_interval_bounds_follow_closed(closed: Any, low_in: bool, high_in: bool) -> None:
    interval = Interval(float, 0, 1, closed=closed)
    assert (interval.convert(0) is not INVALID) is low_in
    assert (interval.convert(1) is not INVALID) is high_in
    assert interval.convert(0.5) == 0.5
    assert interval.convert(-1e-12) is INVALID and interval.convert(1 + 1e-12) is INVALID


def test_booleans_are_not_numbers_and_nan_is_in_no_interval() -> None:
    for interval in (Interval(int, 0, None), Interval(float, None, None)):
        assert interval.convert(True) is INVALID and interval.convert(np.bool_(False)) is INVALID
    assert Interval(float, None, None).convert(float("nan")) is INVALID
    assert Interval(float, None, None).convert("nan") is INVALID
    assert Interval(float, 0, None).convert(math.inf) == math.inf  # unbounded above
    assert Interval(float, 0, math.inf, closed="neither").convert(math.inf) is INVALID


def test_conversion_to_canonical_types() -> None:
    assert type(Interval(int, 0, None).convert(np.int64(3))) is int
    assert Interval(int, 0, None).convert(2.0) is INVALID  # a float is not an integer
    assert Interval(int, 0, None).convert("3") is INVALID
    value = Interval(float, 0, 1).convert(np.float32(0.5))
    assert type(value) is float and value == 0.5
    assert Interval(float, 0, 1).convert(1) == 1.0 and type(Interval(float, 0, 1).convert(1)) is float
    assert Interval(float, 0, 1).convert("0.25") == 0.25  # text, as read from JSON or a form
    assert Interval(float, 0, 1).convert("a lot") is INVALID
    assert Interval(float, 0, 1).convert(None) is INVALID
    assert SequenceOf(Interval(int, 1, None)).convert(np.array([4, 2])) == (4, 2)
    assert SequenceOf(Interval(int, 1, None)).convert("42") is INVALID


def test_options_match_exactly() -> None:
    options = Options(("auto", "cpu", "cuda"))
    assert options.convert("cpu") == "cpu"
    assert options.convert("CPU") is INVALID
    assert options.convert(["cpu"]) is INVALID
    assert Options((0, 1)).convert(True) is INVALID
    assert Options((0, 1)).convert(np.int64(1)) == 1
    assert Options((1, 2)).convert(np.array([1, 2])) is INVALID


def test_message_names_owner_parameter_valid_set_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        check_param("TrainingConfig", "epochs", 0, Interval(int, 1, None))
    assert str(info.value) == "TrainingConfig epochs must be an integer >= 1, not 0"
    assert info.value.param == "epochs" and info.value.fix is None
    with pytest.raises(ConfigError, match=re.escape(
            "AuditConfig device must be one of ['auto', 'cpu', 'cuda'], not 'gpu'")):
        check_param("AuditConfig", "device", "gpu", Options(("auto", "cpu", "cuda")))
    with pytest.raises(ConfigError, match=r"^delta must be a number in \(0, 1\) or None, not 1.5$"):
        check_param("", "delta", 1.5, Interval(float, 0, 1, closed="neither"), None)
    with pytest.raises(ConfigError, match=r"^x rate for 'A' must be 0 or an integer >= 2, not 1 \(why\)$") as info:
        check_param("x", "rate for 'A'", 1, Options([0]), Interval(int, 2, None), param="rates", note="why")
    assert info.value.param == "rates"
    with pytest.raises(ConfigError, match=r"not 0.5$"):  # NumPy scalars shown as numbers
        check_param("o", "p", np.float64(0.5), Interval(float, 0, 0.1))


def test_none_is_accepted_only_when_listed() -> None:
    assert check_param("o", "delta", None, None, Interval(float, 0, 1)) is None
    with pytest.raises(ConfigError, match="not None"):
        check_param("o", "delta", None, Interval(float, 0, 1))


@dataclass(frozen=True)
class _Options:
    count: Any = 1
    rate: Any = 0.5


def test_validate_params_sets_converted_fields_of_frozen_objects() -> None:
    obj = _Options(count=np.int64(4), rate="0.25")
    out = validate_params("Opts", obj, {"count": Interval(int, 1, None), "rate": (Interval(float, 0, 1), None)})
    assert out == {"count": 4, "rate": 0.25}
    assert type(obj.count) is int and obj.rate == 0.25
    with pytest.raises(ConfigError, match="^Opts rate must be a number in \\[0, 1\\] or None, not 2$"):
        validate_params("Opts", _Options(rate=2), {"rate": (Interval(float, 0, 1), None)})


def test_validate_params_on_a_mapping_skips_absent_names() -> None:
    spec = {"count": Interval(int, 1, None), "rate": Interval(float, 0, 1)}
    assert validate_params("f", {"rate": 1}, spec) == {"rate": 1.0}
    with pytest.raises(ConfigError, match="^f count must be an integer >= 1, not 0$"):
        validate_params("f", {"count": 0}, spec)
