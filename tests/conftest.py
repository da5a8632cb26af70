"""Shared fixtures. Tests never download anything: Adult comes from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ADULT_DATA = SHARED_DATA / "adult.data"
ADULT_TEST = SHARED_DATA / "adult.test"

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
