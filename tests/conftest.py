"""Shared fixtures: the artifacts under test are the committed ones in artifacts/ (RNNSERVE_ARTIFACTS overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings
from service.tasks import TASKS


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Settings().artifacts
    missing = [t for t in TASKS if not (path / t / "manifest.json").is_file()]
    if missing:  # the committed models are part of the project: their absence is a failure, not a skip
        pytest.fail(f"no {', '.join(missing)} artifact in {path}")
    return path
