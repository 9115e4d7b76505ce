"""rnntext.manifest: parsing, the sha256 pattern, and errors that name the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rnntext.manifest import Manifest, file_sha256

VALID = {
    "task": "sentiment",
    "name": "m",
    "version": "1",
    "model_file": "model.onnx",
    "sha256": "0" * 64,
    "created": "2026-01-01",
    "vocab_file": "vocab.json",
    "labels": ["negative", "positive"],
    "io": {"inputs": {"tokens": {"dtype": "int64", "shape": ["batch", "time"]}},
           "outputs": {"probs": {"dtype": "float32", "shape": ["batch", 2]}}},
}  # fmt: skip


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_read_valid(tmp_path: Path) -> None:
    manifest = Manifest.read(write(tmp_path, VALID))
    assert manifest.model_id == "m@1" and manifest.io.outputs["probs"].shape == ["batch", 2]
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path) == manifest


@pytest.mark.parametrize(
    ("change", "field"),
    [({"sha256": "xyz"}, "sha256"), ({"task": "vision"}, "task"), ({"io": {"inputs": {}}}, "outputs")],
)
def test_invalid_manifest_names_the_file_and_field(tmp_path: Path, change: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=r"manifest\.json: invalid manifest") as err:
        Manifest.read(write(tmp_path, {**VALID, **change}))
    assert field in str(err.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        Manifest.read(tmp_path)


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()
