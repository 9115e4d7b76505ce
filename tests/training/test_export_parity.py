"""ONNX vs PyTorch for every exported model, three levels deep (minGPT's import test): values, then greedy ids,
then decoded text, at batch sizes and lengths other than the export example's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rnntext.vocab import UNK, Vocab
from training import ner_artifact, sentiment_artifact, train_charlm
from training.export import ParityError, Signature, check_parity, export_onnx, write_checked
from training.models import CharLM, NerTagger, SentimentClassifier

SHAPES = [(batch, steps) for batch in (1, 7) for steps in (1, 5, 300)]


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def charlm() -> tuple[CharLM, Vocab, bytes]:
    torch.manual_seed(1)
    vocab = Vocab.build("First Citizen:\nBefore we proceed any further, hear me speak.", specials=(UNK,))
    model = CharLM(len(vocab), 8, 32, 2, 0.0, "torch-lstm").eval()
    example = (torch.zeros(2, 3, dtype=torch.long), *model.initial_state(2))
    return model, vocab, export_onnx(model, example, train_charlm.SIGNATURE)


def test_charlm_logits_match_at_other_shapes(charlm: tuple[CharLM, Vocab, bytes]) -> None:
    model, vocab, onnx_bytes = charlm
    cases = [train_charlm.parity_case(model, b, t, len(vocab)) for b, t in SHAPES]
    report = check_parity(model, onnx_bytes, train_charlm.SIGNATURE, cases, atol=1e-5)
    assert report.shapes_checked == [[b, t] for b, t in SHAPES]


def test_charlm_state_carried_in_chunks_equals_one_long_call(charlm: tuple[CharLM, Vocab, bytes]) -> None:
    _model, vocab, onnx_bytes = charlm
    sess = session(onnx_bytes)
    tokens = np.random.default_rng(0).integers(0, len(vocab), (3, 70))
    zeros = np.zeros((2, 3, 32), np.float32)
    whole, _, _ = sess.run(None, {"tokens": tokens, "h0": zeros, "c0": zeros})
    pieces, h, c = [], zeros, zeros
    for start, stop in [(0, 20), (20, 21), (21, 50), (50, 70)]:
        logits, h, c = sess.run(None, {"tokens": tokens[:, start:stop], "h0": h, "c0": c})
        pieces.append(logits)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)


def test_charlm_greedy_ids_and_text_match(charlm: tuple[CharLM, Vocab, bytes]) -> None:
    model, vocab, onnx_bytes = charlm
    sess = session(onnx_bytes)
    prompt = vocab.encode("First ")
    torch_ids, onnx_ids = [], []
    with torch.no_grad():
        logits, h, c = model(torch.tensor([prompt]), *model.initial_state(1))
        for _ in range(60):
            torch_ids.append(int(logits[0, -1].argmax()))
            logits, h, c = model(torch.tensor([[torch_ids[-1]]]), h, c)
    zeros = np.zeros((2, 1, 32), np.float32)
    logits_np, h_np, c_np = sess.run(None, {"tokens": np.array([prompt]), "h0": zeros, "c0": zeros})
    for _ in range(60):
        onnx_ids.append(int(logits_np[0, -1].argmax()))
        logits_np, h_np, c_np = sess.run(None, {"tokens": np.array([[onnx_ids[-1]]]), "h0": h_np, "c0": c_np})
    assert onnx_ids == torch_ids
    assert "".join(vocab.decode(onnx_ids)) == "".join(vocab.decode(torch_ids))


@pytest.mark.parametrize("cell", ["torch-lstm", "lstm", "gru", "rnn"])
def test_sentiment_parity_and_padding(cell: str) -> None:
    torch.manual_seed(2)
    model = SentimentClassifier(50, 8, 16, 2, 0.0, 2, cell, pad_id=0).eval()
    onnx_bytes = export_onnx(model, sentiment_artifact.padded_case(2, 4, 50, 0), sentiment_artifact.SIGNATURE)
    cases = [sentiment_artifact.padded_case(b, t, 50, 0) for b, t in SHAPES]
    assert check_parity(model, onnx_bytes, sentiment_artifact.SIGNATURE, cases, atol=1e-5).max_abs_diff < 1e-5
    # A padded batch gives each row the answer it gets alone: the backward direction starts at its own end.
    tokens, lengths = sentiment_artifact.padded_case(7, 40, 50, 0)
    sess = session(onnx_bytes)
    (batched,) = sess.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
    for i, n in enumerate(lengths.tolist()):
        (alone,) = sess.run(None, {"tokens": tokens[i : i + 1, :n].numpy(), "lengths": lengths[i : i + 1].numpy()})
        np.testing.assert_allclose(batched[i], alone[0], atol=1e-6)


@pytest.mark.parametrize("cell", ["torch-lstm", "gru"])
def test_ner_parity_and_padding(cell: str) -> None:
    torch.manual_seed(3)
    encoder = _ner_encoder()
    model = NerTagger(len(encoder.words), len(encoder.chars), 8, 4, 6, 16, 1, 0.0, 9, cell, 0, 0).eval()
    onnx_bytes = export_onnx(model, ner_artifact.padded_case(2, 4, encoder), ner_artifact.SIGNATURE)
    cases = [ner_artifact.padded_case(b, t, encoder) for b, t in SHAPES]
    assert check_parity(model, onnx_bytes, ner_artifact.SIGNATURE, cases, atol=1e-5).max_abs_diff < 1e-5
    words, chars, lengths = ner_artifact.padded_case(7, 30, encoder)
    sess = session(onnx_bytes)
    (batched,) = sess.run(None, {"words": words.numpy(), "chars": chars.numpy(), "lengths": lengths.numpy()})
    for i, n in enumerate(lengths.tolist()):
        feeds = {
            "words": words[i : i + 1, :n].numpy(),
            "chars": chars[i : i + 1, :n].numpy(),
            "lengths": lengths[i : i + 1].numpy(),
        }
        (alone,) = sess.run(None, feeds)
        np.testing.assert_allclose(batched[i, :n], alone[0], atol=1e-5)


def test_export_refuses_to_write_a_graph_that_disagrees(tmp_path: Path) -> None:
    """A graph whose time axis is frozen passes at the example shape and must fail everywhere else."""
    torch.manual_seed(4)
    model = SentimentClassifier(30, 4, 8, 1, 0.0, 2, "torch-lstm", pad_id=0).eval()
    frozen = Signature(sentiment_artifact.SIGNATURE.inputs, sentiment_artifact.SIGNATURE.outputs, dynamic_axes={})
    example = sentiment_artifact.padded_case(2, 4, 30, 0)
    with pytest.raises((ParityError, Exception)) as err:
        write_checked(tmp_path / "model.onnx", model, example, frozen, [sentiment_artifact.padded_case(7, 5, 30, 0)])
    assert not (tmp_path / "model.onnx").exists(), f"an artifact was written despite {err.value}"


def test_parity_error_names_output_and_difference() -> None:
    model = SentimentClassifier(30, 4, 8, 1, 0.0, 2, "torch-lstm", pad_id=0).eval()
    onnx_bytes = export_onnx(model, sentiment_artifact.padded_case(2, 4, 30, 0), sentiment_artifact.SIGNATURE)
    with torch.no_grad():
        model.members[0].head.bias[0] += 1.0  # the PyTorch model drifts after export
    with pytest.raises(ParityError, match=r"output 'probs' .* max abs diff"):
        check_parity(model, onnx_bytes, sentiment_artifact.SIGNATURE, [sentiment_artifact.padded_case(1, 5, 30, 0)])


def _ner_encoder():  # type: ignore[no-untyped-def]
    from rnntext.encoders import NerEncoder

    words = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    return NerEncoder(Vocab.build(NerEncoder.word_key(w) for w in words), Vocab.build("".join(words)), 24)
