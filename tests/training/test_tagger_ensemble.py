"""NER taggers as one (training.tagger_ensemble) and a tagger taught by them on gold and on silver sentences: the
committed tagger as the members, real CoNLL slices and real IMDb review text."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from rnntext.manifest import Manifest
from tests.training.conftest import tiny_tagger_args
from training import train_ner
from training.data import read_labeled_tsv
from training.ner_artifact import TAGS
from training.tagger_ensemble import TaggerEnsemble

REPO = Path(__file__).resolve().parents[2]
NER = REPO / "artifacts" / "ner"
WORDS = ["barack", "obama", "visited", "paris", "and", "met", "angela", "merkel"]


def test_an_ensemble_of_one_tagger_is_that_tagger_normalised() -> None:
    alone, twice = TaggerEnsemble.load([NER]), TaggerEnsemble.load([NER, NER])
    (probs,) = twice.word_log_probs([WORDS])
    assert probs.shape == (len(WORDS), len(TAGS))
    np.testing.assert_allclose(np.exp(probs).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs, alone.word_log_probs([WORDS])[0], atol=1e-5)
    assert twice.tags([WORDS]) == [["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-PER", "I-PER"]]


def test_an_ensemble_refuses_what_is_not_a_tagger_of_the_same_vocabulary() -> None:
    with pytest.raises(ValueError, match="not an NER artifact"):
        TaggerEnsemble.load([REPO / "artifacts" / "sentiment"])
    with pytest.raises(ValueError, match="not the same vocabulary and tags"):
        TaggerEnsemble.load([NER, REPO / "artifacts" / "sentiment"])


def test_the_tagger_learns_from_an_ensemble_on_gold_and_silver_sentences(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reviews = [r.text for r in read_labeled_tsv(data_dir / "imdb" / "train.tsv")[:60]]
    silver = tmp_path / "reviews.txt.gz"
    with gzip.open(silver, "wt", encoding="utf-8") as f:
        f.write("\n".join(reviews) + "\n")
    caplog.set_level(logging.INFO, logger="train_ner")
    out = tmp_path / "ner"
    args = [
        *tiny_tagger_args(data_dir, out, tmp_path),
        f"--teacher={NER},{NER}",
        f"--silver={silver}",
        "--silver-sentences=80",
    ]
    train_ner.main(args)
    manifest = Manifest.read(out)
    assert manifest.architecture["teacher"].startswith("ensemble of 2 taggers: ner-conll2003@")
    assert manifest.training["data"][-1]["file"] == f"{tmp_path.name}/reviews.txt.gz"
    assert "80 sentences of unlabeled text (reviews.txt.gz)" in (out / "MODEL_CARD.md").read_text()
    found = re.search(r"80 silver sentences from \S+, (\d+) entities by the teacher's tags", caplog.text)
    assert found and int(found.group(1)) > 0  # reviews name actors and places
    gold = re.search(r"top tag is the gold tag for ([\d.]+)% of training words", caplog.text)
    assert gold and float(gold.group(1)) > 95  # the committed tagger has seen these sentences

    with pytest.raises(SystemExit, match="--silver needs --teacher"):
        train_ner.main([a for a in args if not a.startswith("--teacher=")])
