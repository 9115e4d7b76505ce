"""A batch of five-letter words, one-hot encoded, through a recurrent layer in one call.

Why: batching is how the service keeps a CPU busy. The batch axis comes first (batch_first=True), every word is
an independent sequence, and the layer returns one output per word per step plus one final state per word.
The second half adds a word of three letters padded to five: with `lengths` its padded steps output zeros and its
final state is the one after its own last letter.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python examples/five_letter_words.py`: make `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor

from training.cells import Kind, Recurrent

CHARS = "helo"
WORDS = ["hello", "eolll", "lleel"]  # the classic batch: three 'words' over the alphabet of 'hello'


def encode(words: list[str], steps: int = 5) -> Tensor:
    """[batch, steps, 4] one-hot, zero rows after a word's end."""
    x = torch.zeros(len(words), steps, len(CHARS))
    for b, word in enumerate(words):
        for t, char in enumerate(word):
            x[b, t, CHARS.index(char)] = 1.0
    return x


def main(kind: Kind = "rnn", seed: int = 0) -> dict[str, Tensor]:
    """Returns the batch outputs [3, 5, 2], final states [1, 3, 2], and a padded batch run with lengths."""
    torch.manual_seed(seed)
    cell = Recurrent(kind, input_size=len(CHARS), hidden_size=2)
    with torch.no_grad():
        outputs, final = cell(encode(WORDS))
        h_n = final[0] if isinstance(final, tuple) else final
        print(f"batch of {len(WORDS)} words: outputs {list(outputs.shape)}, final hidden {list(h_n.shape)}")

        padded_words = ["hello", "leo"]
        lengths = torch.tensor([len(w) for w in padded_words])
        padded_out, padded_final = cell(encode(padded_words), lengths=lengths)
        padded_h = padded_final[0] if isinstance(padded_final, tuple) else padded_final
        alone, alone_final = cell(encode(["leo"], steps=3))
        alone_h = alone_final[0] if isinstance(alone_final, tuple) else alone_final
    print(f"'leo' padded to 5: steps 4-5 output {padded_out[1, 3:].tolist()}")
    print(f"final state of padded 'leo' equals 'leo' alone: {torch.allclose(padded_h[:, 1], alone_h[:, 0])}")
    return {
        "outputs": outputs,
        "h_n": h_n,
        "padded_outputs": padded_out,
        "padded_h_n": padded_h,
        "alone_outputs": alone,
        "alone_h_n": alone_h,
    }


if __name__ == "__main__":
    main()
