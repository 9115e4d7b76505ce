"""What the NER artifact holds: its tag set, graph signature, parity cases, manifest fields and model card.

`training.train_ner` scores the tagger (`training.ner_eval`); this module only turns the scores into an
`ArtifactSpec`. The tag order is the graph's output order and the CRF's row order: the service reads it back from
the manifest, so it must not change between versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rnntext.encoders import NerEncoder
from rnntext.manifest import IOSpec, Manifest, TensorSpec
from training.artifacts import ArtifactSpec
from training.context_vectors import RECORD_FILE
from training.export import Signature
from training.models import NerTagger
from training.ner_eval import ENTITY_TYPES, variant_table
from training.teacher_sentiment import TEACHER_FILE

if TYPE_CHECKING:  # the script imports this module: a runtime import back would load the script twice under -m
    from training.train_ner import TrainConfig

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]

SIGNATURE = Signature(
    inputs=["words", "chars", "lengths"],
    outputs=["log_probs"],
    dynamic_axes={
        "words": {0: "batch", 1: "time"},
        "chars": {0: "batch", 1: "time", 2: "chars"},
        "lengths": {0: "batch"},
        "log_probs": {0: "batch", 1: "time"},
    },
)


def padded_case(batch: int, steps: int, encoder: NerEncoder) -> tuple[Tensor, Tensor, Tensor]:
    """Random words and characters with random lengths (the first row full), padded as the service pads."""
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    words = torch.randint(2, len(encoder.words), (batch, steps), generator=generator)
    chars = torch.randint(2, len(encoder.chars), (batch, steps, 6), generator=generator)
    chars[:, :, 4:] = encoder.chars.pad_id  # words of 4 characters in a batch 6 wide
    padding = torch.arange(steps).unsqueeze(0) >= lengths.unsqueeze(1)
    words[padding] = encoder.words.pad_id
    chars[padding] = encoder.chars.pad_id
    return words, chars, lengths


def artifact_spec(
    cfg: TrainConfig,
    model: NerTagger,
    encoder: NerEncoder,
    scores: dict[str, dict[str, dict[str, float]]],
    n_valid: int,
) -> ArtifactSpec:
    """`scores` are `ner_eval.variant_scores` of the model on the `n_valid` validation sentences, every casing."""
    rounded = {
        v: {label: {k: round(x, 2) for k, x in s.items()} for label, s in by.items()} for v, by in scores.items()
    }
    given = scores["given"]
    return ArtifactSpec(
        task="ner",
        tags=TAGS,
        signature=SIGNATURE,
        example=padded_case(2, 4, encoder),
        parity_cases=[padded_case(batch, steps, encoder) for batch in (1, 7) for steps in (1, 5, 300)],
        io=IOSpec(
            inputs={
                "words": TensorSpec(dtype="int64", shape=["batch", "time"]),
                "chars": TensorSpec(dtype="int64", shape=["batch", "time", "chars"]),
                "lengths": TensorSpec(dtype="int64", shape=["batch"]),
            },
            outputs={"log_probs": TensorSpec(dtype="float32", shape=["batch", "time", len(TAGS)])},
        ),
        vocab={**encoder.words.to_json(), "chars": encoder.chars.to_json()},
        encoder={"max_word_chars": cfg.max_word_chars},
        decoding=model.crf.export() if model.crf is not None else None,
        architecture={
            "pretrained": cfg.pretrained,
            "word_vectors": word_vectors(cfg),
            "cell": cfg.cell,
            "word_embed": cfg.word_embed,
            "char_embed": cfg.char_embed,
            "char_filters": cfg.char_filters,
            "hidden": cfg.hidden,
            "layers": cfg.layers,
            "bidirectional": True,
            "dropout": f"{cfg.dropout} with "
            + ("one mask per sentence (locked)" if cfg.locked_dropout else "a mask per word"),
            "decoding": "CRF transitions + constrained BIO Viterbi" if model.crf else "constrained BIO Viterbi",
            "case_augmentation": f"{cfg.lower_share:.0%} lower-cased, {cfg.upper_share:.0%} upper-cased per epoch",
            "auxiliary_lm": f"next/previous word, weight {cfg.lm_loss}, {cfg.lm_words} words"
            if cfg.lm_loss
            else "none",
            "teacher": f"{teacher_name(cfg.teacher)}, cross-entropy weight {cfg.distill_loss}"
            if cfg.teacher
            else "none",
            "words": len(encoder.words),
            "chars": len(encoder.chars),
        },
        metrics={
            "valid_f1": rounded["given"]["overall"]["f1"],
            "valid_f1_lower": rounded["lower"]["overall"]["f1"],
            "valid_f1_upper": rounded["upper"]["overall"]["f1"],
            "valid_f1_text": rounded["text"]["overall"]["f1"],
            "valid_entity_scores": rounded["given"],
            "valid_variant_scores": rounded,
            "valid_sentences": n_valid,
            "split": "CoNLL-2003 validation file (eng.testa)",
        },
        curves_metric="valid_f1_mean",
        curves_title=f"{cfg.name}: CoNLL-2003 validation (mean over casings)",
        summary="Word + character-CNN bidirectional LSTM tagger"
        + (" with a CRF" if model.crf else "")
        + " for PER, LOC, ORG and MISC; serves /ner."
        + (
            f" Trained beside a next/previous-word language-model loss (weight {cfg.lm_loss}, Rei 2017) on the "
            "NER training text; that LM is not exported."
            if cfg.lm_loss
            else ""
        )
        + (
            f" Learned the tag probabilities of a teacher ({teacher_name(cfg.teacher)}) beside the gold tags; the "
            "teacher is not exported."
            if cfg.teacher
            else ""
        )
        + (
            f" Also trained on {cfg.silver_sentences:,} sentences of unlabeled text ({Path(cfg.silver).name}) "
            "tagged by that teacher (its decoded tags and its probabilities)."
            if cfg.silver
            else ""
        ),
        sections={
            "Validation": "Entity-level F1 (exact match, conlleval) on CoNLL-2003's validation file, decoded as the "
            "service decodes. Rows: the tokens as given, the same tokens lower-cased and upper-cased, and the "
            "sentences detokenized into text and run through the service's tokenizer (scored on character spans). "
            "Test F1 has run about 5 points below validation.\n\n" + variant_table(scores),
            "Known weaknesses": f"Word vectors start from {word_vectors(cfg)}; they are uncased, so case "
            "reaches the model through the character CNN, and training sees "
            f"{cfg.lower_share:.0%} of sentences lower-cased and {cfg.upper_share:.0%} upper-cased, so it does not "
            "depend on capitals. Trained on 1996-97 Reuters news: other genres and social media (WNUT-style) "
            f"score markedly lower. The weakest type on validation is "
            f"{min(ENTITY_TYPES, key=lambda t: given[t]['f1'] if t in given else 0.0)}.",
        },
        data=[Path(cfg.train), Path(cfg.valid), *([Path(cfg.silver)] if cfg.silver else [])],
    )


def word_vectors(cfg: TrainConfig) -> str:
    """Where the word table started, in words (the pooled vectors' record names the command that made them)."""
    if cfg.pretrained == "minilm":
        return f"all-MiniLM-L6-v2's input embeddings (mean over a word's WordPieces), PCA to {cfg.word_embed}"
    if cfg.pretrained == "context":
        record = json.loads((Path(cfg.vectors) / RECORD_FILE).read_text())
        return (
            f"all-MiniLM-L6-v2's layer-{cfg.vectors_layer} hidden states pooled over up to "
            f"{record['per_word']} occurrences in CoNLL and IMDb training text "
            f"({record['in_context']:,} of {record['words']:,} words; the rest encoded alone), PCA to "
            f"{cfg.word_embed}; made by `{record['command']}`"
        )
    return "random (no pretrained vectors)"


def teacher_name(teacher: str) -> str:
    """A fine-tuned MiniLM teacher's name@version and validation F1 (its teacher.json), or the ensemble's members
    (artifact directories, each with its own manifest)."""
    directories = teacher.split(",")
    if not (Path(directories[0]) / TEACHER_FILE).exists():
        members = [f"{Manifest.read(Path(d)).model_id} in {d}" for d in directories]
        return f"ensemble of {len(members)} taggers: {'; '.join(members)}"
    record = json.loads((Path(directories[0]) / TEACHER_FILE).read_text())
    return f"{record['name']}@{record['version']}, valid F1 {record['metrics']['valid_f1_given']}"
