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


def tiny_tagger_args(data_dir: Path, out: Path, runs: Path) -> list[str]:
    """train_ner flags for a seconds-long run on 200 real CoNLL sentences (teacher tests add their own flags)."""
    return [
        f"--train={data_dir}/conll2003/train.txt",
        f"--valid={data_dir}/conll2003/valid.txt",
        f"--out={out}",
        f"--runs={runs}",
        "--max-sentences=200",
        "--hidden=16",
        "--word-embed=16",
        "--char-filters=8",
        "--epochs=1",
        "--pretrained=none",
    ]
