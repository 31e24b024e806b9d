"""Shared fixtures: the read-only ../shared folder beside the checkout, and skips where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))


def shared_path(relative: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is missing."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's ../shared reference data")
    return path


@pytest.fixture
def yolox_nano_path() -> Path:
    return shared_path("models/yolox-nano/yolox_nano.onnx")
