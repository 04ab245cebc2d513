"""Shared fixtures: where the optional shared data sets live, and a fixed random seed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$IGKIT_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    return Path(os.environ.get("IGKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; tests that need it are skipped (with the reason) when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set IGKIT_SHARED_DATA to run this test)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread: on a 2-core machine two threads spin against each other and any other
    process (measured: a GoogLeNet pass 0.08 s with one thread, 0.6-4 s with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
