"""Train the named-entity tagger behind /ner on CoNLL-2003 English, export it, write its artifact.

    python -m training.train_ner --train=../shared/data/conll2003/train.txt \
        --valid=../shared/data/conll2003/valid.txt --out=artifacts/ner

Validation is entity-level F1 (conlleval's exact match) on CoNLL-2003's own validation file (eng.testa),
decoded exactly as the service decodes: Viterbi over the tag log-probabilities plus the CRF's learned transition
scores, invalid BIO moves forbidden; measured for the tokens as given, lower-cased, upper-cased, and as raw text.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnntext.encoders import NerEncoder, NerFeatures, pad
from rnntext.tags import TagDecoder, allowed_transitions
from rnntext.tokenize import tokenize_words
from rnntext.vocab import Vocab
from training.artifacts import write_artifact
from training.batching import bucketed, shard
from training.config import ModelRunConfig, knob, parse_config
from training.context_vectors import load_vectors
from training.crf import CRF
from training.data import TaggedSentence, read_conll, read_lines, review_sentences
from training.loop import Distributed, FitResult, Schedule, fit, start_run
from training.models import NerTagger
from training.neighbour_lm import NeighbourLM, TaggerWithLM, class_table
from training.ner_artifact import TAGS, artifact_spec
from training.ner_eval import CASINGS, Casing, LogProbsOf, variant_scores
from training.pretrained import fill, initialise, reduce, vocabulary_words
from training.tagger_ensemble import TaggerEnsemble
from training.teacher_sentiment import TEACHER_FILE

log = logging.getLogger("train_ner")
PAD_TAG = -100  # ignored by the token loss; the CRF masks padding by length


@dataclass
class TrainConfig(ModelRunConfig):
    """NER tagger (word embedding + character CNN + bidirectional LSTM, optional CRF) on CoNLL-2003 English."""

    script = "training.train_ner"

    train: str = knob("../shared/data/conll2003/train.txt", "CoNLL training file")
    valid: str = knob("../shared/data/conll2003/valid.txt", "CoNLL validation file")
    out: str = knob("artifacts/ner", "artifact directory to write")
    max_sentences: int | None = knob(None, "use only the first N sentences of each file (quick runs, tests)")
    cell: Literal["torch-lstm", "lstm", "gru", "rnn"] = knob("torch-lstm", "recurrent cell")
    pretrained: Literal["none", "minilm", "context"] = knob(
        "minilm",
        "initialise word vectors, PCA to --word-embed: none | minilm (all-MiniLM-L6-v2's input embeddings) | "
        "context (its hidden states pooled over running text: training.context_vectors, --vectors)",
    )
    vectors: str = knob("runs/ner-vectors", "with --pretrained=context: training.context_vectors' output directory")
    vectors_layer: int = knob(3, "with --pretrained=context: the MiniLM layer whose pooled states are used (0-6)")
    extend_vocab: bool = knob(True, "with pretrained vectors: add the pretrained whole words to the vocabulary")
    max_word_chars: int = knob(24, "characters per word seen by the character CNN (prefix + suffix of longer words)")
    word_embed: int = knob(100, "word embedding size")
    char_embed: int = knob(30, "character embedding size")
    char_filters: int = knob(50, "character CNN filters")
    hidden: int = knob(200, "LSTM hidden size per direction")
    layers: int = knob(1, "LSTM layers")
    dropout: float = knob(0.5, "dropout on features and before the head")
    locked_dropout: bool = knob(True, "one dropout mask per sentence (variational) instead of one per word")
    unk_rate: float = knob(0.05, "word dropout: share of training words replaced by <unk>")
    lower_share: float = knob(0.25, "share of training sentences seen lower-cased in each epoch (case robustness)")
    upper_share: float = knob(0.25, "share of training sentences seen upper-cased in each epoch")
    crf: bool = knob(True, "learn CRF transition scores (forward algorithm); the service's Viterbi uses them")
    token_loss: float = knob(1.0, "with --crf: weight of the per-token loss beside the CRF's (keeps scores calibrated)")
    lm_loss: float = knob(0.0, "weight of the auxiliary next/previous-word LM loss (Rei 2017; one layer only)")
    lm_words: int = knob(7500, "with --lm-loss: the most frequent training words the LM predicts (others: one class)")
    teacher: str = knob(
        "",
        "whose tag probabilities are learned too: a fine-tuned NER teacher (training.teacher_ner), or comma-separated "
        "NER artifacts with one vocabulary, taken as their ensemble (training.tagger_ensemble)",
    )
    distill_loss: float = knob(1.0, "with --teacher: weight of the cross-entropy to the teacher's tag probabilities")
    silver: str = knob(
        "", "with --teacher: unlabeled text, one document a line (.gz too), whose sentences the teacher tags ('': none)"
    )
    silver_sentences: int = knob(10000, "with --silver: how many of its sentences (3-60 words; a seeded sample)")
    batch_size: int = knob(32, "sentences per step")
    epochs: int = knob(30, "passes over the training sentences")
    average_last: int = knob(10, "also try the mean of the last N epochs' weights; kept if it validates better")
    clip: float = knob(5.0, "gradient norm clip (larger: the tagger has many short sequences)")
    name: str = knob("ner-conll2003", "model name in the manifest")
    version: str = knob("1.3.0", "model version in the manifest")


# One example: the sentence's features under each casing (the word ids are the same: words are looked up
# lower-cased; only the characters differ), its tag ids, and the teacher's [words, tags] probabilities (or None).
# The teacher's probabilities are those of the sentence as written, so a lower- or upper-cased copy is taught what
# the teacher makes of the cased one.
Example = tuple[dict[Casing, NerFeatures], np.ndarray, np.ndarray | None]
Row = tuple[NerFeatures, np.ndarray, np.ndarray | None]


def to_batch(rows: list[Row], encoder: NerEncoder) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    words, chars, lengths = encoder.pad_batch([f for f, _, _ in rows])
    tags, _ = pad([t for _, t, _ in rows], PAD_TAG)
    soft = None
    if rows[0][2] is not None:
        soft = torch.zeros(*tags.shape, len(TAGS))  # padding: all-zero targets, so no loss
        for i, (_, _, probs) in enumerate(rows):
            assert probs is not None
            soft[i, : len(probs)] = torch.from_numpy(probs)
    return torch.from_numpy(words), torch.from_numpy(chars), torch.from_numpy(lengths), torch.from_numpy(tags), soft


def decoder_of(model: NerTagger) -> TagDecoder:
    """The service's decoder for the model as it stands (its CRF scores, if it has a CRF)."""
    return TagDecoder.for_tags(TAGS, model.crf.export() if model.crf is not None else None)


def torch_log_probs(model: NerTagger) -> LogProbsOf:
    def log_probs_of(words: np.ndarray, chars: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(words), torch.from_numpy(chars), torch.from_numpy(lengths)).numpy()

    return log_probs_of


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, argv)
    if cfg.lm_loss > 0 and cfg.layers != 1:
        raise SystemExit("--lm-loss needs --layers=1: a second layer's forward states have seen the next word")
    dist = start_run(cfg.threads, cfg.seed)

    train_sents = read_conll(Path(cfg.train))[: cfg.max_sentences]
    valid_sents = read_conll(Path(cfg.valid))[: cfg.max_sentences]
    extend = cfg.pretrained != "none" and cfg.extend_vocab
    encoder = NerEncoder(
        Vocab.build(vocabulary_words([NerEncoder.word_key(w) for s in train_sents for w in s.words], extend)),
        # Characters of every casing: an upper-cased "ß" or a lower-cased "İ" must not become <unk> by surprise.
        Vocab.build(c for s in train_sents for w in s.words for change in CASINGS.values() for c in change(w)),
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
    if cfg.silver and not cfg.teacher:
        raise SystemExit("--silver needs --teacher: its sentences are tagged by the teacher")
    silver = silver_sentences(Path(cfg.silver), cfg.silver_sentences, cfg.seed) if cfg.silver else []
    teacher = teacher_probs(cfg, [s.words for s in train_sents + silver])
    if cfg.teacher:
        gold = [[TAGS.index(t) for t in s.tags] for s in train_sents]
        probs = teacher.probs[: len(train_sents)]
        agree = np.mean([(p.argmax(1) == g).mean() for p, g in zip(probs, gold, strict=True) if p is not None])
        log.info("teacher %s: its top tag is the gold tag for %.2f%% of training words", cfg.teacher, 100 * agree)
    if silver:
        tagged = teacher_tags(teacher, len(train_sents))
        silver = [TaggedSentence(s.words, tags) for s, tags in zip(silver, tagged, strict=True)]
        entities = sum(t.startswith("B-") for s in silver for t in s.tags)
        log.info("%d silver sentences from %s, %d entities by the teacher's tags", len(silver), cfg.silver, entities)
    train: list[Example] = [
        (
            {name: encoder.encode([change(w) for w in s.words]) for name, change in CASINGS.items()},
            np.array([tag_id[t] for t in s.tags], dtype=np.int64),
            probs,
        )
        for s, probs in zip(train_sents + silver, teacher.probs, strict=True)
    ]
    valid = [(s.words, s.tags) for s in valid_sents]
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
        crf=CRF(allowed_transitions(TAGS)) if cfg.crf else None,
        locked=cfg.locked_dropout,
    )
    if cfg.pretrained == "minilm":
        share = initialise(model.word_embed, list(encoder.words.tokens), encoder.words.pad_id, cfg.seed)
        log.info("pretrained vectors for %.1f%% of the vocabulary", 100 * share)
    elif cfg.pretrained == "context":
        share = initialise_in_context(model.word_embed, list(encoder.words.tokens), encoder.words.pad_id, cfg)
        log.info("pooled contextual vectors (layer %d) for %.1f%% of the vocabulary", cfg.vectors_layer, 100 * share)
    trained: nn.Module = model
    if cfg.lm_loss > 0:
        keys = [NerEncoder.word_key(w) for s in train_sents for w in s.words]
        trained = TaggerWithLM(model, NeighbourLM(cfg.hidden, class_table(encoder.words, keys, cfg.lm_words)))
    steps = -(-len(train) // cfg.batch_size) // dist.world

    def batches(epoch: int, dist: Distributed):  # type: ignore[no-untyped-def]
        rng = random.Random(cfg.seed * 1009 + epoch)  # the same on every rank, and again on --resume
        casings = [casing(rng, cfg) for _ in train]
        rows: list[Row] = [(vs[c], tags, probs) for (vs, tags, probs), c in zip(train, casings, strict=True)]
        for chunk in shard(bucketed(rows, [len(r[1]) for r in rows], cfg.batch_size, rng), dist.rank, dist.world):
            words, chars, lengths, tags, soft = to_batch(chunk, encoder)
            dropped = (torch.rand(words.shape) < cfg.unk_rate) & (tags >= 0)
            yield words.masked_fill(dropped, encoder.words.unk_id or 0), chars, lengths, tags, words, soft

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | None]) -> Tensor:
        words, chars, lengths, tags, true_words, soft = batch
        if cfg.lm_loss > 0:
            log_probs, lm = net(words, chars, lengths, true_words)
        else:
            log_probs, lm = net(words, chars, lengths), None
        loss = nn.functional.nll_loss(log_probs.flatten(0, 1), tags.flatten(), ignore_index=PAD_TAG)
        if model.crf is not None:
            loss = model.crf.nll(log_probs, tags, lengths) + cfg.token_loss * loss
        if soft is not None:  # cross-entropy to the teacher's distribution, per real token
            loss = loss + cfg.distill_loss * -(soft * log_probs).sum() / (tags >= 0).sum()
        return loss if lm is None else loss + cfg.lm_loss * lm

    def evaluate(net: nn.Module) -> dict[str, float]:
        scores = variant_scores(torch_log_probs(model), encoder, decoder_of(model), valid, raw_text=False)
        f1 = {f"valid_f1_{name}": s["overall"]["f1"] for name, s in scores.items()}
        return {"valid_f1": f1["valid_f1_given"], **f1, "valid_f1_mean": float(np.mean(list(f1.values())))}

    # Chosen on the mean over the casings: the aim is a tagger that holds up on all of them.
    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip, average_last=cfg.average_last, bf16=cfg.bf16)
    result = fit(
        trained,
        batches,
        loss_of,
        evaluate,
        "valid_f1_mean",
        schedule,
        steps,
        checkpoint=Path(cfg.runs) / "ner",
        resume=cfg.resume,
        dist=dist,
    )
    if dist.is_main:
        export(model, encoder, cfg, result, valid)


class Teacher(NamedTuple):
    probs: list[np.ndarray | None]  # [words, tags] per sentence, None each without a teacher
    decoder: TagDecoder  # how the teacher itself decodes: silver sentences get its tags


def teacher_probs(cfg: TrainConfig, sentences: list[list[str]]) -> Teacher:
    """The teacher's tag probabilities for each sentence, computed once before training. A MiniLM teacher decodes
    with the constrained Viterbi alone, an ensemble of taggers with its mean CRF scores. Imports transformers only
    for a MiniLM teacher: the tagger itself never needs it."""
    if not cfg.teacher:
        return Teacher([None] * len(sentences), TagDecoder.for_tags(TAGS))
    directories = [Path(d) for d in cfg.teacher.split(",")]
    if (directories[0] / TEACHER_FILE).exists():
        from training.teacher_ner import NerTeacher

        if len(directories) > 1:
            raise SystemExit("--teacher: one fine-tuned MiniLM teacher, or NER artifacts only")
        log_probs = NerTeacher.load(directories[0]).word_log_probs(sentences, progress=True)
        decoder = TagDecoder.for_tags(TAGS)
    else:
        ensemble = TaggerEnsemble.load(directories)
        if list(ensemble.decoder.tags) != TAGS:
            raise SystemExit(f"--teacher: tags {ensemble.decoder.tags}, not the tagger's {TAGS}")
        log_probs, decoder = ensemble.word_log_probs(sentences), ensemble.decoder
    return Teacher([np.exp(lp) for lp in log_probs], decoder)


def teacher_tags(teacher: Teacher, first: int) -> list[list[str]]:
    """The teacher's own tags for sentences `first`.. (silver sentences): its decoder over its probabilities."""
    tagged = []
    for probs in teacher.probs[first:]:
        assert probs is not None
        (path,) = teacher.decoder.decode_batch(np.log(probs)[None], np.array([len(probs)]))
        tagged.append([TAGS[t] for t in path])
    return tagged


def silver_sentences(path: Path, limit: int, seed: int) -> list[TaggedSentence]:
    """A seeded sample of `limit` sentences (3-60 words) of unlabeled text, tokenized as the service tokenizes
    raw text; their tags are filled in by the teacher."""
    sentences = sorted({s for s in review_sentences(read_lines(path))})
    random.Random(seed).shuffle(sentences)
    return [TaggedSentence(words, []) for words in (tokenize_words(s) for s in sentences[:limit])]


def initialise_in_context(embedding: nn.Embedding, tokens: list[str], pad_id: int | None, cfg: TrainConfig) -> float:
    """The word table from training.context_vectors' pooled states at one layer, PCA to its width."""
    table, _ = load_vectors(Path(cfg.vectors), cfg.vectors_layer)
    found = np.array([t in table for t in tokens])
    dim = next(iter(table.values())).shape[0]
    vectors = np.stack([table.get(t, np.zeros(dim, np.float32)) for t in tokens])
    fill(embedding, reduce(vectors, found, embedding.embedding_dim, cfg.seed), pad_id)
    return float(found.mean())


def casing(rng: random.Random, cfg: TrainConfig) -> Casing:
    draw = rng.random()
    return "lower" if draw < cfg.lower_share else "upper" if draw < cfg.lower_share + cfg.upper_share else "given"


def export(
    model: NerTagger,
    encoder: NerEncoder,
    cfg: TrainConfig,
    result: FitResult,
    valid: list[tuple[list[str], list[str]]],
) -> None:
    model.eval()
    scores = variant_scores(torch_log_probs(model), encoder, decoder_of(model), valid)
    write_artifact(Path(cfg.out), model, artifact_spec(cfg, model, encoder, scores, len(valid)), cfg, result)
    log.info("wrote %s (valid F1 %s)", cfg.out, {v: round(s["overall"]["f1"], 2) for v, s in scores.items()})


if __name__ == "__main__":
    main()
