"""Shared fixtures. Tests never download anything: Adult comes from ../shared/data."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ADULT_DATA = SHARED_DATA / "adult.data"
ADULT_TEST = SHARED_DATA / "adult.test"

# Property-based tests (test_properties.py) run a fixed, derandomised set of examples, so
# that CI and every developer see the same ones and the suite's time is bounded; explore
# afresh with `pytest --hypothesis-profile=explore tests/test_properties.py`.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("fairpriv", max_examples=100, derandomize=True, deadline=None, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
settings.register_profile("explore", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("fairpriv")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two xdist workers on two cores: one torch thread each avoids oversubscription.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def adult_path() -> Path:
    if not ADULT_DATA.exists():
        pytest.skip(f"UCI Adult not found at {ADULT_DATA} (the shared data folder)")
    return ADULT_DATA


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to reach the network fail loudly."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session", autouse=True)
def results_files_are_validated() -> Iterator[None]:
    """Check every results.json the suite writes against the shipped schema.

    Every writer (``AuditResult.to_json``, so ``fairpriv run``/``audit-model``, the app's
    download and the golden generator) goes through ``audit.result._json.result_to_json``;
    wrapping it once, for the session, covers every test and every fixture, module- and
    session-scoped ones included, where explicit calls would miss the next test that
    writes one. A check costs tens of milliseconds, small beside the audit that made the
    result. Subprocesses (``tests/test_app_lifecycle.py``) are not covered; they write no
    results.
    """
    from audit import DataFileError, validate_results
    from audit.result import _container, _json

    original = _json.result_to_json

    def checked(result: Any, path: str | Path | None = None, *, indent: int = 2) -> str:
        text = original(result, path, indent=indent)
        try:
            validate_results(json.loads(text))
        except DataFileError as exc:
            raise AssertionError(f"fairpriv wrote a results file its own schema rejects: {exc}. "
                                 "Fix the writer or audit/result/results.schema.json.") from None
        return text

    with pytest.MonkeyPatch.context() as patch:
        # _container holds its own reference (from ._json import result_to_json).
        patch.setattr(_json, "result_to_json", checked)
        patch.setattr(_container, "result_to_json", checked)
        yield
