"""The committed artifacts, scored through onnxruntime as served, reproduce the metrics their manifests claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import evaluate

REPO = Path(__file__).resolve().parents[2]


def run_evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, float]:
    evaluate.main(list(args))
    return json.loads(capsys.readouterr().out)


def manifest(task: str) -> dict:  # type: ignore[type-arg]
    path = REPO / "artifacts" / task / "manifest.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the committed artifacts are part of the project")
    return json.loads(path.read_text())


def test_ner_manifest_f1_reproduces(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claimed = manifest("ner")["metrics"]["valid_f1"]
    got = run_evaluate(capsys, str(REPO / "artifacts" / "ner"), str(data_dir / "conll2003" / "valid.txt"))
    assert got["f1"] == pytest.approx(claimed, abs=0.01)


def test_charlm_manifest_loss_reproduces(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = manifest("charlm")
    got = run_evaluate(
        capsys, str(REPO / "artifacts" / "charlm"), str(data_dir / "tinyshakespeare" / "train.txt"), "--tail=0.1"
    )
    assert got["chars"] == m["metrics"]["valid_chars"]
    assert got["loss"] == pytest.approx(m["metrics"]["valid_loss"], abs=2e-3)
