"""The CRF against brute force: its loss is -log p(gold path) over all allowed paths, and the service's Viterbi
with its exported scores finds the most probable path."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from rnntext.tags import Transitions, allowed_transitions, constrained_decode_batch
from training.crf import CRF

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    trans, n = crf.scores(), len(TAGS)
    score = trans[n, path[0]] + emissions[0, path[0]] + crf.end[path[-1]]
    for t in range(1, len(path)):
        score = score + trans[path[t - 1], path[t]] + emissions[t, path[t]]
    return score


def trained_crf(seed: int) -> CRF:
    crf = CRF(allowed_transitions(TAGS))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(crf.transitions.shape, generator=generator))
        crf.end.copy_(torch.randn(crf.end.shape, generator=generator))
    return crf


def test_loss_is_the_negative_log_probability_of_the_gold_path_per_sentence() -> None:
    crf = trained_crf(0)
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([4, 2, 1])
    emissions = torch.randn(3, 4, len(TAGS), generator=generator)
    gold = torch.tensor([[1, 2, 0, 3], [3, 4, -100, -100], [0, -100, -100, -100]])
    expected = []
    for row, length in enumerate(lengths.tolist()):
        e = emissions[row, :length]
        paths = itertools.product(range(len(TAGS)), repeat=length)
        log_z = torch.logsumexp(torch.stack([path_score(crf, e, p) for p in paths]), dim=0)
        expected.append(log_z - path_score(crf, e, tuple(gold[row, :length].tolist())))
    assert torch.allclose(crf.nll(emissions, gold, lengths), torch.stack(expected).mean(), atol=1e-4)


def test_forbidden_moves_get_no_probability_and_no_gradient() -> None:
    crf = trained_crf(2)
    emissions = torch.zeros(1, 2, len(TAGS))
    loss = crf.nll(emissions, torch.tensor([[0, 1]]), torch.tensor([2]))
    loss.backward()
    assert crf.transitions.grad is not None
    forbidden = torch.from_numpy(~allowed_transitions(TAGS))
    assert crf.transitions.grad[forbidden].abs().max() == 0


def test_viterbi_with_exported_scores_finds_the_best_allowed_path() -> None:
    crf = trained_crf(3)
    exported = crf.export()
    transitions = Transitions(np.array(exported["transitions"], np.float32), np.array(exported["end"], np.float32))
    allowed = allowed_transitions(TAGS)
    generator = torch.Generator().manual_seed(4)
    emissions = torch.log_softmax(torch.randn(4, 5, len(TAGS), generator=generator), dim=-1)
    lengths = np.array([5, 3, 1, 4])
    decoded = constrained_decode_batch(emissions.numpy(), lengths, allowed, transitions)
    for row, length in enumerate(lengths):
        e = emissions[row, :length]
        best = max(
            itertools.product(range(len(TAGS)), repeat=int(length)), key=lambda p: float(path_score(crf, e, p).detach())
        )
        assert tuple(decoded[row]) == best
