"""rnntext.tags: BIO spans, IOB1 -> IOB2, constrained Viterbi, conlleval-style scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnntext.tags import (
    Span,
    allowed_transitions,
    constrained_decode,
    constrained_decode_batch,
    entity_scores,
    iob1_to_iob2,
    span_scores,
    spans,
)

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_spans() -> None:
    assert spans(["B-PER", "I-PER", "O", "B-LOC"]) == [Span("PER", 0, 2), Span("LOC", 3, 4)]
    assert spans(["I-PER", "I-LOC"]) == [Span("PER", 0, 1), Span("LOC", 1, 2)]  # stray I- opens an entity
    assert spans(["B-PER", "B-PER"]) == [Span("PER", 0, 1), Span("PER", 1, 2)]
    assert spans([]) == []


def test_iob1_to_iob2() -> None:
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG",
    ]  # fmt: skip


def test_allowed_transitions() -> None:
    allowed = allowed_transitions(TAGS)
    start = len(TAGS)
    assert not allowed[start, TAGS.index("I-PER")]
    assert not allowed[TAGS.index("O"), TAGS.index("I-PER")]
    assert not allowed[TAGS.index("B-LOC"), TAGS.index("I-PER")]
    assert allowed[TAGS.index("B-PER"), TAGS.index("I-PER")] and allowed[TAGS.index("I-PER"), TAGS.index("I-PER")]
    assert allowed[TAGS.index("O"), TAGS.index("B-LOC")]


def test_constrained_decode_repairs_an_invalid_argmax() -> None:
    log_probs = np.log(np.array([[0.6, 0.1, 0.3, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0]]) + 1e-9)
    assert log_probs.argmax(1).tolist() == [0, 2]  # O, I-PER: invalid
    assert [TAGS[i] for i in constrained_decode(log_probs, allowed_transitions(TAGS))] == ["B-PER", "I-PER"]
    assert constrained_decode(np.zeros((0, 5)), allowed_transitions(TAGS)) == []


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_constrained_decode_is_always_valid_bio(steps: int, seed: int) -> None:
    log_probs = np.log(np.random.default_rng(seed).dirichlet(np.ones(len(TAGS)), size=steps))
    tags = [TAGS[i] for i in constrained_decode(log_probs, allowed_transitions(TAGS))]
    assert iob1_to_iob2(tags) == tags


def best_valid_path(log_probs: np.ndarray, allowed: np.ndarray) -> list[int]:
    """The highest-scoring allowed tag sequence, by trying every sequence (short inputs only)."""
    start = len(allowed) - 1
    candidates = [
        path
        for path in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs))
        if all(allowed[a, b] for a, b in zip((start, *path), path, strict=False))
    ]
    return list(max(candidates, key=lambda path: sum(log_probs[t, tag] for t, tag in enumerate(path))))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_batched_decode_finds_each_rows_best_valid_path(lengths: list[int], seed: int) -> None:
    """Rows of different lengths in one padded batch (padding filled with noise that must not matter) each get
    the best allowed path over their own tokens, the same as decoding the row alone."""
    allowed = allowed_transitions(TAGS)
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.dirichlet(np.full(len(TAGS), 0.3), size=(len(lengths), max(lengths) + 1)))
    decoded = constrained_decode_batch(log_probs, np.array(lengths), allowed)
    for row, n, path in zip(log_probs, lengths, decoded, strict=True):
        assert path == best_valid_path(row[:n], allowed) == constrained_decode(row[:n], allowed)


def test_entity_scores() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "O"]]
    scores = entity_scores(gold, predicted)
    assert scores["overall"]["precision"] == 100.0 and scores["overall"]["recall"] == 50.0
    assert scores["overall"]["f1"] == pytest.approx(200 / 3)
    assert scores["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}


def test_span_scores_count_character_spans_per_type() -> None:
    """Raw text is scored on character spans: one character off is a miss, for its type and overall."""
    gold = [{Span("PER", 0, 12), Span("LOC", 21, 26)}, {Span("ORG", 0, 2)}]
    predicted = [{Span("PER", 0, 12), Span("LOC", 21, 25)}, {Span("ORG", 0, 2), Span("MISC", 5, 9)}]
    scores = span_scores(gold, predicted)
    assert scores["PER"]["f1"] == scores["ORG"]["f1"] == 100.0
    assert scores["LOC"]["f1"] == 0.0 and scores["MISC"]["precision"] == 0.0 and scores["MISC"]["support"] == 0.0
    assert scores["overall"]["precision"] == 50.0 and scores["overall"]["recall"] == pytest.approx(200 / 3)
