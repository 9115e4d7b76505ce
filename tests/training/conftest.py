from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # 2 cores are shared with whatever else runs: keep each test on one thread, seeded.
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"training data not found at {DATA} (CI and sessions have ../shared/data beside the repo)")
    return DATA
