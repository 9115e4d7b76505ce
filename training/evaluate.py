"""Score a committed artifact on a data file through onnxruntime, exactly as served (no torch needed).

    python -m training.evaluate artifacts/sentiment ../shared/data/imdb/train.tsv --limit=2000
    python -m training.evaluate artifacts/sentiment ../shared/data/sst2/train.tsv --valid \
        --imdb=../shared/data/imdb/train.tsv
    python -m training.evaluate artifacts/ner ../shared/data/conll2003/valid.txt
    python -m training.evaluate artifacts/ner ../shared/data/conll2003/valid.txt --ensemble runs/ner-seed2
    python -m training.evaluate artifacts/charlm ../shared/data/tinyshakespeare/train.txt --tail=0.1

Only ever point it at training or validation files: the held-out judges stay unseen.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rnntext.artifact import load_encoder
from rnntext.encoders import CharEncoder, NerEncoder, SentimentEncoder, pad
from rnntext.manifest import Manifest
from training.data import read_conll, read_labeled_tsv, sentiment_splits
from training.ner_eval import variant_scores
from training.tagger_ensemble import TaggerEnsemble


def evaluate_sentiment(
    session: ort.InferenceSession, encoder: SentimentEncoder, path: Path, limit: int | None, seed: int
) -> dict[str, float]:
    rows = read_labeled_tsv(path)
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    probs = sentiment_probs(session, encoder, [r.text for r in rows])
    correct = int((probs.argmax(1) == np.array([r.label for r in rows])).sum())
    return {"accuracy": 100.0 * correct / len(rows), "examples": len(rows)}


def sentiment_probs(
    session: ort.InferenceSession, encoder: SentimentEncoder, texts: list[str], batch: int = 64
) -> np.ndarray:
    """Label probabilities for `texts` (in their order), computed in batches of similar length (less padding)."""
    encoded = [encoder.encode(t) for t in texts]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    parts = []
    for i in range(0, len(order), batch):
        rows = order[i : i + batch]
        tokens, lengths = pad([encoded[r] for r in rows], encoder.vocab.pad_id or 0)
        (part,) = session.run(None, {"tokens": tokens, "lengths": lengths})
        parts.append((rows, part))
    probs = np.zeros((len(texts), parts[0][1].shape[1] if parts else 0), np.float32)
    for rows, part in parts:
        probs[rows] = part
    return probs


def evaluate_sentiment_valid(
    session: ort.InferenceSession, encoder: SentimentEncoder, manifest: Manifest, sst2: Path, imdb: Path | None
) -> dict[str, float]:
    """Accuracy on the artifact's own validation rows: the SST-2 sentences (and IMDb reviews) its training run held
    out, drawn again from its recorded split knobs; what the manifest's valid_accuracy figures claim."""
    config = manifest.training["config"]
    splits = sentiment_splits(
        sst2, imdb, config.get("max_rows"), config["valid_fraction"], config["imdb_valid_fraction"], config["seed"]
    )
    result: dict[str, float] = {}
    for name, rows in (("valid", splits.valid), ("valid_imdb", splits.imdb_valid)):
        if rows:
            probs = sentiment_probs(session, encoder, [r.text for r in rows])
            result[f"{name}_accuracy"] = 100.0 * float((probs.argmax(1) == [r.label for r in rows]).mean())
            result[f"{name}_examples"] = len(rows)
    return result


def artifact_sentiment_probs(directory: Path, texts: list[str], max_tokens: int) -> np.ndarray:
    """A sentiment artifact's probabilities for `texts`, each cut to `max_tokens` words (as in training)."""
    manifest = Manifest.read(directory)
    encoder = load_encoder(directory, manifest)
    if not isinstance(encoder, SentimentEncoder):
        raise ValueError(f"{directory}: not a sentiment artifact")
    session = ort.InferenceSession(str(directory / manifest.model_file), providers=["CPUExecutionProvider"])
    return sentiment_probs(session, SentimentEncoder(encoder.vocab, max_tokens), texts)


def evaluate_ner(tagger: TaggerEnsemble, path: Path) -> dict[str, float]:
    """Entity F1 overall and per type for tokens as given, lower-cased and upper-cased, and on raw text, of one
    tagger or of an ensemble scored as one."""
    sentences = [(s.words, s.tags) for s in read_conll(path)]
    scores = variant_scores(tagger.log_probs_of, tagger.encoder, tagger.decoder, sentences)
    return {
        f"f1_{variant}{'' if label == 'overall' else '_' + label}": round(s["f1"], 2)
        for variant, by_label in scores.items()
        for label, s in by_label.items()
    }


def evaluate_charlm(
    session: ort.InferenceSession, encoder: CharEncoder, manifest: Manifest, path: Path, tail: float, chunk: int = 256
) -> dict[str, float]:
    text = path.read_text(encoding="utf-8")
    ids = encoder.encode(text[int(len(text) * (1 - tail)) :])
    layers, hidden = manifest.architecture["layers"], manifest.architecture["hidden"]
    h = c = np.zeros((layers, 1, hidden), np.float32)
    total = 0.0
    for start in range(0, len(ids) - 1, chunk):
        piece = ids[start : start + chunk + 1]
        logits, h, c = session.run(None, {"tokens": piece[None, :-1], "h0": h, "c0": c})
        logits = logits[0] - logits[0].max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total -= float(log_probs[np.arange(len(piece) - 1), piece[1:]].sum())
    loss = total / (len(ids) - 1)
    return {"loss": loss, "bits_per_char": loss / math.log(2), "chars": len(ids)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="artifact directory (artifacts/<task>)")
    parser.add_argument("data", type=Path, help="TSV (sentiment), CoNLL (ner) or text (charlm)")
    parser.add_argument("--limit", type=int, default=None, help="sentiment: score a seeded sample of N rows")
    parser.add_argument("--tail", type=float, default=1.0, help="charlm: score the last share of the text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--valid", action="store_true", help="sentiment: score only the validation rows the artifact's run held out"
    )
    parser.add_argument("--imdb", type=Path, default=None, help="sentiment --valid: IMDb train.tsv, for its reviews")
    parser.add_argument(
        "--ensemble", type=Path, nargs="+", default=[], help="ner: further taggers (same vocabulary) to average with"
    )
    args = parser.parse_args(argv)
    manifest = Manifest.read(args.artifact)
    encoder = load_encoder(args.artifact, manifest)
    if isinstance(encoder, NerEncoder):  # the tagger (or ensemble) opens its own sessions
        try:
            tagger = TaggerEnsemble.load([args.artifact, *args.ensemble])
        except ValueError as e:
            parser.error(str(e))
        result = evaluate_ner(tagger, args.data)
    elif isinstance(encoder, SentimentEncoder) and args.valid:
        session = open_session(args.artifact, manifest)
        result = evaluate_sentiment_valid(session, encoder, manifest, args.data, args.imdb)
    elif isinstance(encoder, SentimentEncoder):
        result = evaluate_sentiment(open_session(args.artifact, manifest), encoder, args.data, args.limit, args.seed)
    else:
        result = evaluate_charlm(open_session(args.artifact, manifest), encoder, manifest, args.data, args.tail)
    model = " + ".join([manifest.model_id, *(str(d) for d in args.ensemble)])
    print(json.dumps({"model": model, "data": args.data.name, **result}, indent=1))


def open_session(directory: Path, manifest: Manifest) -> ort.InferenceSession:
    return ort.InferenceSession(str(directory / manifest.model_file), providers=["CPUExecutionProvider"])


if __name__ == "__main__":
    main()
