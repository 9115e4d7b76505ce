"""`Recurrent` against torch's fused layers: same outputs, final states and gradients with copied weights.

Why so thorough: the from-scratch cells are only worth having if weights move both ways without surprises, so
every configuration the models use (1-3 layers, both directions, initial state, padded batches) is compared.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from training.cells import Recurrent, make_recurrent, run_padded, to_torch_layer

torch.set_num_threads(1)

ATOL = 1e-5
KINDS = ["lstm", "gru", "rnn"]
TORCH_CLASSES: dict[str, type[nn.LSTM] | type[nn.GRU] | type[nn.RNN]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def torch_twin(kind: str, input_size: int, hidden: int, layers: int, bidirectional: bool) -> nn.RNNBase:
    return TORCH_CLASSES[kind](input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)


def flat_state(state: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def compare(
    kind: str,
    batch: int,
    steps: int,
    input_size: int,
    hidden: int,
    layers: int,
    bidirectional: bool,
    with_state: bool,
    lengths: list[int] | None,
    seed: int = 0,
) -> None:
    """Run torch's layer and ours on the same data; assert outputs, final states and all gradients match."""
    generator = torch.Generator().manual_seed(seed)
    reference = torch_twin(kind, input_size, hidden, layers, bidirectional)
    ours = Recurrent(kind, input_size, hidden, layers, bidirectional)  # type: ignore[arg-type]
    ours.load_state_dict(reference.state_dict())

    dirs = 2 if bidirectional else 1
    x = torch.randn(batch, steps, input_size, generator=generator)
    state_shape = (layers * dirs, batch, hidden)
    init = [torch.randn(state_shape, generator=generator) for _ in range(2 if kind == "lstm" else 1)]
    length_tensor = None if lengths is None else torch.tensor(lengths, dtype=torch.int64)
    # Random weights for the loss, so every output position and state element gets its own gradient.
    out_w = torch.randn(batch, steps, dirs * hidden, generator=generator)
    state_w = [torch.randn(state_shape, generator=generator) for _ in init]

    results: list[dict[str, Tensor]] = []
    for layer in (reference, ours):
        xi = x.clone().requires_grad_(True)
        si = [s.clone().requires_grad_(True) for s in init]
        state: Tensor | tuple[Tensor, Tensor] | None = None
        if with_state:
            state = (si[0], si[1]) if kind == "lstm" else si[0]
        out, final = run_padded(layer, xi, state, length_tensor)
        finals = flat_state(final)
        loss = (out * out_w).sum() + sum((f * w).sum() for f, w in zip(finals, state_w, strict=True))
        loss.backward()
        # Every tensor that must match, by a name that says which one differed.
        named = {"output": out, **{f"final state {i}": f for i, f in enumerate(finals)}, "grad of x": xi.grad}
        named |= {f"grad of initial state {i}": s.grad for i, s in enumerate(si) if with_state}
        named |= {f"grad of {name}": p.grad for name, p in layer.named_parameters()}
        results.append({name: tensor for name, tensor in named.items() if tensor is not None})

    reference_results, our_results = results
    assert our_results.keys() == reference_results.keys()
    for name, expected in reference_results.items():
        assert_equal_within_atol(our_results[name], expected, name)


def assert_equal_within_atol(actual: Tensor, expected: Tensor, what: str) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0, msg=lambda message: f"{what}: {message}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_full_length(kind: str, layers: int, bidirectional: bool) -> None:
    compare(kind, 3, 6, 5, 7, layers, bidirectional, with_state=False, lengths=None)
    compare(kind, 2, 4, 3, 4, layers, bidirectional, with_state=True, lengths=None, seed=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_packed_padded(kind: str, layers: int, bidirectional: bool) -> None:
    # Unsorted lengths, one full-length, one of a single step; max length < time exercises total_length padding.
    compare(kind, 4, 7, 4, 6, layers, bidirectional, with_state=True, lengths=[3, 7, 1, 5])
    compare(kind, 3, 6, 3, 5, layers, bidirectional, with_state=False, lengths=[2, 4, 1], seed=2)


@settings(max_examples=50, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    batch=st.integers(1, 4),
    steps=st.integers(1, 6),
    input_size=st.integers(1, 6),
    hidden=st.integers(1, 8),
    layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    with_state=st.booleans(),
    data=st.data(),
)
def test_matches_torch_any_shape(
    kind: str,
    batch: int,
    steps: int,
    input_size: int,
    hidden: int,
    layers: int,
    bidirectional: bool,
    with_state: bool,
    data: st.DataObject,
) -> None:
    lengths = data.draw(st.none() | st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    compare(kind, batch, steps, input_size, hidden, layers, bidirectional, with_state, lengths)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_content_is_ignored_and_outputs_zero(kind: str) -> None:
    torch.manual_seed(0)
    layer = Recurrent(kind, 3, 4, num_layers=2, bidirectional=True)  # type: ignore[arg-type]
    lengths = torch.tensor([2, 5])
    x = torch.randn(2, 5, 3)
    noisy = x.clone()
    noisy[0, 2:] = 100.0
    out_a, state_a = layer(x, lengths=lengths)
    out_b, state_b = layer(noisy, lengths=lengths)
    torch.testing.assert_close(out_a, out_b)
    for a, b in zip(flat_state(state_a), flat_state(state_b), strict=True):
        torch.testing.assert_close(a, b)
    assert bool((out_a[0, 2:] == 0).all())
    # A padded sequence gives the same result as that sequence alone, unpadded.
    alone, _ = layer(x[:1, :2])
    torch.testing.assert_close(out_a[:1, :2], alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_to_torch_layer_same_outputs(kind: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    ours = Recurrent(kind, 4, 5, num_layers=2, bidirectional=bidirectional, dropout=0.3).eval()  # type: ignore[arg-type]
    fused = to_torch_layer(ours)
    assert isinstance(fused, TORCH_CLASSES[kind]) and fused.batch_first and not fused.training
    assert fused.dropout == 0.3 and fused.bidirectional == bidirectional
    x = torch.randn(3, 6, 4)
    for lengths in (None, torch.tensor([6, 2, 4])):
        a, sa = run_padded(ours, x, None, lengths)
        b, sb = run_padded(fused, x, None, lengths)
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
        for s, t in zip(flat_state(sa), flat_state(sb), strict=True):
            torch.testing.assert_close(s, t, atol=ATOL, rtol=0)


class PaddedOutputs(nn.Module):
    """What an exported model does with its recurrent layer: padded batch + lengths -> outputs."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        out, _ = run_padded(self.layer, x, None, lengths)
        return out


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_layer_exports_with_dynamic_batch_and_time(kind: str, tmp_path: Path) -> None:
    """The export path: fused layer + packing, legacy exporter; checked at shapes other than the example's."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    ours = Recurrent(kind, 4, 6, num_layers=2, bidirectional=True).eval()  # type: ignore[arg-type]
    model = PaddedOutputs(to_torch_layer(ours)).eval()
    path = tmp_path / f"{kind}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(2, 5, 4), torch.tensor([5, 3])),
            str(path),
            dynamo=False,
            input_names=["x", "lengths"],
            output_names=["out"],
            dynamic_axes={"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "out": {0: "batch", 1: "time"}},
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, steps, lengths in ((1, 1, [1]), (7, 30, [30, 1, 5, 17, 29, 2, 30])):
        x = torch.randn(batch, steps, 4)
        expected, _ = ours(x, lengths=torch.tensor(lengths))
        (got,) = session.run(None, {"x": x.numpy(), "lengths": torch.tensor(lengths).numpy()})
        assert got.shape == tuple(expected.shape)
        assert_equal_within_atol(torch.from_numpy(got), expected.detach(), f"onnx {batch}x{steps}")


@pytest.mark.parametrize("kind", KINDS)
def test_state_dicts_load_both_ways(kind: str) -> None:
    ours = Recurrent(kind, 3, 4, num_layers=3, bidirectional=True)  # type: ignore[arg-type]
    fused = torch_twin(kind, 3, 4, 3, True)
    assert list(ours.state_dict()) == list(fused.state_dict())
    fused.load_state_dict(ours.state_dict())  # strict: same names and shapes
    ours.load_state_dict(fused.state_dict())
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, fused.state_dict()[name])


def test_make_recurrent() -> None:
    lstm = make_recurrent("torch-lstm", 3, 4, num_layers=2, bidirectional=True, dropout=0.1)
    assert isinstance(lstm, nn.LSTM) and lstm.batch_first and lstm.bidirectional and lstm.num_layers == 2
    for cell in KINDS:
        layer = make_recurrent(cell, 3, 4, num_layers=2)
        assert isinstance(layer, Recurrent) and layer.kind == cell
    with pytest.raises(ValueError, match="cell must be one of"):
        make_recurrent("transformer", 3, 4)


def test_bad_inputs_name_the_problem() -> None:
    layer = Recurrent("lstm", 3, 4)
    with pytest.raises(ValueError, match=r"x must be \[batch, time, 3\]"):
        layer(torch.randn(2, 5))
    with pytest.raises(ValueError, match="tuple"):
        layer(torch.randn(2, 5, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="h0 must be"):
        layer(torch.randn(2, 5, 3), (torch.zeros(2, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="lengths must be in"):
        layer(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1]))


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(0)
    layer = Recurrent("gru", 3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(2, 4, 3)
    layer.eval()
    a, _ = layer(x)
    b, _ = layer(x)
    torch.testing.assert_close(a, b)
    layer.train()
    c, _ = layer(x)
    assert not torch.allclose(a, c)


def test_short_training_lowers_loss() -> None:
    """A tiny next-character model built on `Recurrent` learns a repeating pattern."""
    torch.manual_seed(0)
    text = "abcdeabcdeabcde"
    ids = torch.tensor([ord(c) - ord("a") for c in text])
    x, y = ids[:-1].unsqueeze(0), ids[1:].unsqueeze(0)
    embed, rnn, head = nn.Embedding(5, 8), Recurrent("lstm", 8, 16), nn.Linear(16, 5)
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.05)
    losses = []
    for _ in range(40):
        out, _ = rnn(embed(x))
        loss = nn.functional.cross_entropy(head(out).reshape(-1, 5), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses
