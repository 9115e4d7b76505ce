"""The NER tagger's dropout: one mask per word, or with `locked` one mask per sentence, and none in eval mode."""

from __future__ import annotations

import torch

from training.models import NerTagger


def tagger(locked: bool) -> NerTagger:
    return NerTagger(50, 20, 8, 4, 6, 16, 1, 0.5, 9, "torch-lstm", 0, 0, locked=locked)


def test_locked_dropout_keeps_one_mask_through_the_sentence() -> None:
    torch.manual_seed(0)
    x = torch.ones(4, 12, 32)
    dropped = tagger(locked=True).train().drop(x)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same features dropped at every word
    assert not torch.equal(dropped[0], dropped[1])  # sentences draw their own masks
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # kept features are scaled by 1 / (1 - p)


def test_plain_dropout_draws_a_mask_per_word() -> None:
    torch.manual_seed(0)
    dropped = tagger(locked=False).train().drop(torch.ones(4, 12, 32))
    assert not torch.equal(dropped, dropped[:, :1].expand_as(dropped))


def test_eval_mode_drops_nothing() -> None:
    x = torch.randn(2, 5, 32)
    for locked in (True, False):
        assert torch.equal(tagger(locked).eval().drop(x), x)
