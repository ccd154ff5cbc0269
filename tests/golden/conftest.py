"""Fixtures of the golden tests: the shared data (fails loudly in CI when missing) and a thread cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from golden.data import data_root
from golden.errors import UserError

# Two cores shared with other engineers: keep torch from spawning more threads than that.
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_FILES = (
    "cifar10/cifar10-test.tar.gz",
    "cifar10/cifar10-train.tar.gz",
    "models/resnet20-cifar10.th",
    "models/resnet56-cifar10.th",
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder. Missing data FAILS the test when env ``CI`` is set, skips it otherwise."""
    try:
        root = data_root()
        missing = [f for f in SHARED_FILES if not (root / f).is_file()]
        if missing:
            raise UserError(f"shared data folder {root} lacks {', '.join(missing)}")
    except UserError as e:
        if os.environ.get("CI"):
            pytest.fail(f"shared data is required in CI: {e}")
        pytest.skip(f"shared data missing: {e}")
    return root
