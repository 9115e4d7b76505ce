"""Train the named-entity tagger behind /ner on CoNLL-2003 English, export it, write its artifact.

    python -m training.train_ner --train=../shared/data/conll2003/train.txt \
        --valid=../shared/data/conll2003/valid.txt --out=artifacts/ner

Validation is entity-level F1 (conlleval's exact match) on CoNLL-2003's own validation file (eng.testa),
decoded exactly as the service decodes: Viterbi over the tag log-probabilities with invalid BIO moves forbidden.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rnntext.encoders import NerEncoder, NerFeatures, pad
from rnntext.manifest import IOSpec, TensorSpec
from rnntext.tags import allowed_transitions, constrained_decode_batch, entity_scores
from rnntext.vocab import Vocab
from training import artifacts
from training.batching import bucketed, shard
from training.config import RunConfig, knob, parse_config
from training.data import TaggedSentence, read_conll
from training.export import Signature, write_checked
from training.loop import Distributed, Schedule, fit, plot_history, start_run
from training.models import NerTagger
from training.pretrained import initialise, vocabulary_words

log = logging.getLogger("train_ner")
TYPES = ["PER", "LOC", "ORG", "MISC"]
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


@dataclass
class TrainConfig(RunConfig):
    """NER tagger (word embedding + character CNN + bidirectional LSTM) on CoNLL-2003 English."""

    train: str = knob("../shared/data/conll2003/train.txt", "CoNLL training file")
    valid: str = knob("../shared/data/conll2003/valid.txt", "CoNLL validation file")
    out: str = knob("artifacts/ner", "artifact directory to write")
    max_sentences: int | None = knob(None, "use only the first N sentences of each file (quick runs, tests)")
    cell: str = knob("torch-lstm", "recurrent cell: torch-lstm | lstm | gru | rnn")
    pretrained: str = knob("minilm", "initialise word vectors: none | minilm (all-MiniLM-L6-v2 wheel, PCA)")
    extend_vocab: bool = knob(True, "with pretrained vectors: add the pretrained whole words to the vocabulary")
    max_word_chars: int = knob(24, "characters per word seen by the character CNN (prefix + suffix of longer words)")
    word_embed: int = knob(100, "word embedding size")
    char_embed: int = knob(30, "character embedding size")
    char_filters: int = knob(50, "character CNN filters")
    hidden: int = knob(200, "LSTM hidden size per direction")
    layers: int = knob(1, "LSTM layers")
    dropout: float = knob(0.5, "dropout on features and before the head")
    unk_rate: float = knob(0.05, "word dropout: share of training words replaced by <unk>")
    batch_size: int = knob(32, "sentences per step")
    epochs: int = knob(20, "passes over the training sentences")
    clip: float = knob(5.0, "gradient norm clip (larger: the tagger has many short sequences)")
    name: str = knob("ner-conll2003", "model name in the manifest")
    version: str = knob("1.0.0", "model version in the manifest")


Example = tuple[NerFeatures, np.ndarray]


def to_batch(rows: list[Example], encoder: NerEncoder) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    words, lengths = pad([f.words for f, _ in rows], encoder.words.pad_id or 0)
    chars, _ = pad([f.chars for f, _ in rows], encoder.chars.pad_id or 0)
    tags, _ = pad([t for _, t in rows], -100)  # -100: ignored by the loss
    return torch.from_numpy(words), torch.from_numpy(chars), torch.from_numpy(lengths), torch.from_numpy(tags)


def predict_tags(
    model: NerTagger, encoded: list[Example], encoder: NerEncoder, batch_size: int = 128
) -> list[list[str]]:
    allowed = allowed_transitions(TAGS)
    predicted = []
    for i in range(0, len(encoded), batch_size):
        words, chars, lengths, _ = to_batch(encoded[i : i + batch_size], encoder)
        log_probs = model(words, chars, lengths).numpy()
        predicted += [[TAGS[t] for t in path] for path in constrained_decode_batch(log_probs, lengths.numpy(), allowed)]
    return predicted


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, argv)
    dist = start_run(cfg.threads, cfg.seed)

    train_sents = read_conll(Path(cfg.train))[: cfg.max_sentences]
    valid_sents = read_conll(Path(cfg.valid))[: cfg.max_sentences]
    if cfg.pretrained not in ("none", "minilm"):
        raise ValueError(f"--pretrained must be none or minilm, got {cfg.pretrained!r}")
    extend = cfg.pretrained == "minilm" and cfg.extend_vocab
    encoder = NerEncoder(
        Vocab.build(vocabulary_words([NerEncoder.word_key(w) for s in train_sents for w in s.words], extend)),
        Vocab.build(c for s in train_sents for w in s.words for c in w),
        cfg.max_word_chars,
    )
    tag_id = {t: i for i, t in enumerate(TAGS)}
    log.info(
        "%d train / %d validation sentences; %d words, %d characters",
        len(train_sents),
        len(valid_sents),
        len(encoder.words),
        len(encoder.chars),
    )

    def encode(sentences: list[TaggedSentence]) -> list[Example]:
        return [(encoder.encode(s.words), np.array([tag_id[t] for t in s.tags], dtype=np.int64)) for s in sentences]

    train, valid = encode(train_sents), encode(valid_sents)
    model = NerTagger(
        len(encoder.words),
        len(encoder.chars),
        cfg.word_embed,
        cfg.char_embed,
        cfg.char_filters,
        cfg.hidden,
        cfg.layers,
        cfg.dropout,
        len(TAGS),
        cfg.cell,
        encoder.words.pad_id or 0,
        encoder.chars.pad_id or 0,
    )
    if cfg.pretrained == "minilm":
        share = initialise(model.word_embed, list(encoder.words.tokens), encoder.words.pad_id, cfg.seed)
        log.info("pretrained vectors for %.1f%% of the vocabulary", 100 * share)
    rng = random.Random(cfg.seed)
    steps = -(-len(train) // cfg.batch_size) // dist.world

    def batches(epoch: int, dist: Distributed):  # type: ignore[no-untyped-def]
        for chunk in shard(bucketed(train, [len(t) for _, t in train], cfg.batch_size, rng), dist.rank, dist.world):
            words, chars, lengths, tags = to_batch(chunk, encoder)
            dropped = (torch.rand(words.shape) < cfg.unk_rate) & (tags >= 0)
            yield words.masked_fill(dropped, encoder.words.unk_id or 0), chars, lengths, tags

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        words, chars, lengths, tags = batch
        return nn.functional.nll_loss(net(words, chars, lengths).flatten(0, 1), tags.flatten(), ignore_index=-100)

    def evaluate(net: nn.Module) -> dict[str, float]:
        scores = entity_scores([s.tags for s in valid_sents], predict_tags(model, valid, encoder))
        return {"valid_f1": scores["overall"]["f1"]}

    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip)
    result = fit(
        model,
        batches,
        loss_of,
        evaluate,
        "valid_f1",
        schedule,
        steps,
        checkpoint=Path(cfg.runs) / "ner" / "best.pt",
        dist=dist,
    )
    if dist.is_main:
        export(model, encoder, cfg, result, valid, valid_sents)


def export(model, encoder, cfg, result, valid, valid_sents) -> None:  # type: ignore[no-untyped-def]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = [padded_case(batch, steps, encoder) for batch in (1, 7) for steps in (1, 5, 300)]
    parity = write_checked(out / artifacts.MODEL_FILE, model, padded_case(2, 4, encoder), SIGNATURE, cases)
    artifacts.write_vocab(out, {**encoder.words.to_json(), "chars": encoder.chars.to_json()})
    plot_history(result.history, "valid_f1", out / artifacts.CURVES_FILE, f"{cfg.name}: CoNLL-2003 validation")
    with torch.no_grad():
        scores = entity_scores([s.tags for s in valid_sents], predict_tags(model, valid, encoder))
    rounded = {label: {k: round(v, 2) for k, v in s.items()} for label, s in scores.items()}
    manifest = artifacts.write_manifest(
        out,
        task="ner",
        name=cfg.name,
        version=cfg.version,
        tags=TAGS,
        io=IOSpec(
            inputs={
                "words": TensorSpec(dtype="int64", shape=["batch", "time"]),
                "chars": TensorSpec(dtype="int64", shape=["batch", "time", "chars"]),
                "lengths": TensorSpec(dtype="int64", shape=["batch"]),
            },
            outputs={"log_probs": TensorSpec(dtype="float32", shape=["batch", "time", len(TAGS)])},
        ),
        encoder={"max_word_chars": cfg.max_word_chars},
        architecture={
            "pretrained": cfg.pretrained,
            "cell": cfg.cell,
            "word_embed": cfg.word_embed,
            "char_embed": cfg.char_embed,
            "char_filters": cfg.char_filters,
            "hidden": cfg.hidden,
            "layers": cfg.layers,
            "bidirectional": True,
            "decoding": "constrained BIO Viterbi",
            "words": len(encoder.words),
            "chars": len(encoder.chars),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        metrics={
            "valid_f1": round(scores["overall"]["f1"], 2),
            "valid_entity_scores": rounded,
            "valid_sentences": len(valid_sents),
            "split": "CoNLL-2003 validation file (eng.testa)",
        },
        training=artifacts.training_record(
            cfg, artifacts.data_record(Path(cfg.train), Path(cfg.valid)), result.seconds, result.best_epoch
        ),
        parity=parity,
    )
    table = "\n".join(
        ["| type | precision | recall | F1 | entities |", "| --- | ---: | ---: | ---: | ---: |"]
        + [
            f"| {label} | {s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {int(s['support'])} |"
            for label, s in scores.items()
        ]
    )
    artifacts.write_card(
        out,
        manifest,
        "Word + character-CNN bidirectional LSTM tagger for PER, LOC, ORG and MISC; serves /ner.",
        {
            "Validation": "Entity-level scores (exact match, conlleval) on CoNLL-2003's validation file, decoded with "
            "BIO-constrained Viterbi as the service does. Test F1 usually runs 3-4 points below.\n\n" + table,
            "Known weaknesses": (
                "No pretrained embeddings: rare names are recognised from their spelling and context alone. "
                if cfg.pretrained == "none"
                else "Word vectors start from all-MiniLM-L6-v2's (uncased) input embeddings, so case comes from the "
                "character CNN alone. "
            )
            + "Trained on 1996-97 Reuters news: other genres, lower-cased text and social media "
            "(WNUT-style) score markedly lower. "
            + f"The weakest type on validation is {min(TYPES, key=lambda t: scores[t]['f1'])}.",
        },
    )
    log.info("wrote %s (valid F1 %.2f, parity %.2g)", out, scores["overall"]["f1"], parity.max_abs_diff)


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


if __name__ == "__main__":
    main()
