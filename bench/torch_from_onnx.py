"""The committed ONNX weights back in the PyTorch modules of `training.models`, for the PyTorch baselines.

The PyTorch checkpoints are not committed, only `model.onnx`. Its initializers hold every weight:
- named ones (`embed.weight`, `head.bias`, `char_conv.weight`, ...) are state-dict entries as they are;
- a `MatMul` against an unnamed initializer (`/head/MatMul`) is a Linear layer, stored transposed;
- each ONNX `LSTM` node is one layer of a torch LSTM (`/rnn/LSTM` is layer 0 of `rnn`, `/rnn/LSTM_1` layer 1):
  W [dirs, 4H, in] and R [dirs, 4H, H] with the gates in ONNX order (i, o, f, c), torch's order being (i, f, g, o);
  B [dirs, 8H] is the input bias then the recurrent bias; direction 1 is torch's `_reverse`.

`TorchSession` then puts the torch module behind onnxruntime's `run(names, feeds)` interface, so the serving code
(`service.tasks`: sentiment, ner, generation) runs unchanged on PyTorch: only the runtime differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from rnntext.manifest import Manifest
from service.runtime import OnnxModel, verify_files
from training.models import CharLM, NerTagger, SentimentClassifier

# Rows of torch's (i, f, g, o) blocks taken from ONNX's (i, o, f, c) blocks.
ONNX_TO_TORCH_GATES = (0, 2, 3, 1)


class MappingError(ValueError):
    """An initializer could not be placed, or a parameter was left without one; the message names them."""


def build_module(manifest: Manifest, vocab: dict[str, Any]) -> nn.Module:
    """The training module with the artifact's architecture (manifest "architecture" + vocabulary pad ids)."""
    a = manifest.architecture
    cell = "torch-lstm"  # the export always swaps in torch's fused layer; weights are the same either way
    if manifest.task == "charlm":
        return CharLM(int(a["vocab"]), int(a["embed"]), int(a["hidden"]), int(a["layers"]), 0.0, cell)
    if manifest.task == "sentiment":
        labels = len(manifest.labels or [])
        pad = int(vocab.get("pad_id") or 0)
        model = SentimentClassifier(
            int(a["vocab"]),
            int(a["embed"]),
            int(a["hidden"]),
            int(a["layers"]),
            0.0,
            labels,
            cell,
            pad,
            int(a.get("members", 1)),
        )
        model.temperature.fill_(float(a.get("temperature", 1.0)))  # calibration, a constant in the graph
        return model
    if manifest.task == "ner":
        words, chars = vocab, vocab["chars"]  # word vocabulary at the top, characters under "chars"
        return NerTagger(
            int(a["words"]),
            int(a["chars"]),
            int(a["word_embed"]),
            int(a["char_embed"]),
            int(a["char_filters"]),
            int(a["hidden"]),
            int(a["layers"]),
            0.0,
            len(manifest.tags or []),
            cell,
            int(words.get("pad_id") or 0),
            int(chars.get("pad_id") or 0),
        )
    raise MappingError(f"unknown task {manifest.task!r}")


def _gates(w: npt.NDArray[np.float32], hidden: int) -> npt.NDArray[np.float32]:
    blocks = [w[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in ONNX_TO_TORCH_GATES], axis=0)


def onnx_state_dict(graph: onnx.GraphProto) -> dict[str, npt.NDArray[np.float32]]:
    """Torch state-dict entries recovered from the graph's initializers (see the module docstring)."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, npt.NDArray[np.float32]] = {}
    for name, value in inits.items():
        if not name.startswith("onnx::"):
            state[name] = value
    layer_of: dict[str, int] = {}
    for node in graph.node:
        match = re.fullmatch(r"/(.+)/(LSTM|MatMul|Gemm)(?:_\d+)?", node.name)
        if not match:
            continue
        module = match.group(1).replace("/", ".")
        if node.op_type == "LSTM":
            layer = layer_of.get(module, 0)
            layer_of[module] = layer + 1
            hidden = next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "hidden_size")
            w, r = inits[node.input[1]], inits[node.input[2]]
            b = inits[node.input[3]] if len(node.input) > 3 and node.input[3] in inits else None
            for d in range(w.shape[0]):
                suffix = f"l{layer}" + ("_reverse" if d == 1 else "")
                state[f"{module}.weight_ih_{suffix}"] = _gates(w[d], hidden)
                state[f"{module}.weight_hh_{suffix}"] = _gates(r[d], hidden)
                bias = b[d] if b is not None else np.zeros(8 * hidden, np.float32)
                state[f"{module}.bias_ih_{suffix}"] = _gates(bias[: 4 * hidden], hidden)
                state[f"{module}.bias_hh_{suffix}"] = _gates(bias[4 * hidden :], hidden)
        elif node.op_type == "MatMul" and node.input[1] in inits and node.input[1].startswith("onnx::"):
            state[f"{module}.weight"] = inits[node.input[1]].T.copy()
    return state


def load_into(module: nn.Module, graph: onnx.GraphProto, where: Path) -> nn.Module:
    """Copy every weight; a missing, surplus or mis-shaped entry is a MappingError naming it."""
    recovered = onnx_state_dict(graph)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(recovered))
    surplus = sorted(set(recovered) - set(expected))
    if missing or surplus:
        raise MappingError(f"{where}: parameters without an initializer {missing}; initializers not placed {surplus}")
    for name, value in recovered.items():
        if tuple(expected[name].shape) != value.shape:
            raise MappingError(f"{where}: {name}: torch shape {tuple(expected[name].shape)} != ONNX {value.shape}")
    module.load_state_dict({k: torch.tensor(np.array(v)) for k, v in recovered.items()})
    return module.eval()


def load_torch(directory: Path) -> tuple[nn.Module, onnx.ModelProto, Manifest]:
    manifest = Manifest.read(directory)
    graph = onnx.load(str(directory / manifest.model_file))
    vocab = json.loads((directory / manifest.vocab_file).read_text())
    return load_into(build_module(manifest, vocab), graph.graph, directory), graph, manifest


@dataclass
class _Arg:
    name: str
    shape: list[int | str]
    type: str


def _args(values: Any) -> list[_Arg]:
    out = []
    for v in values:
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
        elem = v.type.tensor_type.elem_type
        out.append(_Arg(v.name, dims, {onnx.TensorProto.INT64: "tensor(int64)"}.get(elem, "tensor(float)")))
    return out


class TorchSession:
    """The subset of `onnxruntime.InferenceSession` the service uses, answered by the torch module (eager)."""

    def __init__(self, module: nn.Module, graph: onnx.ModelProto) -> None:
        self.module = module
        self.inputs, self.outputs = _args(graph.graph.input), _args(graph.graph.output)

    def get_inputs(self) -> list[_Arg]:
        return self.inputs

    def get_outputs(self) -> list[_Arg]:
        return self.outputs

    def get_providers(self) -> list[str]:
        return ["torch-eager"]

    def run(self, names: list[str] | None, feeds: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        args = [torch.from_numpy(np.asarray(feeds[a.name])) for a in self.inputs]
        with torch.inference_mode():
            result = self.module(*args)
        values = result if isinstance(result, tuple) else (result,)
        by_name = {o.name: v.numpy() for o, v in zip(self.outputs, values, strict=True)}
        return [by_name[n] for n in (names or [o.name for o in self.outputs])]


def torch_model(directory: Path, threads: int | None = None, chunk_threads: int = 1) -> OnnxModel:
    """An `OnnxModel` whose session is PyTorch eager: same checks of the files, same encoder, same callers (and the
    same parallel chunks of a large batch; torch modules may run from several threads in inference mode)."""
    if threads is not None:
        torch.set_num_threads(threads)
    manifest, encoder = verify_files(directory)
    module, graph, _ = load_torch(directory)
    session = TorchSession(module, graph)
    return OnnxModel(
        directory,
        manifest,
        encoder,
        session,  # type: ignore[arg-type]
        session.get_providers(),
        torch.get_num_threads(),
        chunk_threads,
    )
