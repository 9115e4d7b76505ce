"""Learn 'hihell' -> 'ihello': predict the next character at every step (many-to-many).

Why: the smallest character language model. The input is a word shifted by one, the target is the word itself,
so each output step must name the character that comes next. /generate's char LM is this model, grown up: a
bigger vocabulary, more hidden units, and sampling from the predictions instead of reading them once.
The classic version uses the RNN's hidden state directly as the 5 logits; a linear head here decouples the
hidden size from the vocabulary, as the real models do.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python examples/hihell.py`: make `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor, nn

from training.cells import Kind, Recurrent

IDX2CHAR = ["h", "i", "e", "l", "o"]
SOURCE, TARGET = "hihell", "ihello"


def to_ids(text: str) -> Tensor:
    return torch.tensor([IDX2CHAR.index(c) for c in text])


class CharModel(nn.Module):
    """ids -> (one-hot or embedding) -> Recurrent -> linear head -> logits per step."""

    def __init__(self, kind: Kind, hidden_size: int, embedding_dim: int | None = None) -> None:
        super().__init__()
        vocab = len(IDX2CHAR)
        # None: one-hot input, a fixed identity lookup. Otherwise a learned dense vector per character.
        self.embedding = None if embedding_dim is None else nn.Embedding(vocab, embedding_dim)
        self.rnn = Recurrent(kind, vocab if embedding_dim is None else embedding_dim, hidden_size)
        self.head = nn.Linear(hidden_size, vocab)

    def forward(self, ids: Tensor) -> Tensor:
        x = nn.functional.one_hot(ids, len(IDX2CHAR)).float() if self.embedding is None else self.embedding(ids)
        out, _ = self.rnn(x)
        logits: Tensor = self.head(out)
        return logits


@dataclass
class Result:
    prediction: str  # the decoded argmax at every step after training
    losses: list[float]  # one per epoch
    epochs: int  # epochs run (training stops once the prediction is the target)
    parameters: int  # trainable parameter count


def train(
    kind: Kind = "rnn", hidden_size: int = 8, embedding_dim: int | None = None, epochs: int = 100, seed: int = 0
) -> Result:
    torch.manual_seed(seed)
    model = CharModel(kind, hidden_size, embedding_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = to_ids(SOURCE).unsqueeze(0), to_ids(TARGET)  # [1, 6] and [6]
    losses: list[float] = []
    prediction = ""
    for _ in range(epochs):
        logits = model(x)[0]  # [6, 5]
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        prediction = "".join(IDX2CHAR[i] for i in logits.argmax(dim=1).tolist())
        if prediction == TARGET and loss.item() < 0.1:
            break
    with torch.no_grad():
        prediction = "".join(IDX2CHAR[i] for i in model(x)[0].argmax(dim=1).tolist())
    parameters = sum(p.numel() for p in model.parameters())
    return Result(prediction, losses, len(losses), parameters)


def main(kind: Kind = "rnn", seed: int = 0) -> Result:
    torch.set_num_threads(1)
    result = train(kind=kind, seed=seed)
    print(f"{kind}: {SOURCE!r} -> {result.prediction!r} after {result.epochs} epochs, loss {result.losses[-1]:.4f}")
    return result


if __name__ == "__main__":
    main()
