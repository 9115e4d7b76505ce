"""A language-modelling objective beside the tagger's (Rei 2017, "Semi-supervised multitask learning for sequence
labeling"): the BiLSTM's forward state at word t predicts word t + 1, its backward state predicts word t - 1.

It is trained on the NER training sentences only, as an auxiliary loss, and is not exported: the served graph,
its inputs and outputs are unchanged; only the weights the tagger learns differ. It needs one BiLSTM layer:
a second layer's forward state has read the first layer's backward states, i.e. the word it would predict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from rnntext.vocab import Vocab
from training.models import NerTagger


def class_table(vocab: Vocab, training_words: Iterable[str], size: int) -> Tensor:
    """Vocabulary id -> LM class: the `size` most frequent training words get a class each, every other word
    (and <unk>, <pad>) the shared class `size`, so the softmax stays small however large the vocabulary is."""
    frequent = [w for w, _ in Counter(training_words).most_common(size)]
    table = torch.full((len(vocab),), size, dtype=torch.long)
    for i, word in enumerate(frequent):
        table[vocab.id(word)] = i
    return table


class NeighbourLM(nn.Module):
    def __init__(self, hidden: int, classes: Tensor, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("classes", classes)
        outputs = int(classes.max()) + 1
        # One small tanh layer before each softmax, as in Rei (2017): the LM reads the states without
        # making the tagger's features serve the softmax directly.
        self.next_word = nn.Sequential(nn.Linear(hidden, width), nn.Tanh(), nn.Linear(width, outputs))
        self.previous_word = nn.Sequential(nn.Linear(hidden, width), nn.Tanh(), nn.Linear(width, outputs))
        self.hidden = hidden

    def loss(self, states: Tensor, words: Tensor, lengths: Tensor) -> Tensor:
        """Mean cross-entropy of both directions; `states` [batch, time, 2 * hidden] (forward, backward halves),
        `words` the sentence's true ids [batch, time] (before word dropout), padded beyond `lengths`."""
        steps = words.shape[1]
        pairs = torch.arange(steps - 1).unsqueeze(0) < (lengths - 1).unsqueeze(1)  # [batch, time - 1]
        if not bool(pairs.any()):  # one-word sentences only: no neighbours to predict
            return states.sum() * 0.0
        targets = self.classes[words]
        forward = states[:, :-1, : self.hidden][pairs]
        backward = states[:, 1:, self.hidden :][pairs]
        return 0.5 * (
            nn.functional.cross_entropy(self.next_word(forward), targets[:, 1:][pairs])
            + nn.functional.cross_entropy(self.previous_word(backward), targets[:, :-1][pairs])
        )


class TaggerWithLM(nn.Module):
    """The tagger and its auxiliary LM, trained, checkpointed and averaged together; `tagger` alone is exported.

    Its forward gives the tag log-probabilities and the LM's loss from one pass of the BiLSTM."""

    def __init__(self, tagger: NerTagger, lm: NeighbourLM) -> None:
        super().__init__()
        self.tagger = tagger
        self.lm = lm

    def forward(self, words: Tensor, chars: Tensor, lengths: Tensor, true_words: Tensor) -> tuple[Tensor, Tensor]:
        states = self.tagger.states(words, chars, lengths)
        return self.tagger.tag_log_probs(states), self.lm.loss(states, true_words, lengths)
