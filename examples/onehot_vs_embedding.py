"""The 'hihell' model twice, side by side: one-hot input vs a learned embedding.

Why: the service's models read ids through an embedding, and this shows what that is. An embedding lookup is a
one-hot vector times a weight matrix, done as an index instead of a multiplication; so one-hot input is the
special case of a fixed identity embedding. A learned, smaller embedding costs fewer parameters in the first
layer once the vocabulary is large (characters: tens; words: tens of thousands).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python examples/onehot_vs_embedding.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from examples.hihell import IDX2CHAR, SOURCE, Result, to_ids, train
from training.cells import Kind


def lookup_is_one_hot_matmul(embedding_dim: int = 3) -> bool:
    """embedding(ids) == one_hot(ids) @ embedding.weight: the identity the side-by-side rests on."""
    embedding = nn.Embedding(len(IDX2CHAR), embedding_dim)
    ids = to_ids(SOURCE)
    one_hot = nn.functional.one_hot(ids, len(IDX2CHAR)).float()
    return torch.allclose(embedding(ids), one_hot @ embedding.weight)


def main(kind: Kind = "lstm", seed: int = 0) -> dict[str, Result | bool]:
    torch.set_num_threads(1)
    same = lookup_is_one_hot_matmul()
    print(f"embedding lookup == one-hot @ weight: {same}")
    results: dict[str, Result | bool] = {"lookup_is_one_hot_matmul": same}
    for name, embedding_dim in (("one_hot", None), ("embedding", 3)):
        result = train(kind=kind, embedding_dim=embedding_dim, seed=seed)
        results[name] = result
        print(
            f"{name:>9}: {SOURCE!r} -> {result.prediction!r} in {result.epochs} epochs, "
            f"final loss {result.losses[-1]:.4f}, {result.parameters} parameters"
        )
    return results


if __name__ == "__main__":
    main()
