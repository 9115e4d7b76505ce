"""Large batches run as length-sorted chunks: every row gets exactly what one padded call gives it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnntext.encoders import NerEncoder, SentimentEncoder, pad
from service.runtime import OnnxModel

SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "The European Commission said on Thursday it disagreed with German advice to consumers to shun British lamb "
    "until scientists determine whether mad cow disease can be transmitted to sheep .",
    "a gripping , funny film",
    "!",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = np.random.default_rng(0)
    return [SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 27)]  # 27: chunks of 8 plus a remainder


@pytest.mark.parametrize("chunk_threads", [1, 2])
def test_sentiment_chunks_equal_one_call(artifacts: Path, texts: list[str], chunk_threads: int) -> None:
    model = OnnxModel.load(artifacts / "sentiment", chunk_threads=chunk_threads)
    assert isinstance(model.encoder, SentimentEncoder)
    tokens, lengths = pad([model.encoder.encode(t) for t in texts], model.encoder.vocab.pad_id or 0)
    feeds = {"tokens": tokens, "lengths": lengths}
    np.testing.assert_allclose(model.output_by_length("probs", feeds), model.output("probs", feeds), atol=1e-6)


@pytest.mark.parametrize("chunk_threads", [1, 2])
def test_ner_chunks_equal_one_call(artifacts: Path, texts: list[str], chunk_threads: int) -> None:
    model = OnnxModel.load(artifacts / "ner", chunk_threads=chunk_threads)
    assert isinstance(model.encoder, NerEncoder)
    features = [model.encoder.encode(t.split()) for t in texts]
    words, lengths = pad([f.words for f in features], model.encoder.words.pad_id or 0)
    chars, _ = pad([f.chars for f in features], model.encoder.chars.pad_id or 0)
    feeds = {"words": words, "chars": chars, "lengths": lengths}
    chunked, whole = model.output_by_length("log_probs", feeds), model.output("log_probs", feeds)
    assert chunked.shape == whole.shape
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(chunked[row, :n], whole[row, :n], atol=1e-5)
