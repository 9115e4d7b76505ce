"""Export to ONNX with batch and time dynamic, and refuse to keep a graph that disagrees with PyTorch.

We use the legacy TorchScript exporter (`dynamo=False`): the dynamo exporter freezes an LSTM's time axis to
the example's length (DESIGN.md). Parity is therefore checked at shapes *different* from the export example.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn

from training.models import fuse_for_export

Inputs = tuple[Tensor, ...]


class ParityError(AssertionError):
    pass


@dataclass(frozen=True)
class Signature:
    """Names of the graph's inputs and outputs and which of their axes are dynamic."""

    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]


@dataclass
class ParityReport:
    max_abs_diff: float = 0.0
    shapes_checked: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"max_abs_diff": self.max_abs_diff, "shapes_checked": self.shapes_checked}


def export_onnx(model: nn.Module, example: Inputs, signature: Signature) -> bytes:
    model = fuse_for_export(copy.deepcopy(model)).eval()  # parity then compares against the original cells
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that batch_first LSTMs with dynamic batch are traced; parity below is the check.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            buffer,
            input_names=signature.inputs,
            output_names=signature.outputs,
            dynamic_axes=signature.dynamic_axes,
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def check_parity(
    model: nn.Module,
    onnx_bytes: bytes,
    signature: Signature,
    cases: Sequence[Inputs],
    atol: float = 1e-4,
    run: Callable[[ort.InferenceSession, Inputs], list[np.ndarray]] | None = None,
) -> ParityReport:
    """Compare every output name by name, then shape, then values; the error carries the max difference."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if names != signature.outputs:
        raise ParityError(f"ONNX outputs are {names}, expected {signature.outputs}")
    report = ParityReport()
    model.eval()
    for case in cases:
        with torch.no_grad():
            expected = model(*case)
        expected = expected if isinstance(expected, tuple) else (expected,)
        feeds = {name: t.numpy() for name, t in zip(signature.inputs, case, strict=True)}
        got = run(session, case) if run else session.run(None, feeds)
        for name, want, have in zip(signature.outputs, expected, got, strict=True):
            if tuple(want.shape) != have.shape:
                raise ParityError(f"output {name!r}: ONNX shape {have.shape} != PyTorch {tuple(want.shape)}")
            diff = float(np.abs(want.numpy() - have).max()) if have.size else 0.0
            if not diff <= atol:
                raise ParityError(f"output {name!r} at input shapes {_shapes(case)}: max abs diff {diff:.3g} > {atol}")
            report.max_abs_diff = max(report.max_abs_diff, diff)
        report.shapes_checked.append(list(case[0].shape))
    return report


def write_checked(
    path: Path, model: nn.Module, example: Inputs, signature: Signature, cases: Sequence[Inputs]
) -> ParityReport:
    """Export, check, and only then write the file."""
    onnx_bytes = export_onnx(model, example, signature)
    report = check_parity(model, onnx_bytes, signature, cases)
    path.write_bytes(onnx_bytes)
    return report


def _shapes(case: Inputs) -> list[list[int]]:
    return [list(t.shape) for t in case]
