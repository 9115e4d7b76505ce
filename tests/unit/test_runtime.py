"""service.runtime: a bad artifact stops loading with an error naming the file and the failed check.

Each test edits a copy of a committed artifact in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rnntext.manifest import file_sha256
from service.runtime import ArtifactError, OnnxModel, check_device, choose_providers
from service.tasks.sentiment import SentimentModel


def copy_artifact(artifacts: Path, tmp_path: Path, task: str) -> Path:
    return Path(shutil.copytree(artifacts / task, tmp_path / task))


def edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("task", ["charlm", "sentiment", "ner"])
def test_committed_artifacts_load_on_cpu(artifacts: Path, task: str) -> None:
    model = OnnxModel.load(artifacts / task, device="cpu")
    assert model.providers == ["CPUExecutionProvider"]
    assert model.describe()["sha256"] == file_sha256(artifacts / task / model.manifest.model_file)


def test_tampered_model_fails_the_sha256_check(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_artifact(artifacts, tmp_path, "sentiment")
    with (directory / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=r"sentiment/model.onnx: sha256 check failed"):
        OnnxModel.load(directory)


def test_wrong_input_name_fails_the_io_check(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_artifact(artifacts, tmp_path, "sentiment")
    edit_manifest(directory, lambda m: m["io"]["inputs"].update(ids=m["io"]["inputs"].pop("tokens")))
    with pytest.raises(ArtifactError, match=r"sentiment/model.onnx: input names check failed"):
        OnnxModel.load(directory)


def test_wrong_dtype_fails_the_dtype_check(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_artifact(artifacts, tmp_path, "ner")
    edit_manifest(directory, lambda m: m["io"]["inputs"]["lengths"].update(dtype="float32"))
    with pytest.raises(ArtifactError, match=r"ner/model.onnx: input 'lengths' dtype check failed"):
        OnnxModel.load(directory)


def test_label_count_mismatch_fails_at_warm_up(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_artifact(artifacts, tmp_path, "sentiment")
    edit_manifest(directory, lambda m: m.update(labels=["negative", "neutral", "positive"]))
    model = SentimentModel(OnnxModel.load(directory))
    with pytest.raises(ArtifactError, match=r"sentiment/manifest.json: labels count check failed: manifest lists 3"):
        model.warm_up()


def test_missing_vocabulary_names_the_file(artifacts: Path, tmp_path: Path) -> None:
    directory = copy_artifact(artifacts, tmp_path, "charlm")
    (directory / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab\.json"):
        OnnxModel.load(directory)


def test_choose_providers() -> None:
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    with pytest.raises(ArtifactError, match="RNNSERVE_DEVICE=cuda"):
        choose_providers("cuda", ["CPUExecutionProvider"])


def test_cuda_asked_for_but_not_in_use_is_refused() -> None:
    """onnxruntime-gpu without a GPU: CUDA is 'available', yet the session runs on the CPU alone."""
    check_device("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    check_device("auto", ["CPUExecutionProvider"])
    with pytest.raises(ArtifactError, match="no usable CUDA device"):
        check_device("cuda", ["CPUExecutionProvider"])
