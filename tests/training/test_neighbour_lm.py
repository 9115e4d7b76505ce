"""The auxiliary LM of the NER tagger: it predicts only real neighbours, from the right half of the states."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rnntext.vocab import Vocab  # noqa: E402
from training.neighbour_lm import NeighbourLM, class_table  # noqa: E402


def test_rare_words_share_one_class() -> None:
    vocab = Vocab.build(["the", "the", "the", "cat", "cat", "sat"])
    table = class_table(vocab, ["the", "the", "the", "cat", "cat", "sat"], size=2)
    assert table[vocab.id("the")] == 0 and table[vocab.id("cat")] == 1
    assert table[vocab.id("sat")] == 2 and table[vocab.id("<unk>")] == 2


def lm_and_inputs() -> tuple[NeighbourLM, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    lm = NeighbourLM(hidden=4, classes=torch.arange(10) % 6)
    states = torch.randn(2, 5, 8)
    words = torch.randint(0, 10, (2, 5))
    return lm, states, words, torch.tensor([5, 3])


def test_padding_does_not_count() -> None:
    lm, states, words, lengths = lm_and_inputs()
    before = lm.loss(states, words, lengths)
    states[1, 3:] = 100.0  # beyond the second sentence's 3 words
    words[1, 3:] = 9
    assert torch.allclose(lm.loss(states, words, lengths), before)


def test_each_direction_reads_only_its_own_half() -> None:
    """The forward half must not see the word it predicts: changing the last word's forward state (which
    predicts nothing) or the first word's backward state (likewise) leaves the loss unchanged."""
    lm, states, words, lengths = lm_and_inputs()
    before = lm.loss(states, words, lengths)
    states[0, 4, :4] += 5.0  # forward state after the last word
    states[:, 0, 4:] += 5.0  # backward state before the first word
    assert torch.allclose(lm.loss(states, words, lengths), before)
    states[0, 0, :4] += 5.0  # the forward state that predicts word 1
    assert not torch.allclose(lm.loss(states, words, lengths), before)


def test_one_word_sentences_give_zero() -> None:
    lm = NeighbourLM(hidden=2, classes=torch.arange(3))
    loss = lm.loss(
        torch.randn(3, 1, 4, requires_grad=True), torch.zeros(3, 1, dtype=torch.long), torch.ones(3, dtype=torch.long)
    )
    assert loss.item() == 0.0
