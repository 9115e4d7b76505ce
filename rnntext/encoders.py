"""Turn text into model ids, the same way at training and serving time.

Each encoder is built from a vocabulary file plus a few settings stored in the manifest's `encoder` block,
so a served model sees exactly the ids it was trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rnntext.tokenize import Token, has_tokens, tokenize, tokenize_words
from rnntext.vocab import Vocab

IntArray = npt.NDArray[np.int64]
_DIGIT = re.compile(r"\d")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # IMDb reviews (and pasted web text) carry <br />


@dataclass(frozen=True)
class CharEncoder:
    """Characters of the char LM; characters it never saw map to <unk>, which generation never emits."""

    vocab: Vocab

    def encode(self, text: str) -> IntArray:
        return np.array(self.vocab.encode(text), dtype=np.int64)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab.decode(ids))

    def unknown_chars(self, text: str) -> list[str]:
        return sorted({c for c in text if c not in self.vocab})


@dataclass(frozen=True)
class SentimentEncoder:
    """Lower-cased PTB-style words (SST-2 is lower-cased), at most `max_tokens` of them."""

    vocab: Vocab
    max_tokens: int

    @staticmethod
    def words(text: str) -> list[str]:
        return [normalize_sentiment_word(w) for w in tokenize_words(_HTML_BREAK.sub(" ", text))]

    @staticmethod
    def has_words(text: str) -> bool:
        """`bool(words(text))`, found without tokenizing the whole text (request validation)."""
        return has_tokens(_HTML_BREAK.sub(" ", text))

    def encode(self, text: str) -> IntArray:
        return self.encode_words(self.words(text))

    def encode_words(self, words: list[str]) -> IntArray:
        if len(words) > self.max_tokens:
            # Keep the opening and the closing of a long review: verdicts sit at either end more than in between.
            head = self.max_tokens // 2
            words = words[:head] + words[len(words) - (self.max_tokens - head) :]
        return np.array(self.vocab.encode(words), dtype=np.int64)


# SST writes double quotes as `` and '' and brackets as -lrb- / -rrb- in places; users type " and ( ).
_SST_SPELLING = {'"': "''", "-lrb-": "(", "-rrb-": ")"}


def normalize_sentiment_word(word: str) -> str:
    word = word.lower()
    return _SST_SPELLING.get(word, word)


@dataclass(frozen=True)
class NerFeatures:
    words: IntArray  # [time]
    chars: IntArray  # [time, max chars in a word]


@dataclass(frozen=True)
class NerEncoder:
    """Words lower-cased with digits folded to 0 (the embedding), characters as written (case is a strong cue)."""

    words: Vocab
    chars: Vocab
    max_word_chars: int

    @staticmethod
    def word_key(word: str) -> str:
        return _DIGIT.sub("0", word.lower())

    def encode(self, tokens: list[str]) -> NerFeatures:
        word_ids = np.array([self.words.id(self.word_key(t)) for t in tokens], dtype=np.int64)
        width = max([1, *(min(len(t), self.max_word_chars) for t in tokens)])
        pad = self.chars.pad_id if self.chars.pad_id is not None else 0
        char_ids = np.full((len(tokens), width), pad, dtype=np.int64)
        for i, token in enumerate(tokens):
            ids = self.chars.encode(_clip_word(token, self.max_word_chars))
            char_ids[i, : len(ids)] = ids
        return NerFeatures(word_ids, char_ids)

    def tokenize(self, text: str) -> list[Token]:
        return tokenize(text)

    def pad_batch(self, features: list[NerFeatures]) -> tuple[IntArray, IntArray, IntArray]:
        """The model's inputs for sentences padded together: words [batch, time], chars [batch, time, chars] and
        lengths [batch]; padding takes the vocabularies' pad ids, which the model ignores (lengths are fed)."""
        words, lengths = pad([f.words for f in features], self.words.pad_id or 0)
        chars, _ = pad([f.chars for f in features], self.chars.pad_id or 0)
        return words, chars, lengths


def _clip_word(word: str, limit: int) -> str:
    # Prefix and suffix carry the morphology (capital letter, "-based", "ville"); the middle of a huge token does not.
    if len(word) <= limit:
        return word
    return word[: limit // 2] + word[len(word) - (limit - limit // 2) :]


def pad(sequences: list[IntArray], value: int) -> tuple[IntArray, IntArray]:
    """Stack variable-length arrays along a new batch axis, padding every other axis to its maximum.

    Returns the batch and the lengths along the first axis (the time steps each sequence really has).
    """
    if not sequences:
        raise ValueError("cannot pad an empty list of sequences")
    shape = tuple(max(s.shape[d] for s in sequences) for d in range(sequences[0].ndim))
    batch = np.full((len(sequences), *shape), value, dtype=np.int64)
    for i, seq in enumerate(sequences):
        index: tuple[int | slice, ...] = (i, *(slice(0, n) for n in seq.shape))
        batch[index] = seq
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return batch, lengths
