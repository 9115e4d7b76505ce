"""Word tokenization with character offsets, close to the Penn-Treebank style of SST-2 and CoNLL-2003.

Social-media text keeps its units whole: a URL, an e-mail address, an @mention and a #hashtag are one token each.

Both datasets were tokenized PTB-style ("do n't", "it 's", punctuation apart, "U.S." kept whole, and so are an
initial or a title before a word: "P. Simmons", "Mr. Major", "Acme Inc. said", and "C$" before an amount), so raw
user text is split the same way before its words are looked up. Every token carries its [start, end) offsets into
the original text, which /ner returns to clients.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TOKEN = re.compile(
    r"""
      (?:https?://|www\.)[^\s<>"]*[^\s<>".,;:!?)\]}'"]  # URLs, whole, without the punctuation that ends a sentence
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+       # e-mail addresses
    | (?<!\w)[@\#]\w+                   # @mentions and #hashtags
    | \w+(?=n't\b)                      # "do" of "don't": PTB splits the negation off
    | n't\b
    | '(?:s|re|ve|ll|d|m)\b             # clitics: "it 's", "we 're"
    | (?:[^\W\d_]\.){2,}                # abbreviations: U.S., e.g.
    | (?=[^\W\d_]{1,4}[.$])(?<!\w)(?:   # (a cheap guard: up to 4 letters then . or $, at a word's start)
          [^\W\d_]\.(?=\s+[^\W\d_])      # an initial before a word: "P. Simmons", "S. Korean"
        | (?:mrs?|ms|dr|st|jr|sr|gen|gov|sen|prof|lt|col|capt|sgt|mt|vs)\.(?=\s+\w)  # a title before a word
        | (?:inc|corp|co|ltd)\.(?=\s+\w|\s*[,;:)]|\s*$)  # company suffixes: "Acme Inc. said", "Acme Corp."
        | [^\W\d_]{1,3}\$(?=\s*\d)         # currencies before an amount: C$ 1.1, US$ 5
      )
    | \d+(?:[.,:/-]\d+)+                # numbers, dates, times: 1,000  3.5  1996-08-22
    | \w+(?:[-.]\w+|'(?!(?:s|re|ve|ll|d|m)\b)\w+)*  # words with inner - . or ' (well-known, O'Neill), not clitics
    | \.\.\.|--                         # multi-character punctuation
    | \S                                # anything else: one character (punctuation, symbols, emoji)
    """,
    re.VERBOSE | re.IGNORECASE,
)


class Token(NamedTuple):
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens whose offsets satisfy `text[t.start:t.end] == t.text`."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def tokenize_words(text: str) -> list[str]:
    """The tokens' texts only: what `tokenize` gives without building offsets (the sentiment model's hot path)."""
    return _TOKEN.findall(text)


def has_tokens(text: str) -> bool:
    """Whether `tokenize(text)` would give at least one token (stops at the first)."""
    return _TOKEN.search(text) is not None


def join_tokens(tokens: list[str]) -> tuple[str, list[Token]]:
    """Pre-tokenized input: the text is the tokens joined by single spaces, and each token keeps its offsets."""
    spans, start = [], 0
    for token in tokens:
        spans.append(Token(token, start, start + len(token)))
        start += len(token) + 1
    return " ".join(tokens), spans
