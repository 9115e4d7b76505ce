"""The student's side of distillation: from a transfer set (training.transfer_set), its rows, loss and record; from
a teacher artifact (`--teacher`), its record.

Each transfer row's target is `[gold label or -1, teacher logit 0, teacher logit 1]` (NaN logits where the teacher
never saw the text, e.g. whole IMDb reviews). The loss mixes the two signals as Tang et al. 2019 do:
`(1 - w) * cross-entropy on the rows with a gold label + w * (MSE on the logits, or KL from the teacher's softmax)
on the rows with teacher logits`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from rnntext.encoders import SentimentEncoder
from rnntext.manifest import Manifest
from rnntext.vocab import UNK
from training.data import LabeledText
from training.evaluate import artifact_sentiment_probs
from training.transfer_set import MASK, RECORD_FILE, read_transfer

log = logging.getLogger(__name__)
NO_LOGITS = (float("nan"), float("nan"))
TEACHER_MANIFEST = "teacher-manifest.json"


def encode_masked(encoder: SentimentEncoder, text: str) -> np.ndarray:
    """The student's ids for a transfer text: each [MASK] (which the teacher saw as its mask token) is <unk>."""
    words: list[str] = []
    for i, part in enumerate(text.split(MASK)):
        words += ([UNK] if i else []) + encoder.words(part)
    return encoder.encode_words(words)


def transfer_rows(
    directory: Path,
    sst: list[LabeledText],
    reviews: list[LabeledText],
    sentences: SentimentEncoder,
    long_reviews: SentimentEncoder,
    held_out: set[str],
    sources: frozenset[str] = frozenset(),
    review_logits: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every SST-2 training row (gold label, with the teacher's logits where the transfer set has the text), every
    other transfer text (logits only), and the IMDb training reviews (gold label, and `review_logits` [reviews, 2]
    where given: the transfer set's teacher reads 128 pieces of a review at most). Texts held out for validation are
    refused, whatever the transfer set holds. `sources` (empty: all) keeps only the transfer texts of those sources,
    so one labelled set serves several mixes."""
    transfer = {r.text: r for r in read_transfer(directory) if not sources or r.source in sources}
    leaked = held_out & transfer.keys()
    for text in leaked:
        del transfer[text]
    rows = []
    for r in sst:
        t = transfer.pop(r.text, None)
        logits = tuple(t.logits) if t is not None else NO_LOGITS
        rows.append((sentences.encode(r.text), np.array([r.label, *logits], np.float32)))
    for t in transfer.values():
        rows.append((encode_masked(sentences, t.text), np.array([t.label, *t.logits], np.float32)))
    if review_logits is not None and len(review_logits) != len(reviews):
        raise ValueError(f"{len(review_logits)} review logits for {len(reviews)} reviews")
    for i, r in enumerate(reviews):
        logits = tuple(review_logits[i]) if review_logits is not None else NO_LOGITS
        rows.append((long_reviews.encode(r.text), np.array([r.label, *logits], np.float32)))
    rows = [row for row in rows if len(row[0])]  # a transfer n-gram of punctuation alone may encode to nothing
    with_logits = sum(not np.isnan(t[1]) for _, t in rows)
    log.info(
        "transfer set %s: %d rows, %d with teacher logits, %d with gold labels (%d held-out texts refused)",
        directory,
        len(rows),
        with_logits,
        sum(t[0] >= 0 for _, t in rows),
        len(leaked),
    )
    return rows


def transfer_loss(logits: Tensor, targets: Tensor, weight: float, kind: str) -> Tensor:
    """`logits` [members, batch, labels], `targets` [batch, 1 + labels]; every member fits the targets on its own."""
    labels, teacher = targets[:, 0], targets[:, 1:]
    gold, soft = labels >= 0, ~teacher.isnan().any(1)
    loss = logits.new_zeros(())
    if gold.any():
        chosen = logits[:, gold]
        loss = loss + (1 - weight) * F.cross_entropy(chosen.flatten(0, 1), labels[gold].long().repeat(logits.shape[0]))
    if soft.any():
        student, target = logits[:, soft], teacher[soft].expand(logits.shape[0], -1, -1)
        if kind == "mse":
            loss = loss + weight * F.mse_loss(student, target)
        else:
            log_p = F.log_softmax(student, dim=-1).flatten(0, 1)
            loss = loss + weight * F.kl_div(log_p, F.softmax(target, -1).flatten(0, 1), reduction="batchmean")
    return loss


SPLIT_KNOBS = ("valid_fraction", "imdb_valid_fraction", "seed", "max_rows")


def split_differences(record: dict[str, Any], split: dict[str, Any]) -> list[str]:
    """Where the teacher's or the transfer set's validation split was not the student's (then the teacher's figures
    do not compare, and the transfer set may hold the student's validation phrases)."""
    configs = {"teacher": record["teacher"]["training"]["config"], "transfer set": record.get("config", {})}
    return [
        f"{who} {knob}={config[knob]} (student: {split[knob]})"
        for who, config in configs.items()
        for knob in SPLIT_KNOBS
        if knob in config and knob in split and config[knob] != split[knob]
    ]


def record_transfer(out: Path, directory: Path, weight: float, kind: str, split: dict[str, Any]) -> str:
    """Copy the transfer set's record (with its teacher's) next to the artifact; the model card's section text."""
    shutil.copyfile(directory / RECORD_FILE, out / RECORD_FILE)
    record = json.loads((directory / RECORD_FILE).read_text())
    teacher = record["teacher"]
    differences = split_differences(record, split)
    if differences:
        log.warning("validation splits differ: %s", "; ".join(differences))
    figures = ", ".join(f"{k} {v}" for k, v in teacher["metrics"].items() if k.startswith("valid_"))
    loss = "MSE between the student's and the teacher's logits" if kind == "mse" else "KL from the teacher's softmax"
    sources = ", ".join(f"{n:,} {source}" for source, n in record["sources"].items())
    aug = record["augmentation"]
    return (
        f"Learned from the teacher {teacher['name']}@{teacher['version']} ({teacher['base']}; "
        f"{teacher['parameters']:,} parameters; on the same validation sentences: {figures}). Loss: "
        f"{1 - weight:.0%} cross-entropy on the gold labels, {weight:.0%} {loss}, over a transfer set of "
        f"{record['rows']:,} texts ({sources}): SST-2 rows, {aug['copies']} augmented draws of each as Tang et al. "
        f"2019 (mask p = {aug['p_mask']}, same-class replacement p = {aug['p_replace']}, n-gram p = "
        f"{aug['p_ngram']}; classes: {record['class_source']}) and IMDb sentences. The transfer set's record, with "
        f"both commands, is {RECORD_FILE}."
        + (
            f" The validation splits differ, so the teacher's figures do not compare: {'; '.join(differences)}."
            if differences
            else ""
        )
    )


REVIEW_TEACHER_MANIFEST = "review-teacher-manifest.json"


def review_teacher_logits(
    directory: Path, reviews: list[LabeledText], max_tokens: int, split: dict[str, Any]
) -> np.ndarray:
    """[reviews, 2] targets from a sentiment artifact: its log-probabilities centred per review (the log-odds
    split evenly, on the scale of the transfer set's logits). Refused unless the artifact was trained on the same
    validation split: otherwise the student's validation reviews may be in its training set."""
    config = Manifest.read(directory).training["config"]
    differences = [f"{k}={config.get(k)} (student: {split[k]})" for k in SPLIT_KNOBS if config.get(k) != split[k]]
    if differences:
        raise SystemExit(f"--review-teacher {directory} was trained on another split: {'; '.join(differences)}")
    log_probs = np.log(np.clip(artifact_sentiment_probs(directory, [r.text for r in reviews], max_tokens), 1e-7, 1))
    gold = np.array([r.label for r in reviews])
    log.info(
        "review teacher %s agrees with %.1f%% of the training reviews' labels",
        directory,
        100 * float((log_probs.argmax(1) == gold).mean()),
    )
    return (log_probs - log_probs.mean(1, keepdims=True)).astype(np.float32)


def record_review_teacher(out: Path, manifest_json: bytes) -> str:
    """Write the review teacher's manifest, as read when its logits were taken, next to the artifact (where the
    student replaces its own review teacher, --out and --review-teacher one directory, that file has changed since);
    the model card's sentence."""
    (out / REVIEW_TEACHER_MANIFEST).write_bytes(manifest_json)
    t = Manifest.model_validate_json(manifest_json)
    return (
        f"The IMDb training reviews' targets add the centred log-probabilities of {t.model_id} (trained on the same "
        f"split) as logits; its manifest is {REVIEW_TEACHER_MANIFEST}."
    )


def record_teacher(out: Path, teacher: Path, weight: float) -> str:
    """The teacher is not committed: copy its manifest (how it was made, its validation) next to the artifact; the
    model card's section text, which says what the training targets were."""
    shutil.copyfile(teacher / "manifest.json", out / TEACHER_MANIFEST)
    t = Manifest.read(teacher)
    metrics = ", ".join(f"{k} {v}" for k, v in t.metrics.items() if k.endswith("accuracy"))
    return (
        f"Training targets were {1 - weight:.0%} the gold label and {weight:.0%} the probabilities of the teacher "
        f"{t.model_id} ({t.architecture.get('members', 1)}-member ensemble in one graph; validation: {metrics}), "
        f"computed on the same texts cut to the same lengths. The teacher's manifest, with its command, is "
        f"{TEACHER_MANIFEST}."
    )
