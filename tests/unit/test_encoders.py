"""rnntext.encoders: padding, and the three encoders' ids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntext.encoders import CharEncoder, NerEncoder, SentimentEncoder, normalize_sentiment_word, pad
from rnntext.vocab import Vocab


def test_pad_two_and_three_dimensions() -> None:
    batch, lengths = pad([np.array([1, 2, 3]), np.array([4])], value=0)
    assert batch.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]
    chars, lengths = pad([np.ones((2, 3), dtype=np.int64), np.full((1, 5), 2)], value=9)
    assert chars.shape == (2, 2, 5) and lengths.tolist() == [2, 1]
    assert chars[0, 0].tolist() == [1, 1, 1, 9, 9] and chars[1, 1].tolist() == [9] * 5
    assert batch.dtype == np.int64


def test_pad_empty_list() -> None:
    with pytest.raises(ValueError, match="empty"):
        pad([], 0)


def test_char_encoder_round_trip_and_unknowns() -> None:
    enc = CharEncoder(Vocab.build("hello world", specials=("<unk>",)))
    ids = enc.encode("hello")
    assert enc.decode(ids.tolist()) == "hello"
    assert enc.unknown_chars("hi 😀") == ["i", "😀"]
    assert enc.encode("😀").tolist() == [enc.vocab.unk_id]


def test_sentiment_encoder_lowercases_and_keeps_head_and_tail() -> None:
    words = [f"w{i}" for i in range(10)]
    enc = SentimentEncoder(Vocab.build(words), max_tokens=4)
    assert enc.words("A Good FILM") == ["a", "good", "film"]
    ids = enc.encode(" ".join(words))
    assert enc.vocab.decode(ids.tolist()) == ["w0", "w1", "w8", "w9"]
    assert normalize_sentiment_word('"') == "''" and normalize_sentiment_word("-LRB-") == "("


def test_ner_encoder_folds_digits_and_clips_long_words() -> None:
    words = Vocab.build(["eu", "0000"])
    chars = Vocab.build(list("EUabcdefghij"))
    enc = NerEncoder(words, chars, max_word_chars=4)
    features = enc.encode(["EU", "1996", "abcdefghij"])
    assert features.words.tolist() == [words.id("eu"), words.id("0000"), words.unk_id]
    assert features.chars.shape == (3, 4)
    assert chars.decode(features.chars[2].tolist()) == list("abij")  # prefix and suffix of a long word
    assert features.chars[0, 2:].tolist() == [chars.pad_id] * 2


@given(st.lists(st.sampled_from([" ", "\n", "\t", "\u00a0", "<br />", "<BR>", "a", ".", "😀", "\u200b"])).map("".join))
def test_has_words_agrees_with_words(text: str) -> None:
    assert SentimentEncoder.has_words(text) == bool(SentimentEncoder.words(text))
