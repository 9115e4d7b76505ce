"""Train the sentence sentiment classifier behind /sentiment on SST-2, export it, write its artifact.

    python -m training.train_sentiment --data=../shared/data/sst2/train.tsv --out=artifacts/sentiment

SST-2's training file is phrases plus full sentences; we validate on held-out *full sentences* (what the
judge, SST-2 dev, contains) and train on everything that is not part of them (see `sst_sentence_split`).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnntext.encoders import SentimentEncoder, pad
from rnntext.manifest import CARD_FILE, MANIFEST_FILE
from rnntext.vocab import Vocab
from training.artifacts import write_artifact
from training.batching import bucketed, shard
from training.behaviour import SECTION_TITLE as BEHAVIOUR_TITLE
from training.behaviour import card_section as behaviour_section
from training.behaviour import previous_report, run_suite
from training.calibration import calibrate, calibrated_probs, reliability_diagram
from training.calibration import card_section as calibration_section
from training.config import ModelRunConfig, knob, parse_config
from training.data import LabeledText, sentiment_splits
from training.distill import (
    SPLIT_KNOBS,
    record_review_teacher,
    record_teacher,
    record_transfer,
    review_teacher_logits,
    transfer_loss,
    transfer_rows,
)
from training.evaluate import artifact_sentiment_probs
from training.loop import Distributed, FitResult, Schedule, fit, start_run
from training.models import SentimentClassifier
from training.pretrained import initialise, vocabulary_words
from training.sentiment_artifact import LABELS, RELIABILITY_FILE, artifact_spec, kept_metrics

log = logging.getLogger("train_sentiment")


@dataclass
class TrainConfig(ModelRunConfig):
    """Sentence sentiment (embedding + bidirectional LSTM) on SST-2."""

    script = "training.train_sentiment"

    data: str = knob("../shared/data/sst2/train.tsv", "SST-2 train.tsv (sentence<TAB>label)")
    out: str = knob("artifacts/sentiment", "artifact directory to write")
    valid_fraction: float = knob(0.15, "share of full sentences held out for validation")
    imdb: str = knob(
        "../shared/data/imdb/train.tsv", "IMDb train.tsv to train on as well, so long reviews work too ('': SST-2 only)"
    )
    imdb_valid_fraction: float = knob(0.1, "share of IMDb reviews held out for validation")
    imdb_min_count: int = knob(20, "IMDb words enter the vocabulary from this count (keeps the model small)")
    review_repeats: int = knob(
        1, "each IMDb training review is seen this many times an epoch (beside a large transfer set, reviews are few)"
    )
    train_max_tokens: int = knob(160, "longest training review in words (start and end kept); serving uses max_tokens")
    max_rows: int | None = knob(None, "use only the first N rows of each file (quick runs, tests)")
    cell: Literal["torch-lstm", "lstm", "gru", "rnn"] = knob("torch-lstm", "recurrent cell")
    min_count: int = knob(1, "minimum word count to enter the vocabulary")
    pretrained: Literal["none", "minilm"] = knob(
        "minilm", "initialise word vectors: none | minilm (all-MiniLM-L6-v2 wheel, PCA)"
    )
    extend_vocab: bool = knob(True, "with pretrained vectors: add the pretrained whole words to the vocabulary")
    max_tokens: int = knob(400, "longest input in words; longer texts keep their start and end")
    embed: int = knob(128, "word embedding size")
    hidden: int = knob(128, "LSTM hidden size per direction")
    layers: int = knob(1, "LSTM layers")
    members: int = knob(1, "ensemble members in one graph (shared embedding, own LSTM and head each)")
    teacher: str = knob("", "sentiment artifact to distil from: training targets mix in its probabilities ('': none)")
    distill_weight: float = knob(
        0.5, "share taken from the teacher: of each target (--teacher), of the loss (--transfer)"
    )
    transfer: str = knob("", "transfer set directory (training.transfer_set): also learn its teacher logits ('': none)")
    transfer_sources: str = knob(
        "", "with --transfer: comma-separated sources to learn from, e.g. sst2,sst2-aug,sst2-neg ('': all)"
    )
    distill_loss: Literal["mse", "kl"] = knob("mse", "with --transfer: MSE on the logits (Tang et al.) or KL")
    review_teacher: str = knob(
        "",
        "with --transfer: a sentiment artifact trained on the same split whose probabilities on the IMDb training "
        "reviews are learned too (the transfer set's teacher reads sentences; '': gold labels only)",
    )
    calibrate: bool = knob(True, "fit a temperature on the validation sentences and fold it into the exported graph")
    dropout: float = knob(0.5, "dropout on embeddings and before the head")
    unk_rate: float = knob(0.05, "word dropout: share of training words replaced by <unk>")
    batch_size: int = knob(64, "rows per step")
    epochs: int = knob(6, "passes over the training rows")
    save_rank_weights: bool = knob(False, "torchrun: every rank saves its final weights (to compare ranks)")
    name: str = knob("sentiment-sst2", "model name in the manifest")
    version: str = knob("1.2.1", "model version in the manifest")


Row = tuple[np.ndarray, Any]  # ids and the target: a label, a distribution (--teacher), [label, logits] (--transfer)


def to_batch(rows: list[Row], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    tokens, lengths = pad([ids for ids, _ in rows], pad_id)
    return torch.from_numpy(tokens), torch.from_numpy(lengths), torch.as_tensor(np.array([t for _, t in rows]))


def predict(model: SentimentClassifier, encoded: list[np.ndarray], pad_id: int, batch_size: int = 256) -> np.ndarray:
    probs = []
    for i in range(0, len(encoded), batch_size):
        tokens, lengths, _ = to_batch([(ids, 0) for ids in encoded[i : i + batch_size]], pad_id)
        probs.append(model(tokens, lengths).numpy())
    return np.concatenate(probs)


def split_of(cfg: TrainConfig) -> dict[str, Any]:
    """The knobs that draw the validation split (a teacher or transfer set must share them)."""
    return {k: getattr(cfg, k) for k in SPLIT_KNOBS}


def validation_metrics(
    model: SentimentClassifier, valid: list[tuple[np.ndarray, int]], reviews: list[tuple[np.ndarray, int]], pad_id: int
) -> dict[str, float]:
    """Loss and accuracy on the validation sentences, and accuracy on the validation reviews if there are any."""
    probs = predict(model, [ids for ids, _ in valid], pad_id)
    gold = np.array([label for _, label in valid])
    loss = float(-np.log(probs[np.arange(len(gold)), gold] + 1e-9).mean())
    metrics = {"valid_loss": loss, "valid_accuracy": float((probs.argmax(1) == gold).mean() * 100)}
    if reviews:  # both kinds of input count: epochs are chosen on their mean
        review_probs = predict(model, [ids for ids, _ in reviews], pad_id, batch_size=64)
        review_gold = np.array([label for _, label in reviews])
        metrics["valid_imdb_accuracy"] = float((review_probs.argmax(1) == review_gold).mean() * 100)
        metrics["valid_mean_accuracy"] = (metrics["valid_accuracy"] + metrics["valid_imdb_accuracy"]) / 2
    return metrics


def member_logits(model: SentimentClassifier, encoded: list[np.ndarray], pad_id: int, batch_size: int = 256) -> Tensor:
    """[members, rows, labels] logits, before any temperature (what calibration fits)."""
    parts = []
    for i in range(0, len(encoded), batch_size):
        tokens, lengths, _ = to_batch([(ids, 0) for ids in encoded[i : i + batch_size]], pad_id)
        parts.append(model(tokens, lengths, per_member=True))
    return torch.cat(parts, dim=1)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, argv)
    dist = start_run(cfg.threads, cfg.seed)

    splits = sentiment_splits(
        Path(cfg.data), Path(cfg.imdb) if cfg.imdb else None, cfg.max_rows, cfg.valid_fraction,
        cfg.imdb_valid_fraction, cfg.seed,
    )  # fmt: skip
    train_rows, valid_rows, imdb_train, imdb_valid = splits.train, splits.valid, splits.imdb_train, splits.imdb_valid
    words = [w for r in train_rows for w in SentimentEncoder.words(r.text)]
    imdb_counts = Counter(w for r in imdb_train for w in SentimentEncoder.words(r.text))
    words += [w for w, n in imdb_counts.items() if n >= cfg.imdb_min_count]
    extend = cfg.pretrained == "minilm" and cfg.extend_vocab
    vocab = Vocab.build(vocabulary_words(words, extend), min_count=cfg.min_count)
    assert vocab.pad_id is not None and vocab.unk_id is not None
    log.info(
        "%d training rows + %d reviews, %d validation sentences + %d reviews, vocabulary %d",
        len(train_rows),
        len(imdb_train),
        len(valid_rows),
        len(imdb_valid),
        len(vocab),
    )

    def encode(items: list[LabeledText], max_tokens: int = cfg.max_tokens) -> list[tuple[np.ndarray, int]]:
        limited = SentimentEncoder(vocab, max_tokens)
        return [(limited.encode(r.text), r.label) for r in items]

    repeated = imdb_train * cfg.review_repeats  # more review steps an epoch; the vocabulary counts each review once
    train: list[Row] = [*encode(train_rows), *encode(repeated, cfg.train_max_tokens)]
    if cfg.teacher and cfg.transfer:
        raise ValueError("--teacher and --transfer are two ways to distil: choose one")
    if cfg.teacher:
        train = distilled(train, cfg, [r.text for r in train_rows], [r.text for r in repeated])
    review_manifest: bytes | None = None
    if cfg.transfer:
        held_out = {r.text for r in valid_rows} | {r.text for r in imdb_valid}
        sentences, reviews = SentimentEncoder(vocab, cfg.max_tokens), SentimentEncoder(vocab, cfg.train_max_tokens)
        sources = frozenset(s for s in cfg.transfer_sources.split(",") if s)
        review_logits = None
        if cfg.review_teacher:
            # Read now: where --out is the review teacher's own directory, the student replaces it when written.
            review_manifest = (Path(cfg.review_teacher) / MANIFEST_FILE).read_bytes()
            # The teacher reads each review as served (up to --max-tokens), the student its training cut.
            review_logits = review_teacher_logits(Path(cfg.review_teacher), imdb_train, cfg.max_tokens, split_of(cfg))
            review_logits = np.concatenate([review_logits] * cfg.review_repeats)
        train = transfer_rows(
            Path(cfg.transfer), train_rows, repeated, sentences, reviews, held_out, sources, review_logits
        )
    elif cfg.review_teacher:
        raise SystemExit("--review-teacher needs --transfer")
    valid, valid_reviews = encode(valid_rows), encode(imdb_valid)
    model = SentimentClassifier(
        len(vocab), cfg.embed, cfg.hidden, cfg.layers, cfg.dropout, len(LABELS), cfg.cell, vocab.pad_id, cfg.members
    )
    if cfg.pretrained == "minilm":
        share = initialise(model.embed, list(vocab.tokens), vocab.pad_id, cfg.seed)
        log.info("pretrained vectors for %.1f%% of the vocabulary", 100 * share)
    steps = -(-len(train) // cfg.batch_size) // dist.world

    def batches(epoch: int, dist: Distributed):  # type: ignore[no-untyped-def]
        rng = random.Random(cfg.seed * 1009 + epoch)  # the same on every rank, and again on --resume
        for chunk in shard(bucketed(train, [len(ids) for ids, _ in train], cfg.batch_size, rng), dist.rank, dist.world):
            tokens, lengths, labels = to_batch(chunk, vocab.pad_id)
            dropped = (torch.rand(tokens.shape) < cfg.unk_rate) & (tokens != vocab.pad_id)
            yield tokens.masked_fill(dropped, vocab.unk_id), lengths, labels

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        tokens, lengths, targets = batch
        logits = net(tokens, lengths, per_member=True)  # each member fits the targets on its own
        if cfg.transfer:
            return transfer_loss(logits, targets, cfg.distill_weight, cfg.distill_loss)
        members = logits.shape[0]
        return F.cross_entropy(logits.flatten(0, 1), targets.repeat(members, *[1] * (targets.dim() - 1)))

    def evaluate(net: nn.Module) -> dict[str, float]:
        return validation_metrics(model, valid, valid_reviews, vocab.pad_id)

    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip, average_last=cfg.average_last, bf16=cfg.bf16)
    result = fit(
        model,
        batches,
        loss_of,
        evaluate,
        "valid_mean_accuracy" if valid_reviews else "valid_accuracy",
        schedule,
        steps,
        checkpoint=Path(cfg.runs) / "sentiment",
        resume=cfg.resume,
        dist=dist,
    )
    if cfg.save_rank_weights:
        (Path(cfg.runs) / "sentiment").mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), Path(cfg.runs) / "sentiment" / f"final-rank{dist.rank}.pt")
    if dist.is_main:
        export(model, vocab, cfg, result, valid, valid_rows, len(valid_reviews), review_manifest=review_manifest)


def distilled(train: list[Row], cfg: TrainConfig, sst_texts: list[str], imdb_texts: list[str]) -> list[Row]:
    """Knowledge distillation: each target becomes (1 - w) * one-hot(label) + w * the teacher's probabilities, so
    the cross-entropy is (1 - w) of the usual loss plus w of the teacher's. The teacher sees what the model sees:
    the same texts, cut to the same lengths."""
    teacher = Path(cfg.teacher)
    probs = artifact_sentiment_probs(teacher, sst_texts, cfg.max_tokens)
    if imdb_texts:
        probs = np.concatenate([probs, artifact_sentiment_probs(teacher, imdb_texts, cfg.train_max_tokens)])
    onehot = np.eye(len(LABELS), dtype=np.float32)
    w = cfg.distill_weight
    agree = float(np.mean([int(p.argmax()) == label for (_, label), p in zip(train, probs, strict=True)]))
    log.info("teacher %s agrees with %.1f%% of the training labels", teacher, 100 * agree)
    return [(ids, (1 - w) * onehot[label] + w * p) for (ids, label), p in zip(train, probs, strict=True)]


def export(
    model: SentimentClassifier,
    vocab: Vocab,
    cfg: TrainConfig,
    result: FitResult,
    valid: list[tuple[np.ndarray, int]],
    valid_rows: list[LabeledText],
    n_reviews: int,
    training: dict[str, Any] | None = None,
    review_manifest: bytes | None = None,
) -> None:
    """Calibrate, run the behaviour suite and write the artifact; `training` as in `write_artifact`;
    `review_manifest`: the --review-teacher's manifest as it was when its logits were taken."""
    out = Path(cfg.out)
    assert vocab.pad_id is not None
    model.eval()
    gold = np.array([label for _, label in valid])
    calibration, sections = {}, {}
    with torch.no_grad():
        if cfg.calibrate:
            logits = member_logits(model, [ids for ids, _ in valid], vocab.pad_id)
            temperature, calibration, _ = calibrate(logits, gold, cfg.seed)
            raw = calibrated_probs(logits.double(), 1.0).numpy()
            model.temperature.fill_(temperature)
        probs = predict(model, [ids for ids, _ in valid], vocab.pad_id)
        encoder = SentimentEncoder(vocab, cfg.max_tokens)

        def score(texts: list[str]) -> np.ndarray:
            return predict(model, [encoder.encode(t) for t in texts], vocab.pad_id)

        behaviour = run_suite(score)
        sections[BEHAVIOUR_TITLE] = behaviour_section(behaviour, score, previous_report(out))
    if cfg.calibrate:
        sections["Calibration"] = calibration_section(calibration, RELIABILITY_FILE)
    best = kept_metrics(result)
    spec = artifact_spec(
        cfg, vocab, temperature=float(model.temperature), best=best, valid_rows=valid_rows, gold=gold, probs=probs,
        n_reviews=n_reviews, calibration=calibration, behaviour=behaviour, sections=sections,
    )  # fmt: skip
    write_artifact(out, model, spec, cfg, result, training)
    if cfg.calibrate:
        curves = {"before": raw, f"T = {calibration['temperature']:.2f}": probs.astype(np.float64)}
        reliability_diagram(curves, gold, out / RELIABILITY_FILE, f"{cfg.name}: SST-2 validation sentences")
    distillation = ""  # --teacher and --transfer exclude each other (main): at most one section
    if cfg.teacher:
        distillation = record_teacher(out, Path(cfg.teacher), cfg.distill_weight)
    if cfg.transfer:
        distillation = record_transfer(out, Path(cfg.transfer), cfg.distill_weight, cfg.distill_loss, split_of(cfg))
        if review_manifest is not None:
            distillation += " " + record_review_teacher(out, review_manifest)
    if distillation:
        card = out / CARD_FILE
        card.write_text(card.read_text() + "\n## Distillation\n" + distillation + "\n")
    log.info("wrote %s (%s)", out, ", ".join(f"{k} {v:.2f}" for k, v in best.items() if k.endswith("accuracy")))


if __name__ == "__main__":
    main()
