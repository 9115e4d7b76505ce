"""Plain RNN, GRU and LSTM layers written with tensor operations only.

Why this exists: the recurrence should be readable (docs/recurrent-networks.md walks through these very lines),
and the weights must stay interchangeable with torch's fused `nn.LSTM` / `nn.GRU` / `nn.RNN`. So the gate
equations, the gate order and the parameter names follow torch exactly: `Recurrent.load_state_dict` accepts a
torch layer's state dict and the other way round, and `to_torch_layer` hands the fused layer to the ONNX
exporter, which would otherwise trace this Python loop over time into a graph of fixed length.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

Kind = Literal["lstm", "gru", "rnn"]
State = Tensor | tuple[Tensor, Tensor]
# The carried state of one direction of one layer: (h,) for rnn and gru, (h, c) for lstm.
StepState = tuple[Tensor, ...]
Step = Callable[[Tensor, StepState, Tensor, Tensor], StepState]

# How many gate blocks are stacked in weight_ih / weight_hh (rows = gates * hidden_size), in torch's order.
GATES: dict[str, int] = {"rnn": 1, "gru": 3, "lstm": 4}
CELLS = ("torch-lstm", "lstm", "gru", "rnn")
TORCH_LAYERS: dict[str, type[nn.LSTM] | type[nn.GRU] | type[nn.RNN]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def rnn_step(xw: Tensor, state: StepState, w_hh: Tensor, b_hh: Tensor) -> StepState:
    """Elman cell, torch's `nonlinearity="tanh"`.

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh), where xw = W_ih x + b_ih was computed for all steps at once.
    """
    (h,) = state
    return (torch.tanh(xw + torch.addmm(b_hh, h, w_hh.T)),)


def gru_step(xw: Tensor, state: StepState, w_hh: Tensor, b_hh: Tensor) -> StepState:
    """GRU cell with torch's gate order (r, z, n) and its placement of b_hn inside the reset gate.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
    """
    (h,) = state
    x_r, x_z, x_n = xw.chunk(3, dim=1)
    h_r, h_z, h_n = torch.addmm(b_hh, h, w_hh.T).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,)


def lstm_step(xw: Tensor, state: StepState, w_hh: Tensor, b_hh: Tensor) -> StepState:
    """LSTM cell with torch's gate order (i, f, g, o).

    i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*);  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    c' = f * c + i * g
    h' = o * tanh(c')
    """
    h, c = state
    gates = xw + torch.addmm(b_hh, h, w_hh.T)
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


STEPS: dict[str, Step] = {"rnn": rnn_step, "gru": gru_step, "lstm": lstm_step}


class Recurrent(nn.Module):
    """Drop-in for `nn.LSTM` / `nn.GRU` / `nn.RNN(batch_first=True)`, plus per-sequence `lengths`.

    Multi-layer and optionally bidirectional; dropout (in training mode) on every layer's output except the last,
    as torch does. Parameters are named and shaped like torch's (`weight_ih_l0`, `bias_hh_l1_reverse`, ...).
    """

    def __init__(
        self,
        kind: Kind,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(
                f"input_size, hidden_size and num_layers must be >= 1, got {input_size}, {hidden_size}, {num_layers}"
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.kind: Kind = kind
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = float(dropout)
        self.batch_first = True  # attributes code written for torch's layers tends to read
        self.num_directions = 2 if bidirectional else 1
        rows = GATES[kind] * hidden_size
        # Registration order = torch's, so state dicts list the same keys in the same order.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(rows, layer_input)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(rows, hidden_size)))
                self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(rows)))
                self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(rows)))
        self.reset_parameters()

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        """torch's initialisation: every weight and bias uniform in +-1/sqrt(hidden_size)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.kind}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """Run all layers over x [batch, time, input].

        Returns (output [batch, time, dirs*hidden], h_n [layers*dirs, batch, hidden]), with h_n replaced by
        (h_n, c_n) for lstm. With lengths [batch], steps at or past a sequence's length leave its state unchanged
        and output zeros, so h_n is the state at the last real step and the backward direction, which walks
        from the end, simply keeps its initial state until it reaches the last real step.
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must be [batch, time, {self.input_size}], got {list(x.shape)}")
        batch, steps, _ = x.shape
        h0, c0 = self._initial_state(state, x)
        mask = None if lengths is None else self._mask(lengths, batch, steps, x.device)
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        out = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                k = layer * self.num_directions + direction
                init: StepState = (h0[k], c0[k]) if self.kind == "lstm" else (h0[k],)
                y, final = self._run(out, init, f"l{layer}{suffix}", reverse=direction == 1, mask=mask)
                outputs.append(y)
                h_n.append(final[0])
                c_n.extend(final[1:])
            out = torch.cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                out = F.dropout(out, self.dropout, training=True)
        if self.kind == "lstm":
            return out, (torch.stack(h_n), torch.stack(c_n))
        return out, torch.stack(h_n)

    def _run(
        self, x: Tensor, state: StepState, name: str, reverse: bool, mask: Tensor | None
    ) -> tuple[Tensor, StepState]:
        """One direction of one layer: the input projection for all steps in one matmul, then the loop."""
        w_ih, w_hh = getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}")
        b_ih, b_hh = getattr(self, f"bias_ih_{name}"), getattr(self, f"bias_hh_{name}")
        xw = torch.matmul(x, w_ih.T) + b_ih  # [batch, time, gates * hidden]
        step = STEPS[self.kind]
        steps = x.shape[1]
        outputs: list[Tensor] = [x.new_empty(0)] * steps
        for t in reversed(range(steps)) if reverse else range(steps):
            new = step(xw[:, t], state, w_hh, b_hh)
            if mask is None:
                state = new
                outputs[t] = new[0]
            else:
                keep = mask[:, t]  # [batch, 1]: True while t is a real step of that sequence
                state = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
                outputs[t] = torch.where(keep, new[0], 0.0)
        return torch.stack(outputs, dim=1), state

    def _mask(self, lengths: Tensor, batch: int, steps: int, device: torch.device) -> Tensor:
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must be [batch] = [{batch}], got {list(lengths.shape)}")
        lengths = lengths.to(device)
        if bool((lengths < 0).any()) or bool((lengths > steps).any()):
            raise ValueError(f"lengths must be in [0, {steps}] (the time axis of x), got {lengths.tolist()}")
        return (torch.arange(steps, device=device)[None, :] < lengths[:, None]).unsqueeze(-1)

    def _initial_state(self, state: State | None, x: Tensor) -> tuple[Tensor, Tensor]:
        """Zeros when no state is given; otherwise check the shape torch expects, naming what was wrong."""
        shape = (self.num_layers * self.num_directions, x.shape[0], self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            return zeros, zeros
        if self.kind == "lstm":
            if not isinstance(state, tuple) or len(state) != 2:
                raise ValueError("lstm state must be a tuple (h0, c0)")
            h0, c0 = state
        else:
            if not isinstance(state, Tensor):
                raise ValueError(f"{self.kind} state must be a single tensor h0")
            h0 = c0 = state
        for tensor_name, tensor in (("h0", h0), ("c0", c0)):
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{tensor_name} must be {list(shape)}, got {list(tensor.shape)}")
        return h0, c0


def make_recurrent(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    """Build the recurrent layer a model config names: torch's fused LSTM or one of ours (same weights either way)."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}")
    if cell == "torch-lstm":
        # torch warns that dropout does nothing with one layer; it does nothing here either.
        return nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
    return Recurrent(cast(Kind, cell), input_size, hidden_size, num_layers, bidirectional, dropout)


def to_torch_layer(module: Recurrent) -> nn.LSTM | nn.GRU | nn.RNN:
    """The fused torch layer (batch_first=True) with the same weights, device, dtype and train/eval mode.

    Export uses it: tracing `Recurrent` unrolls the time loop into a fixed-length graph, while torch's fused layer
    becomes one ONNX LSTM/GRU/RNN node with a dynamic time axis.
    """
    first = next(module.parameters())
    layer: nn.LSTM | nn.GRU | nn.RNN = TORCH_LAYERS[module.kind](
        module.input_size,
        module.hidden_size,
        module.num_layers,
        batch_first=True,
        bidirectional=module.bidirectional,
        dropout=module.dropout if module.num_layers > 1 else 0.0,
        device=first.device,
        dtype=first.dtype,
    )
    layer.load_state_dict(module.state_dict())
    layer.train(module.training)
    return layer


def run_padded(
    layer: nn.Module, x: Tensor, state: State | None = None, lengths: Tensor | None = None
) -> tuple[Tensor, State]:
    """Call either kind of layer on a padded batch with the same result.

    `Recurrent` takes lengths directly; torch's layers need pack_padded_sequence around them (the pattern that
    also exports with ONNX `sequence_lens` wired). Padded output steps are zeros in both cases.
    """
    if isinstance(layer, Recurrent):
        return cast(tuple[Tensor, State], layer(x, state, lengths))
    if lengths is None:
        return cast(tuple[Tensor, State], layer(x, state))
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, final = layer(packed, state)
    padded, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return padded, final
