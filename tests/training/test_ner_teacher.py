"""The NER teacher (training.teacher_ner) on real CoNLL slices: each word is carried by its first WordPiece, the
uncased teacher tags every casing alike, and the tagger trains on its probabilities beside the gold tags."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from rnntext.manifest import Manifest
from tests.training.conftest import tiny_tagger_args
from training import teacher_ner, train_ner
from training.ner_artifact import TAGS
from training.teacher_sentiment import load_pretrained


@pytest.fixture(scope="module")
def teacher_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ner-teacher")
    teacher_ner.main(
        [
            f"--train={data_dir}/conll2003/train.txt",
            f"--valid={data_dir}/conll2003/valid.txt",
            f"--out={out}",
            f"--runs={out / 'runs'}",
            "--max-sentences=200",
            "--epochs=1",
            "--batch-size=16",
            "--warmup-steps=2",
            "--lr=1e-4",
            "--threads=1",
        ]
    )
    return out


def test_each_word_is_carried_by_its_first_piece_and_cut_off_words_by_none() -> None:
    tokenizer, _ = load_pretrained(None, len(TAGS), per_token=True)
    words = ["Schwarzenegger", "visited", "Wolfsburg", "."]
    (whole,) = teacher_ner.encode(tokenizer, [words], max_length=64)
    pieces = tokenizer.convert_ids_to_tokens(whole.ids)
    assert [pieces[p] for p in whole.first] == [tokenizer.tokenize(w)[0] for w in words]
    assert len(whole.ids) > len(words) + 2  # the long names really are split: first pieces are not every piece
    labels = teacher_ner.piece_labels(whole, ["B-PER", "O", "B-LOC", "O"])
    assert [labels[p] for p in whole.first] == [TAGS.index(t) for t in ["B-PER", "O", "B-LOC", "O"]]
    assert labels.count(teacher_ner.IGNORED) == len(whole.ids) - len(words)
    (cut,) = teacher_ner.encode(tokenizer, [words], max_length=4)  # [CLS] + 2 pieces + [SEP]
    assert cut.first[0] >= 0 and cut.first[-1] == -1


def test_the_uncased_teacher_tags_every_casing_alike(teacher_dir: Path) -> None:
    teacher = teacher_ner.NerTeacher.load(teacher_dir)
    words = ["Angela", "Merkel", "met", "Barack", "Obama", "in", "Paris", "."]
    given, lower, upper = teacher.word_log_probs([words, [w.lower() for w in words], [w.upper() for w in words]])
    assert given.shape == (len(words), len(TAGS))
    np.testing.assert_allclose(np.exp(given).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(given, lower, atol=1e-5)
    np.testing.assert_allclose(given, upper, atol=1e-5)
    record = json.loads((teacher_dir / teacher_ner.TEACHER_FILE).read_text())
    assert record["tags"] == TAGS and record["metrics"]["valid_sentences"] == 200
    assert record["history"][0]["train_loss"] < np.log(len(TAGS))  # it learned in 13 steps: below a uniform guess


def test_the_tagger_learns_from_the_teacher(
    data_dir: Path, teacher_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="train_ner")
    out = tmp_path / "ner"
    train_ner.main([*tiny_tagger_args(data_dir, out, tmp_path), f"--teacher={teacher_dir}", "--distill-loss=0.5"])
    manifest = Manifest.read(out)
    assert f"--teacher={teacher_dir}" in manifest.training["command"]
    assert "--distill-loss=0.5" in manifest.training["command"]
    assert manifest.architecture["teacher"].startswith("minilm-conll2003-teacher@1.0.0, valid F1 ")
    assert "top tag is the gold tag for" in caplog.text  # the teacher labelled the training sentences
