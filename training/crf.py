"""A linear-chain CRF over per-token tag scores: learned transition scores, trained with the forward algorithm.

The network's per-token scores are the emissions; the CRF adds `transitions[i, j]` for tag j after tag i (row
`n` is the start), and `end[j]` for ending on tag j. Moves the BIO scheme forbids (O -> I-PER) are fixed at a
large negative score and never learned, so training and the service's constrained Viterbi agree on them. The
exported graph keeps emitting per-token log-softmax scores: Viterbi's best path is unchanged by adding a
constant to every tag's score at a step, so log-probabilities plus these transitions decode exactly as the
CRF's own scores do (`rnntext.tags.constrained_decode_batch` takes both).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

FORBIDDEN = -1e4  # finite, so that sums stay finite in float32 and the gradient at allowed moves is exact


class CRF(nn.Module):
    def __init__(self, allowed: npt.NDArray[np.bool_]) -> None:
        super().__init__()
        starts_and_tags, tags = allowed.shape  # [tags + 1 (start), tags]
        self.register_buffer("mask", torch.from_numpy(~allowed))
        self.transitions = nn.Parameter(torch.zeros(starts_and_tags, tags))
        self.end = nn.Parameter(torch.zeros(tags))

    def scores(self) -> Tensor:
        """[tags + 1, tags]: the learned transitions with forbidden moves fixed at FORBIDDEN."""
        return self.transitions.masked_fill(self.mask, FORBIDDEN)

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Mean over the batch of -log p(tags | emissions); emissions [batch, time, tags], tags padded with any id."""
        steps, n = emissions.shape[1:]
        trans = self.scores()
        valid = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)  # [batch, time]
        safe = tags.clamp(min=0)
        # Score of the gold path.
        emitted = emissions.gather(2, safe.unsqueeze(2)).squeeze(2)  # [batch, time]
        moves = trans[safe[:, :-1], safe[:, 1:]]  # [batch, time - 1]
        gold = trans[n, safe[:, 0]] + emitted[:, 0]
        gold = gold + ((emitted[:, 1:] + moves) * valid[:, 1:]).sum(1)
        last = safe.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        gold = gold + self.end[last]
        # log Z by the forward algorithm; finished rows keep their alpha.
        alpha = trans[n] + emissions[:, 0]  # [batch, tags]
        for t in range(1, steps):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans[:n].unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(valid[:, t : t + 1], step, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        return (log_z - gold).mean()

    def export(self) -> dict[str, list[list[float]] | list[float]]:
        """What the manifest ships for the service's Viterbi (forbidden moves are the service's own mask)."""
        trans = self.transitions.detach().masked_fill(self.mask, 0.0)
        return {"transitions": trans.tolist(), "end": self.end.detach().tolist()}
