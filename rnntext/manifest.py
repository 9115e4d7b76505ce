"""The artifact manifest: what a model directory says about itself, checked before a model is served."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["charlm", "sentiment", "ner"]
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"  # written by training, beside the manifest


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dtype: Literal["int64", "float32"]
    shape: list[str | int]


class IOSpec(BaseModel):
    """ONNX input and output names with dtypes and symbolic shapes; for the char LM also the token input, the
    logits output and the state pairs [input, output] that carry the LSTM state from one call to the next."""

    model_config = ConfigDict(extra="allow")
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    tokens: str | None = None
    logits: str | None = None
    state: list[tuple[str, str]] | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    task: Task
    name: str
    version: str
    model_file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: str
    vocab_file: str
    labels: list[str] | None = None
    tags: list[str] | None = None
    io: IOSpec
    encoder: dict[str, Any] = Field(default_factory=dict, description="settings the shared encoder needs")
    architecture: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    decoding: dict[str, Any] | None = Field(default=None, description="e.g. a NER CRF's transition scores")

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: manifest not found")
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{path}: invalid manifest: {err}") from err

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
        return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
