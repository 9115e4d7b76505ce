"""Readers for the three training formats, with errors that name the file and line."""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rnntext.tags import iob1_to_iob2


class DataFormatError(ValueError):
    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class LabeledText:
    text: str
    label: int


def read_labeled_tsv(path: Path, num_labels: int = 2) -> list[LabeledText]:
    """`text<TAB>label` rows with a header line (SST-2 and IMDb); no quoting (SST writes quotes as `` '')."""
    rows = []
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if len(header) != 2:
            raise DataFormatError(path, 1, f"expected a header of two tab-separated columns, got {header!r}")
        for number, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                raise DataFormatError(path, number, f"expected 2 tab-separated columns, found {len(parts)}")
            text, label = parts[0].strip(), parts[1].strip()
            if not label.isdigit() or int(label) >= num_labels:
                raise DataFormatError(path, number, f"label must be an integer in [0, {num_labels}), got {label!r}")
            if not text:
                raise DataFormatError(path, number, "empty text")
            rows.append(LabeledText(text, int(label)))
    return rows


def read_lines(path: Path, limit: int | None = None) -> Iterator[str]:
    """One document per line, plain or gzip-compressed (the unlabeled IMDb reviews)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                return
            if line.strip():
                yield line.rstrip("\n")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # IMDb reviews carry <br /> line breaks


def review_sentences(reviews: Iterator[str], min_words: int = 3, max_words: int = 60) -> Iterator[str]:
    """The sentences of each review (split after . ! ?, <br /> as a space), those of min_words..max_words words."""
    for review in reviews:
        for sentence in _SENTENCE_END.split(_BREAK.sub(" ", review)):
            sentence = " ".join(sentence.split())
            if min_words <= len(sentence.split()) <= max_words:
                yield sentence


@dataclass(frozen=True)
class TaggedSentence:
    words: list[str]
    tags: list[str]


def read_conll(path: Path, tag_column: int = -1) -> list[TaggedSentence]:
    """CoNLL files (`WORD POS CHUNK NER`): blank lines end sentences, `-DOCSTART-` lines are skipped and
    IOB1 tags are converted to IOB2 (a no-op on files that are IOB2 already)."""
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    tags: list[str] = []
    columns = None

    def flush() -> None:
        if words:
            sentences.append(TaggedSentence(list(words), iob1_to_iob2(tags)))
            words.clear()
            tags.clear()

    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                flush()
                continue
            if parts[0] == "-DOCSTART-":
                flush()
                continue
            if columns is None:
                columns = len(parts)
            if len(parts) != columns:
                raise DataFormatError(
                    path, number, f"expected {columns} columns like the first line, found {len(parts)}"
                )
            tag = parts[tag_column]
            if tag != "O" and (tag[:2] not in ("B-", "I-") or len(tag) < 3):
                raise DataFormatError(path, number, f"tag {tag!r} is neither O nor B-TYPE / I-TYPE")
            words.append(parts[0])
            tags.append(tag)
    flush()
    return sentences


def split_off(items: list[LabeledText], fraction: float, seed: int) -> tuple[list[LabeledText], list[LabeledText]]:
    """A seeded random split; returns (train, held out)."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * fraction)
    return shuffled[cut:], shuffled[:cut]


def sst_sentence_split(
    rows: list[LabeledText], fraction: float, seed: int
) -> tuple[list[LabeledText], list[LabeledText]]:
    """Validate on whole sentences, as SST-2 dev is, without leaking their phrases into training.

    SST-2 train holds the full training sentences plus their sub-phrases. A row that is no part of any longer
    row is a full sentence; we hold out a seeded share of those and drop from training every row that occurs
    inside a held-out sentence (its phrases), so validation measures sentences the model never saw in part.
    """
    by_length = sorted({r.text for r in rows}, key=len, reverse=True)
    haystack, sentences = "", set()
    for text in by_length:  # longest first: a sentence is not inside anything kept before it
        if f" {text} " not in haystack:
            sentences.add(text)
            haystack += f"\n {text} "
    held = sorted(sentences)
    random.Random(seed).shuffle(held)
    held_set = set(held[: int(len(held) * fraction)])
    held_text = "\n".join(f" {t} " for t in held_set)
    valid = [r for r in rows if r.text in held_set]
    dedup = {r.text: r for r in valid}  # 371 rows repeat a sentence: count each sentence once
    train = [r for r in rows if r.text not in held_set and f" {r.text} " not in held_text]
    return train, list(dedup.values())


@dataclass(frozen=True)
class SentimentSplits:
    train: list[LabeledText]  # SST-2 rows, the held-out sentences' phrases removed
    valid: list[LabeledText]  # held-out full SST-2 sentences
    imdb_train: list[LabeledText]
    imdb_valid: list[LabeledText]


def sentiment_splits(
    sst2: Path, imdb: Path | None, max_rows: int | None, valid_fraction: float, imdb_valid_fraction: float, seed: int
) -> SentimentSplits:
    """The sentiment training and validation rows: one definition, so that the teacher and the student are
    validated on the same held-out sentences and reviews and neither trains on the other's validation."""
    train, valid = sst_sentence_split(read_labeled_tsv(sst2)[:max_rows], valid_fraction, seed)
    imdb_train, imdb_valid = (
        split_off(read_labeled_tsv(imdb)[:max_rows], imdb_valid_fraction, seed) if imdb else ([], [])
    )
    return SentimentSplits(train, valid, imdb_train, imdb_valid)
