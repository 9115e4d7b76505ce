"""One-hot 'hello' through a recurrent layer, one character at a time and all at once.

Why: the smallest picture of what a recurrent layer is: one cell applied at every step, carrying a hidden state.
Feeding the characters one by one (passing the state along) gives exactly the outputs of one call on the whole
sequence, which is what lets /generate pay one step per new character.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python examples/hello_onehot.py`: make `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor

from training.cells import Kind, Recurrent

CHARS = "helo"  # the alphabet of 'hello'; a character's index is its one-hot position


def one_hot(text: str) -> Tensor:
    """[len(text), 4] one-hot rows: h = [1, 0, 0, 0], e = [0, 1, 0, 0], l = [0, 0, 1, 0], o = [0, 0, 0, 1]."""
    return torch.eye(len(CHARS))[[CHARS.index(c) for c in text]]


def main(kind: Kind = "rnn", seed: int = 0) -> dict[str, Tensor]:
    """Returns the step-by-step outputs, the whole-sequence outputs and the final hidden state."""
    torch.manual_seed(seed)
    cell = Recurrent(kind, input_size=len(CHARS), hidden_size=2)  # 4 one-hot inputs -> 2 hidden units
    inputs = one_hot("hello").unsqueeze(0)  # [batch 1, time 5, input 4]

    state = None
    step_outputs = []
    with torch.no_grad():
        for t in range(inputs.shape[1]):
            out, state = cell(inputs[:, t : t + 1], state)  # one character: [1, 1, 4] -> [1, 1, 2]
            step_outputs.append(out)
            print(f"{'hello'[t]!r} -> output {out.view(-1).tolist()}")
        whole, final = cell(inputs)  # the whole word at once: [1, 5, 4] -> [1, 5, 2]
    by_step = torch.cat(step_outputs, dim=1)
    print(f"whole sequence output {list(whole.shape)}, same as step by step: {torch.allclose(by_step, whole)}")
    h_n = final[0] if isinstance(final, tuple) else final
    return {"step_outputs": by_step, "sequence_outputs": whole, "h_n": h_n}


if __name__ == "__main__":
    main()
