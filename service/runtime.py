"""Load one artifact directory into an onnxruntime session, trusting nothing that was not checked.

Checks, each failing with the file and what was expected: the manifest parses, the model file's sha256 matches,
the graph's input and output names and dtypes are the manifest's, labels/tags match the output width, and the
vocabulary builds the task's encoder. Then the providers really in use are read back and a warm-up runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from rnntext.artifact import Encoder, load_encoder
from rnntext.manifest import Manifest, TensorSpec, file_sha256

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
Feeds = dict[str, npt.NDArray[Any]]
_ORT_DTYPES = {"tensor(int64)": "int64", "tensor(float)": "float32"}
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


class ArtifactError(ValueError):
    """An artifact failed a check; the message names the file and the check."""


def check_device(device: Device, in_use: list[str]) -> None:
    """onnxruntime-gpu lists CUDA as available even where no GPU or CUDA library is, and then quietly falls back to
    the CPU when a session is made: with RNNSERVE_DEVICE=cuda that must be a refusal, not a slow server."""
    if device == "cuda" and _CUDA not in in_use:
        raise ArtifactError(f"RNNSERVE_DEVICE=cuda but the session runs on {in_use}: no usable CUDA device")


def choose_providers(device: Device, available: list[str]) -> list[str]:
    if device == "cuda" and _CUDA not in available:
        raise ArtifactError(f"RNNSERVE_DEVICE=cuda but onnxruntime offers only {available}")
    if device != "cpu" and _CUDA in available:
        return [_CUDA, _CPU]
    return [_CPU]


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning threads burn the cores that other workers (and requests) need; measured calmer latency without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The arena keeps a worker's peak memory for good after one large batch (a 256-text batch: +61 MB with it,
    # +18 MB without, same speed; bench/model_only.py).
    options.enable_cpu_mem_arena = False
    return options


@dataclass
class OnnxModel:
    directory: Path
    manifest: Manifest
    encoder: Encoder
    session: ort.InferenceSession
    providers: list[str]
    threads: int
    chunk_threads: int = 1  # threads running the chunks of one `output_by_length` call (onnxruntime frees the GIL)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    @classmethod
    def load(cls, directory: Path, *, device: Device = "auto", threads: int = 1, chunk_threads: int = 1) -> OnnxModel:
        manifest, encoder = verify_files(directory)
        model_path = directory / manifest.model_file
        session = ort.InferenceSession(
            str(model_path),
            sess_options=session_options(threads),
            providers=choose_providers(device, ort.get_available_providers()),
        )
        check_device(device, session.get_providers())
        check_io(model_path, manifest, session)
        check_labels(model_path, manifest)
        model = cls(directory, manifest, encoder, session, session.get_providers(), threads, chunk_threads)
        logger.info(
            "loaded %s %s sha256=%s providers=%s threads=%d torch_imported=%s",
            manifest.task,
            manifest.model_id,
            manifest.sha256[:12],
            ",".join(model.providers),
            threads,
            "torch" in sys.modules,
        )
        return model

    def run(self, feeds: Feeds) -> list[npt.NDArray[Any]]:
        return list(self.session.run(None, feeds))

    def output(self, name: str, feeds: Feeds) -> npt.NDArray[Any]:
        (value,) = self.session.run([name], feeds)
        return np.asarray(value)

    def output_by_length(self, name: str, feeds: Feeds, chunk: int = 8) -> npt.NDArray[Any]:
        """`output` for a padded batch with a `lengths` input, run as chunks of similar length.

        ORT's LSTM gains nothing from one large padded call on CPU (64 sentences: 10.5 ms padded together, 5.0 ms
        in length-sorted calls of 8; bench/model_only.py). The graph is exact for any padding, so each chunk is cut
        to its own longest row and the rows are put back in request order; answers do not change. With
        `chunk_threads` > 1 the chunks run in parallel (64 SST sentences: 5.4 -> 3.3 ms on 2 threads).
        """
        lengths = feeds["lengths"]
        if len(lengths) <= chunk:
            return self.output(name, feeds)
        order = np.argsort(lengths, kind="stable")
        parts = []
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            width = int(lengths[rows].max())
            parts.append((rows, {k: v[rows] if v.ndim == 1 else v[rows, :width] for k, v in feeds.items()}))
        outputs = self._map(lambda part: self.output(name, part[1]), parts)
        first = outputs[0]
        # Per-step outputs ([batch, time, ...]) come back as wide as the batch's longest row; padding stays zero.
        shape = (
            (len(lengths), int(lengths.max()), *first.shape[2:]) if first.ndim > 2 else (len(lengths), *first.shape[1:])
        )
        result = np.zeros(shape, dtype=first.dtype)
        for (rows, _), part in zip(parts, outputs, strict=True):
            result[rows, : part.shape[1]] = part
        return result

    def _map(self, call: Callable[[Any], npt.NDArray[Any]], items: list[Any]) -> list[npt.NDArray[Any]]:
        if self.chunk_threads <= 1 or len(items) < 2:
            return [call(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.chunk_threads, thread_name_prefix="chunks")
        return list(self._pool.map(call, items))

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "task": m.task,
            "name": m.name,
            "version": m.version,
            "model": m.model_id,
            "sha256": m.sha256,
            "metrics": m.metrics,
            "providers": self.providers,
            "threads": self.threads,
        }


def verify_files(directory: Path) -> tuple[Manifest, Encoder]:
    """The checks that need no session (cheap enough for the main process before any worker starts): the manifest
    parses, the model file exists with the manifest's sha256, the vocabulary builds the task's encoder."""
    manifest = Manifest.read(directory)
    model_path = directory / manifest.model_file
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file named by the manifest does not exist")
    actual = file_sha256(model_path)
    if actual != manifest.sha256:
        raise ArtifactError(f"{model_path}: sha256 check failed: manifest says {manifest.sha256}, file is {actual}")
    return manifest, load_encoder(directory, manifest)


def check_io(path: Path, manifest: Manifest, session: ort.InferenceSession) -> None:
    """The graph's inputs and outputs must be exactly the manifest's, with the same dtypes and ranks."""
    for kind, declared, actual in (
        ("input", manifest.io.inputs, session.get_inputs()),
        ("output", manifest.io.outputs, session.get_outputs()),
    ):
        names = sorted(a.name for a in actual)
        if names != sorted(declared):
            raise ArtifactError(
                f"{path}: {kind} names check failed: manifest says {sorted(declared)}, graph has {names}"
            )
        for arg in actual:
            _check_tensor(path, kind, arg, declared[arg.name])
    io = manifest.io
    named = [io.tokens, io.logits, *(n for pair in io.state or [] for n in pair)]
    known = {*io.inputs, *io.outputs}
    for name in named:
        if name is not None and name not in known:
            raise ArtifactError(f"{path}: io check failed: {name!r} is not one of the graph's inputs or outputs")


def _check_tensor(path: Path, kind: str, arg: Any, spec: TensorSpec) -> None:
    dtype = _ORT_DTYPES.get(arg.type, arg.type)
    if dtype != spec.dtype:
        raise ArtifactError(f"{path}: {kind} {arg.name!r} dtype check failed: manifest {spec.dtype}, graph {dtype}")
    if len(arg.shape) != len(spec.shape):
        raise ArtifactError(f"{path}: {kind} {arg.name!r} rank check failed: manifest {spec.shape}, graph {arg.shape}")
    for want, have in zip(spec.shape, arg.shape, strict=True):
        if isinstance(want, int) and isinstance(have, int) and want != have:
            raise ArtifactError(
                f"{path}: {kind} {arg.name!r} shape check failed: manifest {spec.shape}, graph {arg.shape}"
            )


def check_labels(path: Path, manifest: Manifest) -> None:
    """Labels (sentiment) and tags (ner) must be present; their count is checked against the warm-up output."""
    if manifest.task == "sentiment" and not manifest.labels:
        raise ArtifactError(f"{path.parent / 'manifest.json'}: labels check failed: a sentiment manifest needs labels")
    if manifest.task == "ner" and not manifest.tags:
        raise ArtifactError(f"{path.parent / 'manifest.json'}: tags check failed: a NER manifest needs tags")


def check_width(model: OnnxModel, output: npt.NDArray[Any], names: list[str], what: str) -> None:
    if output.shape[-1] != len(names):
        raise ArtifactError(
            f"{model.directory / 'manifest.json'}: {what} count check failed: "
            f"manifest lists {len(names)}, the model outputs {output.shape[-1]}"
        )
