"""Distillation from a transformer teacher (issue 14): augmentation, the transfer file, the loss, and a short real
run of every step (teacher -> transfer set -> student) through training.pipeline_sentiment."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnntext.encoders import SentimentEncoder
from rnntext.manifest import Manifest
from rnntext.vocab import Vocab
from tests.training.test_training_runs import check_artifact
from training import distill, pipeline_sentiment, transfer_set
from training.data import LabeledText, read_labeled_tsv
from training.evaluate import artifact_sentiment_probs

REPO = Path(__file__).resolve().parents[2]
CORPUS = ["a dull film", "a gripping film", "a funny film", "the plot is dull", "the plot is thin"]


def test_context_classes_replace_a_word_with_one_seen_between_the_same_neighbours() -> None:
    classes = transfer_set.ContextClasses([t.split() for t in CORPUS])
    rng = random.Random(0)
    drawn = {classes.replacement(["a", "dull", "film"], 1, rng) for _ in range(50)}
    assert drawn == {"gripping", "funny"}  # never the word itself
    assert classes.replacement(["a", "dull", "film"], 0, rng) is None  # "a" has no rival between <s> and "dull"
    assert {classes.replacement(["the", "plot", "is", "thin"], 3, rng) for _ in range(20)} == {"dull"}


def test_augmentation_masks_replaces_and_samples_ngrams() -> None:
    classes = transfer_set.ContextClasses([t.split() for t in CORPUS])
    rng = random.Random(1)
    masked = transfer_set.Augmenter(classes, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    assert masked.draw(["a", "dull", "film"], rng) == [transfer_set.MASK] * 3
    replaced = transfer_set.Augmenter(classes, p_mask=0.0, p_replace=1.0, p_ngram=0.0)
    assert replaced.draw(["a", "dull", "film"], rng)[1] in {"gripping", "funny"} and replaced.tried == 3
    grams = transfer_set.Augmenter(classes, p_mask=0.0, p_replace=0.0, p_ngram=1.0, max_ngram=2)
    for _ in range(20):
        gram = " ".join(grams.draw(["the", "plot", "is", "dull"], rng))
        assert 1 <= len(gram.split()) <= 2 and gram in "the plot is dull"
    new = transfer_set.Augmenter(classes).augment(CORPUS, copies=20, rng=rng)
    assert len(new) == len(set(new)) and not set(new) & set(CORPUS)  # distinct, and no original again


def test_short_rows_are_negated_once_and_negations_are_left_alone() -> None:
    rows = ["bad", "a dull film", "not bad", "n't funny", "bad", "the plot is thin and the acting worse"]
    assert transfer_set.negations(rows, max_words=4) == ["not bad", "not a dull film"]
    assert transfer_set.negations(rows, max_words=0) == []


def test_transfer_file_round_trip_and_masked_encoding(tmp_path: Path) -> None:
    logits = np.array([[1.5, -1.5], [-0.25, 0.5]], np.float32)
    transfer_set.write_transfer(tmp_path / transfer_set.TRANSFER_FILE, ["a [MASK] film", 'he said "no"\tok'], [1, -1],
                                logits, ["sst2-aug", "imdb-sentence"])  # fmt: skip
    rows = transfer_set.read_transfer(tmp_path)
    assert [r.text for r in rows] == ["a [MASK] film", 'he said "no" ok'] and [r.label for r in rows] == [1, -1]
    np.testing.assert_allclose(np.stack([r.logits for r in rows]), logits, atol=1e-5)
    vocab = Vocab.build(["a", "film", "mask"], min_count=1)
    ids = distill.encode_masked(SentimentEncoder(vocab, 400), "a [MASK] film")
    assert list(ids) == [vocab.id("a"), vocab.unk_id, vocab.id("film")]


def test_transfer_rows_keep_the_chosen_sources_and_refuse_held_out_texts(tmp_path: Path) -> None:
    texts = ["a dull film", "a [MASK] film", "the plot is thin", "a gripping film"]
    logits = np.array([[2, -2], [1, -1], [0.5, -0.5], [-3, 3]], np.float32)
    transfer_set.write_transfer(tmp_path / transfer_set.TRANSFER_FILE, texts, [0, -1, -1, 1], logits,
                                ["sst2", "sst2-aug", "imdb-sentence", "sst2"])  # fmt: skip
    vocab = Vocab.build(" ".join(CORPUS).split(), min_count=1)
    encoder = SentimentEncoder(vocab, 400)
    sst = [LabeledText("a dull film", 0), LabeledText("a funny film", 1)]
    review = [LabeledText("the plot is dull", 0)]

    def rows(sources: frozenset[str]) -> list[tuple[list[int], list[float]]]:
        kept = distill.transfer_rows(tmp_path, sst, review, encoder, encoder, {"a gripping film"}, sources)
        return [(list(ids), target.tolist()) for ids, target in kept]

    every = rows(frozenset())
    assert len(every) == 5  # 2 SST-2 rows, the two other transfer texts, 1 review; the held-out text refused
    assert every[0][1] == [0, 2, -2] and np.isnan(every[1][1][1:]).all()  # "a funny film" has no teacher logits
    assert [target for _, target in every[2:4]] == [[-1, 1, -1], [-1, 0.5, -0.5]]
    chosen = rows(frozenset({"sst2", "sst2-aug"}))
    assert len(chosen) == 4 and [-1, 0.5, -0.5] not in [target for _, target in chosen]
    taught = distill.transfer_rows(
        tmp_path, sst, review, encoder, encoder, {"a gripping film"}, review_logits=np.array([[1.5, -1.5]])
    )
    assert taught[-1][1].tolist() == [0, 1.5, -1.5]  # the review keeps its gold label and gains the logits
    with pytest.raises(ValueError, match="2 review logits for 1 reviews"):
        distill.transfer_rows(tmp_path, sst, review, encoder, encoder, set(), review_logits=np.zeros((2, 2)))


def test_a_review_teacher_gives_centred_log_probabilities_on_its_own_split_only(data_dir: Path, tmp_path: Path) -> None:
    """The committed sentiment model as the teacher of real IMDb reviews: its log-odds split evenly between the two
    logits; a student on another validation split is refused (its validation reviews may be the teacher's training
    reviews)."""
    artifact = REPO / "artifacts" / "sentiment"
    config = Manifest.read(artifact).training["config"]
    split = {k: config[k] for k in distill.SPLIT_KNOBS}
    reviews = read_labeled_tsv(data_dir / "imdb" / "train.tsv")[:40]
    logits = distill.review_teacher_logits(artifact, reviews, 400, split)
    assert logits.shape == (40, 2)
    np.testing.assert_allclose(logits.sum(1), 0.0, atol=1e-5)
    probs = artifact_sentiment_probs(artifact, [r.text for r in reviews], 400)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], np.log(probs[:, 1] / probs[:, 0]), rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == [r.label for r in reviews]).mean() > 0.8
    with pytest.raises(SystemExit, match="trained on another split: seed=1337 \\(student: 7\\)"):
        distill.review_teacher_logits(artifact, reviews, 400, {**split, "seed": 7})
    sentence = distill.record_review_teacher(tmp_path, (artifact / "manifest.json").read_bytes())
    assert Manifest.read(artifact).model_id in sentence
    assert (tmp_path / distill.REVIEW_TEACHER_MANIFEST).read_bytes() == (artifact / "manifest.json").read_bytes()


class CountingTeacher:
    """Logits that identify their text (its length), and a count of the texts it was asked to label."""

    def __init__(self) -> None:
        self.labelled = 0

    def logits(self, texts: list[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        self.labelled += len(texts)
        return np.array([[len(t), -len(t)] for t in texts], np.float32)


def test_labelling_resumes_from_the_shards_already_written(tmp_path: Path) -> None:
    texts = [f"text {'x' * i}" for i in range(25)]
    teacher = CountingTeacher()
    first = transfer_set.label_in_shards(teacher, texts, tmp_path, shard_size=10, batch_size=4)
    assert teacher.labelled == 25 and first[:, 0].tolist() == [len(t) for t in texts]
    shards = sorted(tmp_path.glob("logits-*.npy"))
    assert len(shards) == 3
    shards[1].unlink()  # as if the run had stopped while labelling the second shard
    again = transfer_set.label_in_shards(teacher, texts, tmp_path, shard_size=10, batch_size=4)
    assert teacher.labelled == 25 + 10 and np.array_equal(again, first)
    changed = [*texts[:-1], "another text"]  # other texts in the last shard: it is not reused
    transfer_set.label_in_shards(teacher, changed, tmp_path, shard_size=10, batch_size=4)
    assert teacher.labelled == 25 + 10 + 5


def test_transfer_loss_mixes_gold_cross_entropy_and_logit_mse() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], requires_grad=True)  # 1 member, 3 rows
    nan = float("nan")
    targets = torch.tensor([[1, nan, nan], [-1, 0.5, 0.5], [0, 3.0, -3.0]])  # gold only, logits only, both
    ce = F.cross_entropy(logits[0, [0, 2]], torch.tensor([1, 0]))
    mse = F.mse_loss(logits[0, [1, 2]], targets[[1, 2], 1:])
    for w in (0.0, 0.3, 1.0):
        torch.testing.assert_close(distill.transfer_loss(logits, targets, w, "mse"), (1 - w) * ce + w * mse)
    loss = distill.transfer_loss(logits, targets, 0.5, "kl")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()  # NaN targets never reach the gradient


def test_every_step_runs_short_and_real(data_dir: Path, tmp_path: Path) -> None:
    """The whole recipe on 160 rows: the teacher is the wheel's MiniLM (offline), a few steps each."""
    pytest.importorskip("transformers")
    work, out = tmp_path / "work", tmp_path / "student"
    argv = [
        f"--data={data_dir}/sst2/train.tsv",
        f"--imdb={data_dir}/imdb/train.tsv",
        f"--unsup={data_dir}/imdb/unsup.txt.gz",
        f"--work={work}",
        f"--out={out}",
        "--max-rows=160",
        "--device=cpu",
        "--teacher-args=--max-length=24 --batch-size=16 --epochs=1 --warmup-steps=2 --lr=1e-4",
        "--transfer-args=--copies=2 --imdb-sentences=40",
        "--student-args=--embed=16 --hidden=16 --epochs=1 --pretrained=none --train-max-tokens=40",
    ]
    pipeline_sentiment.main(argv)
    times = json.loads((work / "steps.json").read_text())
    assert list(times) == ["teacher", "transfer", "student"]
    assert all(step["seconds"] > 0 for step in times.values()), times  # recorded; speed is make bench's to measure
    teacher = json.loads((work / "teacher" / "teacher.json").read_text())
    assert 0 <= teacher["metrics"]["valid_accuracy"] <= 100 and teacher["metrics"]["valid_sentences"] > 0
    assert "--max-rows=160" in teacher["training"]["command"]
    assert teacher["metrics"]["valid_imdb_accuracy"] >= 0  # the teacher reads IMDb's reviews as well
    record = json.loads((work / "transfer" / "transfer.json").read_text())
    assert all(record["sources"][source] > 0 for source in transfer_set.SOURCES), record["sources"]
    rows = transfer_set.read_transfer(work / "transfer")
    assert len(rows) == record["rows"] and all(np.isfinite(r.logits).all() for r in rows)
    manifest = check_artifact(out, "sentiment")
    assert manifest.training["config"]["transfer"] == str(work / "transfer")
    assert (out / "transfer.json").is_file() and "minilm-sst2-teacher@" in (out / "MODEL_CARD.md").read_text()
    assert Manifest.read(out).io.outputs.keys() == {"probs"}  # served exactly as before
    assert "splits differ" not in (out / "MODEL_CARD.md").read_text()  # one validation split for all three steps

    # The served recipe's next generation: the model in `out` teaches the reviews to the one that replaces it there.
    before = (out / "manifest.json").read_bytes()
    pipeline_sentiment.main([*argv[:-1], f"{argv[-1]} --version=9.9.9 --review-teacher={out}"])
    assert json.loads((work / "steps.json").read_text())["student"]["seconds"] > 0
    assert Manifest.read(out).version == "9.9.9"
    assert (out / distill.REVIEW_TEACHER_MANIFEST).read_bytes() == before  # the predecessor's, not its own
    assert (
        f"{Manifest.model_validate_json(before).model_id} (trained on the same split)"
        in (out / "MODEL_CARD.md").read_text()
    )


def test_a_teacher_on_another_split_is_named() -> None:
    record = {"teacher": {"training": {"config": {"seed": 1, "valid_fraction": 0.15}}}, "config": {"max_rows": 10}}
    split = {"seed": 1337, "valid_fraction": 0.15, "imdb_valid_fraction": 0.1, "max_rows": None}
    assert distill.split_differences(record, split) == [
        "teacher seed=1 (student: 1337)",
        "transfer set max_rows=10 (student: None)",
    ]


def test_a_mean_pooled_teacher_reads_every_token_and_ignores_padding() -> None:
    """pooling="mean": the head reads the mean of the token states, so a text's logits are the same alone and
    padded beside a longer text, and they differ from the [CLS] head's (same weights, other input)."""
    from training.teacher_sentiment import load_pretrained, to_batch

    torch.manual_seed(0)
    tokenizer, mean_model = load_pretrained(pooling="mean")
    torch.manual_seed(0)
    _, cls_model = load_pretrained(pooling="cls")
    texts = ["not bad at all", "a long and winding film that never quite finds its feet"]
    ids = tokenizer(texts)["input_ids"]
    with torch.no_grad():
        alone = mean_model.eval()(*to_batch(ids[:1], tokenizer.pad_token_id, torch.device("cpu"))).logits
        padded = mean_model(*to_batch(ids, tokenizer.pad_token_id, torch.device("cpu"))).logits
        via_cls = cls_model.eval()(*to_batch(ids[:1], tokenizer.pad_token_id, torch.device("cpu"))).logits
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
    assert not torch.allclose(alone[0], via_cls[0], atol=1e-3)
