"""The three networks: embedding + LSTM, one per endpoint shape (one-to-many, many-to-one, many-to-many).

Every recurrent layer comes from `recurrent_layer`, so `--cell` swaps torch's fused LSTM for the from-scratch
cells in `training.cells`. Before export, `fuse_for_export` puts the equivalent torch layer back, because a
Python loop over time would be traced into a graph of fixed length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.cells import Recurrent, make_recurrent, run_padded, to_torch_layer


def fuse_for_export(model: nn.Module) -> nn.Module:
    """Swap every from-scratch recurrent layer for torch's fused layer with the same weights (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, Recurrent):
            setattr(model, name, to_torch_layer(child))
        else:
            fuse_for_export(child)
    return model


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout on [batch, time, features]: one mask per sequence, the same at every step."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


class CharLM(nn.Module):
    """Next-character model with a stateful signature: (tokens, h0, c0) -> (logits, hn, cn).

    Regularised as AWD-LSTM is (Merity et al. 2017), in training only: `weight_drop` drops hidden-to-hidden
    weights (one mask per batch, so the recurrence itself is regularised), `embed_drop` and `dropout` are locked
    dropout on the LSTM's input and output. The exported graph is the plain fused LSTM (eval mode uses no masks).
    """

    def __init__(
        self,
        vocab_size: int,
        embed: int,
        hidden: int,
        layers: int,
        dropout: float,
        cell: str,
        weight_drop: float = 0.0,
        embed_drop: float | None = None,
    ) -> None:
        super().__init__()
        if cell not in ("torch-lstm", "lstm"):
            raise ValueError("the char LM's stateful ONNX signature carries (h, c): use an LSTM cell")
        if weight_drop and cell != "torch-lstm":
            raise ValueError("weight drop is implemented on torch's fused LSTM: use --cell=torch-lstm")
        self.hidden, self.layers = hidden, layers
        self.dropout, self.weight_drop = dropout, weight_drop
        self.embed_drop = dropout if embed_drop is None else embed_drop
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = make_recurrent(cell, embed, hidden, layers, bidirectional=False, dropout=dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def initial_state(self, batch: int) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros(self.layers, batch, self.hidden)
        return zeros, zeros.clone()

    def forward(self, tokens: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = locked_dropout(self.embed(tokens), self.embed_drop, self.training)
        if self.training and self.weight_drop:
            weights = {
                name: F.dropout(w, self.weight_drop) if name.startswith("weight_hh") else w
                for name, w in self.rnn.named_parameters()
            }
            out, (hn, cn) = torch.func.functional_call(self.rnn, weights, (x, (h0, c0)))
        else:
            out, (hn, cn) = self.rnn(x, (h0, c0))
        return self.head(locked_dropout(out, self.dropout, self.training)), hn, cn


class SentimentClassifier(nn.Module):
    """Bidirectional LSTM over words; max and mean pooling over the real (unpadded) steps -> label probabilities.

    With `members` > 1 it is a small ensemble in one graph: the members share the word embedding (most of the
    parameters) and each has its own LSTM and head, trained on its own loss from its own initialisation and
    dropout masks; the served probabilities are the members' mean.

    `temperature` (1 until calibration sets it; not in the state dict, so checkpoints are unaffected) divides the
    logits before the softmax, and the exported graph carries it as a constant.
    """

    def __init__(
        self,
        vocab_size: int,
        embed: int,
        hidden: int,
        layers: int,
        dropout: float,
        labels: int,
        cell: str,
        pad_id: int,
        members: int = 1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=pad_id)
        self.members = nn.ModuleList(
            SentimentMember(embed, hidden, layers, dropout, labels, cell) for _ in range(members)
        )
        self.register_buffer("temperature", torch.ones(()), persistent=False)

    def member_logits(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """[members, batch, labels]: what training fits, each member on its own."""
        embedded = self.embed(tokens)
        mask = (torch.arange(tokens.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
        return torch.stack([member(embedded, lengths, mask) for member in self.members])

    def forward(self, tokens: Tensor, lengths: Tensor, per_member: bool = False) -> Tensor:
        """Label probabilities (the exported graph); `per_member=True` gives the members' logits instead, so that
        training goes through `forward` (DistributedDataParallel averages gradients only there)."""
        logits = self.member_logits(tokens, lengths)
        return logits if per_member else torch.softmax(logits / self.temperature, dim=-1).mean(0)


class SentimentMember(nn.Module):
    def __init__(self, embed: int, hidden: int, layers: int, dropout: float, labels: int, cell: str) -> None:
        super().__init__()
        self.rnn = make_recurrent(cell, embed, hidden, layers, bidirectional=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, labels)

    def forward(self, embedded: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        out, _ = run_padded(self.rnn, self.drop(embedded), lengths=lengths)
        mean = (out * mask).sum(1) / lengths.unsqueeze(1).to(out.dtype)
        maxed = out.masked_fill(~mask, -1e4).max(1).values
        return self.head(self.drop(torch.cat([mean, maxed], dim=1)))


class NerTagger(nn.Module):
    """Word embedding + character CNN features -> bidirectional LSTM -> per-token tag log-probabilities.

    `crf` (a `training.crf.CRF`) is held here so that the optimiser, the checkpoints and the best weights carry
    its transition scores with the network's."""

    def __init__(
        self,
        words: int,
        chars: int,
        word_embed: int,
        char_embed: int,
        char_filters: int,
        hidden: int,
        layers: int,
        dropout: float,
        tags: int,
        cell: str,
        pad_id: int,
        char_pad_id: int,
        crf: nn.Module | None = None,
        locked: bool = False,
    ) -> None:
        super().__init__()
        self.crf = crf  # trained with the network; not part of the exported graph (its scores ship in the manifest)
        self.word_embed = nn.Embedding(words, word_embed, padding_idx=pad_id)
        self.char_embed = nn.Embedding(chars, char_embed, padding_idx=char_pad_id)
        self.char_conv = nn.Conv1d(char_embed, char_filters, kernel_size=3, padding=1)
        self.char_pad_id = char_pad_id
        self.rnn = make_recurrent(cell, word_embed + char_filters, hidden, layers, bidirectional=True, dropout=dropout)
        self.dropout, self.locked = dropout, locked
        self.head = nn.Linear(2 * hidden, tags)

    def drop(self, x: Tensor) -> Tensor:
        """Dropout on [batch, time, features]: a fresh mask per word, or with `locked` one mask per sentence
        (variational dropout, Gal & Ghahramani 2016; Reimers & Gurevych 2017 found it the best for BiLSTM taggers)."""
        if self.locked:
            return locked_dropout(x, self.dropout, self.training)
        return F.dropout(x, self.dropout, self.training)

    def char_features(self, chars: Tensor) -> Tensor:
        """Max over each word's characters of a width-3 convolution; padding characters are masked out."""
        batch, time, width = chars.shape
        flat = chars.reshape(batch * time, width)
        conv = self.char_conv(self.char_embed(flat).transpose(1, 2))  # [batch*time, filters, width]
        conv = conv.masked_fill((flat == self.char_pad_id).unsqueeze(1), -1e4)
        return conv.max(dim=2).values.reshape(batch, time, -1)

    def states(self, words: Tensor, chars: Tensor, lengths: Tensor) -> Tensor:
        """The BiLSTM's outputs [batch, time, 2 * hidden]: forward half, then backward half."""
        features = torch.cat([self.word_embed(words), self.char_features(chars)], dim=2)
        out, _ = run_padded(self.rnn, self.drop(features), lengths=lengths)
        return out

    def tag_log_probs(self, states: Tensor) -> Tensor:
        return torch.log_softmax(self.head(self.drop(states)), dim=-1)

    def forward(self, words: Tensor, chars: Tensor, lengths: Tensor) -> Tensor:
        return self.tag_log_probs(self.states(words, chars, lengths))
