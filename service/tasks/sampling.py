"""Choose the next token from logits: greedy at temperature 0, else temperature, top-k and top-p sampling with a
seeded generator. Banned ids (the char LM's <unk>) are never chosen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.tasks.arrays import FloatArray


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None


def next_token_probs(logits: FloatArray, params: SamplingParams, banned: Sequence[int] = ()) -> npt.NDArray[np.float64]:
    """The distribution actually sampled from (float64, sums to 1); at temperature 0, one-hot on the argmax."""
    scores = np.asarray(logits, dtype=np.float64).copy()
    scores[list(banned)] = -np.inf
    if params.temperature == 0:
        onehot = np.zeros(scores.shape, dtype=np.float64)
        onehot[int(np.argmax(scores))] = 1.0
        return onehot
    scores -= scores.max()  # then dividing by a tiny temperature only overflows towards -inf, which exp maps to 0
    with np.errstate(over="ignore"):
        scores /= params.temperature
    if params.top_k is not None and params.top_k < scores.size:
        kth = np.partition(scores, -params.top_k)[-params.top_k]
        scores[scores < kth] = -np.inf
    probs: npt.NDArray[np.float64] = np.exp(scores)
    probs /= probs.sum()
    if params.top_p is not None and params.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, params.top_p)) + 1  # smallest prefix reaching top_p, at least one
        probs[order[keep:]] = 0.0
        probs /= probs.sum()
    return probs


def sample(logits: FloatArray, params: SamplingParams, rng: np.random.Generator, banned: Sequence[int] = ()) -> int:
    probs = next_token_probs(logits, params, banned)
    if params.temperature == 0:
        return int(np.argmax(probs))
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    index = min(index, probs.size - 1)
    while probs[index] == 0.0:  # float round-off at the top end can land on a zeroed tail entry
        index -= 1
    return index
