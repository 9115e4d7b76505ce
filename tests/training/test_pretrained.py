"""Pretrained vectors from the MiniLM wheel: numpy-only safetensors reading, WordPiece, and meaningful init."""

from __future__ import annotations

import numpy as np
import pytest

pretrained = pytest.importorskip("training.pretrained")


@pytest.fixture(scope="module")
def minilm() -> tuple[dict[str, int], np.ndarray]:
    try:
        return pretrained.load_minilm()
    except RuntimeError as err:
        pytest.skip(str(err))


def test_embedding_matrix_shape(minilm: tuple[dict[str, int], np.ndarray]) -> None:
    vocab, table = minilm
    assert table.shape == (30522, 384) == (len(vocab), 384)
    assert np.isfinite(table).all()


def test_wordpiece_is_greedy_longest_match(minilm: tuple[dict[str, int], np.ndarray]) -> None:
    vocab, _ = minilm
    inverse = {i: t for t, i in vocab.items()}
    assert [inverse[i] for i in pretrained.wordpiece("film", vocab)] == ["film"]
    pieces = [inverse[i] for i in pretrained.wordpiece("unbelievably", vocab)]
    assert "".join(p.removeprefix("##") for p in pieces) == "unbelievably" and len(pieces) > 1
    assert pretrained.wordpiece("x" * 101, vocab) == []


def test_init_puts_related_words_closer(minilm: tuple[dict[str, int], np.ndarray]) -> None:
    words = [*pretrained.whole_words(minilm[0])[3000:4000], "awful", "terrible", "film", "movie"]
    vectors, share = pretrained.init_embeddings(words, 64, seed=0)
    assert vectors.shape == (len(words), 64) and share > 0.99
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    awful, terrible, film, movie = unit[-4:]
    assert awful @ terrible > awful @ film and film @ movie > film @ terrible
