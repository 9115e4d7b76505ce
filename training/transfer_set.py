"""The distillation transfer set: texts the student learns the teacher's logits on (Tang et al. 2019).

    python -m training.transfer_set --teacher=runs/sentiment-teacher --out=runs/sentiment-transfer

Four sources, all from training files only (the student's validation sentences and reviews are left out):
- `sst2`: SST-2 train's rows (sentences and phrases) as they are, with their gold labels;
- `sst2-aug`: `copies` augmented versions of each, as Tang et al.: each word is masked ([MASK]) with p = 0.1, else
  with p = 0.1 replaced by a word of the same class, then with p = 0.25 an n-gram (n uniform in 1..5) is kept
  instead of the whole; duplicates dropped. Tang et al. took the class from a POS tagger; ours needs no download:
  a word's class is the (previous word, next word) context it occurs in, and the replacement is drawn uniformly
  from the other words seen in exactly that context in the training rows ("a [dull] film" -> "a [gripping] film").
  Where a context held no other word, the word stays (the share replaced is recorded);
- `sst2-neg`: the SST-2 rows of at most `negate_words` words, negated ("not " + the phrase: "bad" -> "not bad"):
  SST-2 holds few negated short phrases, and every student so far reads "not bad" as negative. The teacher, not a
  rule, labels them;
- `imdb-sentence`: sentences split from IMDb reviews (train, less the student's held-out share, and the unlabeled
  reviews), 3 to 60 words, a seeded sample of `imdb_sentences`.

Every text is labelled with the teacher's logits, `shard_size` texts at a time, each shard kept under
`out/shards/` as it is done: labelling a million texts takes hours on a CPU, and a run stopped part-way goes on
from the shards already written (a shard is reused only if its texts are the same). `out` gets `transfer.tsv.gz`
(text, gold label or -1, the two logits, source) and `transfer.json` (counts, settings, the teacher's record, times).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from training.artifacts import data_record
from training.config import RunConfig, command_of, knob, parse_config
from training.data import read_labeled_tsv, read_lines, review_sentences, split_off, sst_sentence_split
from training.loop import start_run

log = logging.getLogger("transfer_set")
MASK = "[MASK]"
TRANSFER_FILE, RECORD_FILE = "transfer.tsv.gz", "transfer.json"
SOURCES = ("sst2", "sst2-aug", "sst2-neg", "imdb-sentence")
COLUMNS = ["text", "label", "logit_negative", "logit_positive", "source"]


@dataclass
class TransferConfig(RunConfig):
    """Distillation transfer set: SST-2 rows, their augmented copies and IMDb sentences, with teacher logits."""

    script = "training.transfer_set"

    teacher: str = knob("runs/sentiment-teacher", "fine-tuned teacher directory (training.teacher_sentiment)")
    data: str = knob("../shared/data/sst2/train.tsv", "SST-2 train.tsv")
    imdb: str = knob("../shared/data/imdb/train.tsv", "IMDb train.tsv, for sentences ('': none)")
    unsup: str = knob("../shared/data/imdb/unsup.txt.gz", "unlabeled IMDb reviews, for sentences ('': none)")
    out: str = knob("runs/sentiment-transfer", "directory for transfer.tsv.gz and transfer.json")
    valid_fraction: float = knob(0.15, "the student's held-out share of SST-2 sentences (left out here)")
    imdb_valid_fraction: float = knob(0.1, "the student's held-out share of IMDb reviews (left out here)")
    max_rows: int | None = knob(None, "use only the first N rows of each file (quick runs, tests)")
    copies: int = knob(5, "augmentation draws per SST-2 row (Tang et al.: 20); duplicates are dropped")
    p_mask: float = knob(0.1, "per word: replaced by [MASK]")
    p_replace: float = knob(0.1, "per word, when not masked: replaced by a word seen in the same context")
    p_ngram: float = knob(0.25, "per draw: keep only an n-gram of the result")
    max_ngram: int = knob(5, "n-grams are 1..max_ngram words")
    negate_words: int = knob(4, "SST-2 rows of up to N words also seen negated, 'not ' + row (0: none)")
    imdb_sentences: int = knob(50_000, "IMDb sentences to sample (0: none)")
    batch_size: int = knob(256, "teacher labelling batch")
    shard_size: int = knob(50_000, "texts labelled and saved at a time (a stopped run resumes from the last shard)")
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "teacher device: auto picks cuda when available")
    precision: Literal["auto", "bf16", "fp32"] = knob("auto", "teacher autocast (auto: bf16 on cuda, fp32 on cpu)")


class ContextClasses:
    """Words by the (previous, next) context they occur in: a part-of-speech stand-in that needs no tagger."""

    def __init__(self, sentences: list[list[str]]) -> None:
        seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        for words in sentences:
            padded = ["<s>", *words, "</s>"]
            for i in range(1, len(padded) - 1):
                seen[(padded[i - 1], padded[i + 1])].add(padded[i])
        self.words = {context: sorted(ws) for context, ws in seen.items() if len(ws) > 1}

    def replacement(self, words: list[str], i: int, rng: random.Random) -> str | None:
        """Another word seen between the same neighbours as `words[i]`, or None where there is none."""
        prev = words[i - 1] if i > 0 else "<s>"
        after = words[i + 1] if i + 1 < len(words) else "</s>"
        options = self.words.get((prev, after), [])
        if len(options) < 2:
            return None
        choice = options[rng.randrange(len(options) - 1)]
        return choice if choice != words[i] else options[-1]  # uniform over the others


@dataclass
class Augmenter:
    classes: ContextClasses
    p_mask: float = 0.1
    p_replace: float = 0.1
    p_ngram: float = 0.25
    max_ngram: int = 5
    tried: int = 0  # replacements attempted, and found: how well the context classes cover the data
    replaced: int = 0

    def draw(self, words: list[str], rng: random.Random) -> list[str]:
        out = []
        for i, word in enumerate(words):
            x = rng.random()
            if x < self.p_mask:
                out.append(MASK)
            elif x < self.p_mask + self.p_replace:
                self.tried += 1
                other = self.classes.replacement(words, i, rng)
                self.replaced += other is not None
                out.append(other or word)
            else:
                out.append(word)
        if rng.random() < self.p_ngram and len(out) > 1:
            n = min(rng.randint(1, self.max_ngram), len(out))
            start = rng.randrange(len(out) - n + 1)
            out = out[start : start + n]
        return out

    def augment(self, texts: list[str], copies: int, rng: random.Random) -> list[str]:
        """Up to `copies` distinct new texts per input text, none equal to an input text."""
        known, new = set(texts), []
        for text in texts:
            words = text.split()  # SST-2 is tokenized already: words are space-separated
            for _ in range(copies):
                drawn = " ".join(self.draw(words, rng))
                if drawn and drawn not in known:
                    known.add(drawn)
                    new.append(drawn)
        return new


NEGATORS = frozenset({"not", "no", "never", "n't", "nothing", "neither", "nor", "without"})


def negations(texts: list[str], max_words: int) -> list[str]:
    """'not ' + each text of 1..max_words words that does not start with a negator, in order, without repeats."""
    out = []
    for text in texts:
        words = text.split()
        if 0 < len(words) <= max_words and words[0].lower() not in NEGATORS:
            out.append("not " + " ".join(words))
    return list(dict.fromkeys(out))


class Labeller(Protocol):
    def logits(self, texts: list[str], batch_size: int = 128, progress: bool = False) -> np.ndarray: ...


def label_in_shards(
    teacher: Labeller, texts: list[str], directory: Path, shard_size: int, batch_size: int
) -> np.ndarray:
    """The teacher's logits for `texts`, in order, `shard_size` texts at a time. Each shard is saved (atomically)
    under `directory` with the hash of its texts in its name, and a shard already there is read instead of
    labelled again: the texts are built from a seed, so a rerun of the same command finds the same shards."""
    directory.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(texts), shard_size)
    parts = []
    for number, start in enumerate(starts, start=1):
        chunk = texts[start : start + shard_size]
        digest = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
        path = directory / f"logits-{number:04d}-{digest}.npy"
        if path.is_file():
            log.info("shard %d/%d: labelled already (%s)", number, len(starts), path.name)
            parts.append(np.load(path))
            continue
        log.info("shard %d/%d: %d texts", number, len(starts), len(chunk))
        logits = np.asarray(teacher.logits(chunk, batch_size, progress=True), dtype=np.float32)
        partial = path.with_name(path.stem + ".partial.npy")
        np.save(partial, logits)
        partial.replace(path)
        parts.append(logits)
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)


def write_transfer(path: Path, texts: list[str], labels: list[int], logits: np.ndarray, sources: list[str]) -> None:
    """Tab-separated, no quoting: texts are whitespace-normalised, so they hold no tab and no newline."""
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for text, label, row, source in zip(texts, labels, logits, sources, strict=True):
            f.write(f"{' '.join(text.split())}\t{label}\t{row[0]:.5f}\t{row[1]:.5f}\t{source}\n")


@dataclass(frozen=True)
class TransferRow:
    text: str
    label: int  # -1: no gold label (augmented or unlabeled text)
    logits: np.ndarray
    source: str


def read_transfer(directory: Path) -> list[TransferRow]:
    rows = []
    with gzip.open(directory / TRANSFER_FILE, "rt", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != COLUMNS:
            raise ValueError(f"{directory / TRANSFER_FILE}: header {header}, expected {COLUMNS}")
        for number, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(COLUMNS):
                raise ValueError(f"{directory / TRANSFER_FILE}:{number}: {len(parts)} columns, expected 5")
            logits = np.array([float(parts[2]), float(parts[3])], dtype=np.float32)
            rows.append(TransferRow(parts[0], int(parts[1]), logits, parts[4]))
    return rows


def main(argv: list[str] | None = None) -> None:
    from training.teacher_sentiment import TEACHER_FILE, Teacher

    cfg = parse_config(TransferConfig, argv)
    start_run(cfg.threads, cfg.seed)
    started = time.monotonic()
    rng = random.Random(cfg.seed)
    sst = read_labeled_tsv(Path(cfg.data))[: cfg.max_rows]
    train_rows, valid_rows = sst_sentence_split(sst, cfg.valid_fraction, cfg.seed)
    gold = {r.text: r.label for r in train_rows}
    texts, labels, sources = list(gold), list(gold.values()), ["sst2"] * len(gold)
    augmenter = Augmenter(ContextClasses([t.split() for t in gold]), cfg.p_mask, cfg.p_replace, cfg.p_ngram)
    augmenter.max_ngram = cfg.max_ngram
    augmented = augmenter.augment(list(gold), cfg.copies, rng)
    texts += augmented
    labels += [-1] * len(augmented)
    sources += ["sst2-aug"] * len(augmented)
    known = set(texts)
    negated = [t for t in negations(list(gold), cfg.negate_words) if t not in known]
    texts += negated
    labels += [-1] * len(negated)
    sources += ["sst2-neg"] * len(negated)
    held_out = {r.text for r in valid_rows}
    sentences: list[str] = []
    if cfg.imdb_sentences:
        reviews: list[str] = []
        if cfg.imdb:
            imdb = read_labeled_tsv(Path(cfg.imdb))[: cfg.max_rows]
            imdb_train, _ = split_off(imdb, cfg.imdb_valid_fraction, cfg.seed)
            reviews += [r.text for r in imdb_train]
        if cfg.unsup:
            reviews += list(read_lines(Path(cfg.unsup), cfg.max_rows))
        known = set(texts) | held_out
        sentences = sorted({s for s in review_sentences(iter(reviews)) if s not in known})
        sentences = random.Random(cfg.seed).sample(sentences, min(cfg.imdb_sentences, len(sentences)))
    texts += sentences
    labels += [-1] * len(sentences)
    sources += ["imdb-sentence"] * len(sentences)
    keep = [i for i, t in enumerate(texts) if t not in held_out]  # a drawn n-gram may equal a held-out sentence
    texts, labels, sources = [texts[i] for i in keep], [labels[i] for i in keep], [sources[i] for i in keep]
    counts = {s: sources.count(s) for s in SOURCES}
    log.info("transfer set: %s; context replacements found %d of %d", counts, augmenter.replaced, augmenter.tried)
    built = time.monotonic() - started

    teacher = Teacher.load(Path(cfg.teacher), cfg.device, cfg.precision)
    labelled = time.monotonic()
    out = Path(cfg.out)
    logits = label_in_shards(teacher, texts, out / "shards", cfg.shard_size, cfg.batch_size)
    labelled = time.monotonic() - labelled
    write_transfer(out / TRANSFER_FILE, texts, labels, logits, sources)
    agree = [int(logits[i].argmax()) == labels[i] for i in range(len(texts)) if labels[i] >= 0]
    record = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command_of(cfg),
        "config": dataclasses.asdict(cfg),
        "rows": len(texts),
        "sources": counts,
        "teacher_agrees_with_gold": round(100 * float(np.mean(agree)), 2) if agree else None,
        "context_replacement_found": round(augmenter.replaced / max(1, augmenter.tried), 4),
        "augmentation": {
            k: getattr(cfg, k) for k in ("copies", "p_mask", "p_replace", "p_ngram", "max_ngram", "negate_words")
        },
        "class_source": "words seen between the same (previous, next) words in SST-2 train (no POS tagger)",
        "teacher": json.loads((Path(cfg.teacher) / TEACHER_FILE).read_text()) | {"history": None},
        "device": str(teacher.device),
        "seconds": {"build": round(built, 1), "label": round(labelled, 1)},
        "texts_per_second": round(len(texts) / max(labelled, 1e-9), 1),
        "data": data_record(*[Path(p) for p in (cfg.data, cfg.imdb, cfg.unsup) if p]),
    }
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    log.info("wrote %s: %d rows, labelled at %.0f texts/s", out, len(texts), record["texts_per_second"])


if __name__ == "__main__":
    main()
