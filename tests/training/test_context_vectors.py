"""Pooled contextual word vectors (training.context_vectors) on real slices: every word gets a vector in one space,
from its sentences where it occurs and alone where it does not, and the tagger starts from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnntext.encoders import NerEncoder
from rnntext.manifest import Manifest
from training import context_vectors, train_ner
from training.data import read_conll


@pytest.fixture(scope="module")
def vectors_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ner-vectors")
    context_vectors.main(
        [
            f"--train={data_dir}/conll2003/train.txt",
            f"--unsup={data_dir}/imdb/unsup.txt.gz",
            f"--out={out}",
            "--max-sentences=60",
            "--max-windows=100",
            "--extend-vocab=false",
            "--per-word=2",
            "--batch-size=16",
        ]
    )
    return out


def test_review_windows_split_sentences_and_drop_markup(data_dir: Path) -> None:
    windows = list(context_vectors.review_windows(data_dir / "imdb" / "unsup.txt.gz", max_tokens=12, limit=3))
    assert windows and all(0 < len(w) <= 12 for w in windows)
    assert not any(t in ("<", "br", "/>") for w in windows for t in w)
    ends = [w[-1] for w in windows]
    assert sum(e in (".", "!", "?") for e in ends) > len(ends) // 3  # most cut at a sentence's end


def test_pool_counts_each_word_at_most_per_word() -> None:
    pool = context_vectors.Pool.for_words(["paris", "0000"], layers=2, dim=3, per_word=2)
    assert pool.ids(["Paris", "1996", "Lyon"]) == [0, 1, -1]  # keys: lower-cased, each digit as 0
    for _ in range(3):
        pool.add(0, np.ones((2, 3)))
    assert pool.counts.tolist() == [2, 0] and pool.sums[:, 0].tolist() == [[2.0] * 3] * 2
    assert pool.wanted(["1996"]) and not pool.wanted(["PARIS", "lyon"])


def test_every_word_gets_a_vector_in_one_space(data_dir: Path, vectors_dir: Path) -> None:
    record = json.loads((vectors_dir / context_vectors.RECORD_FILE).read_text())
    words = {NerEncoder.word_key(w) for s in read_conll(data_dir / "conll2003" / "train.txt")[:60] for w in s.words}
    table, loaded = context_vectors.load_vectors(vectors_dir, layer=3)
    assert set(table) >= words and loaded == record
    assert record["in_context"] + record["alone"] == record["words"] and record["in_context"] > 0
    matrix = np.stack(list(table.values()))
    assert matrix.shape[1] == 384 and np.isfinite(matrix).all() and (np.linalg.norm(matrix, axis=1) > 0).all()
    assert "--max-windows=100" in record["command"] and len(record["data"]) == 2


def test_the_tagger_starts_from_the_pooled_vectors(data_dir: Path, vectors_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ner"
    train_ner.main(
        [
            f"--train={data_dir}/conll2003/train.txt",
            f"--valid={data_dir}/conll2003/valid.txt",
            f"--out={out}",
            f"--runs={tmp_path}",
            "--max-sentences=60",
            "--extend-vocab=false",
            "--hidden=16",
            "--word-embed=16",
            "--char-filters=8",
            "--epochs=1",
            "--pretrained=context",
            f"--vectors={vectors_dir}",
            "--vectors-layer=2",
        ]
    )
    manifest = Manifest.read(out)
    assert manifest.architecture["pretrained"] == "context"
    assert (
        f"--vectors={vectors_dir}" in manifest.training["command"]
        and "--vectors-layer=2" in manifest.training["command"]
    )
    assert "layer-2 hidden states pooled" in manifest.architecture["word_vectors"]
