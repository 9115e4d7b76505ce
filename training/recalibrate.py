"""A trained sentiment model made calibrated without retraining: the same weights with a temperature fitted on its
validation sentences folded into the graph (`probs` = softmax(logits / T)), written as a new version.

    python -m training.recalibrate --source=artifacts/sentiment --out=artifacts/sentiment --version=1.2.1

The new artifact goes through the one writer (`train_sentiment.export`: calibration, behaviour beside the model it
replaces, ONNX parity), on the validation split of the run that made the weights. Its manifest keeps that run's
training record, command included, since the weights are that run's; the command that ran here is added to the
record as `calibration_command`. Labels do not change: a temperature only rescales the scores.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

import torch

from bench.torch_from_onnx import load_torch  # the one ONNX -> torch rebuild
from rnntext.encoders import SentimentEncoder
from rnntext.manifest import CARD_FILE, Manifest, file_sha256
from rnntext.vocab import Vocab, load_json
from training.artifacts import CURVES_FILE
from training.config import command_of, knob, parse_config
from training.data import sentiment_splits
from training.distill import REVIEW_TEACHER_MANIFEST, TEACHER_MANIFEST
from training.loop import FitResult
from training.models import SentimentClassifier
from training.train_sentiment import TrainConfig, export, validation_metrics
from training.transfer_set import RECORD_FILE

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RecalibrateConfig:
    script: ClassVar[str] = "training.recalibrate"

    source: str = knob("artifacts/sentiment", "the sentiment artifact whose weights are kept")
    out: str = knob("artifacts/sentiment", "where the calibrated artifact is written (may be the source)")
    data: str = knob("../shared/data/sst2/train.tsv", "SST-2 train.tsv: the file the source was trained on")
    imdb: str = knob("../shared/data/imdb/train.tsv", "IMDb train.tsv, when the source was trained with reviews")
    version: str = knob("1.2.1", "the new version")


def source_config(manifest: Manifest, cfg: RecalibrateConfig) -> TrainConfig:
    """The source run's config, reading this machine's data files (checked against the recorded sha256, since the
    validation split depends on them) and writing the new version to `cfg.out`."""
    recorded = manifest.training["config"]
    files = [cfg.data] + ([cfg.imdb] if recorded.get("imdb") else [])
    expected = [d["sha256"] for d in manifest.training["data"]]
    if [file_sha256(Path(f)) for f in files] != expected:
        raise SystemExit(f"{files}: not the data {manifest.model_id} was trained on ({manifest.training['data']})")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train = TrainConfig(**{k: v for k, v in recorded.items() if k in fields})
    # No teacher nor transfer set: those runs are not here; their records are carried over from the source.
    imdb = cfg.imdb if recorded.get("imdb") else ""
    return dataclasses.replace(
        train, data=cfg.data, imdb=imdb, out=cfg.out, version=cfg.version, teacher="", transfer="", calibrate=True
    )


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(RecalibrateConfig, argv)
    torch.set_num_threads(1)
    source, out = Path(cfg.source), Path(cfg.out)
    model, _, manifest = load_torch(source)
    assert isinstance(model, SentimentClassifier)
    if float(model.temperature) != 1.0:
        raise SystemExit(f"{manifest.model_id} is calibrated already (T = {float(model.temperature)})")
    train = source_config(manifest, cfg)
    vocab = Vocab.from_json(load_json(source / manifest.vocab_file))
    assert vocab.pad_id is not None
    # What the new artifact carries over from the source: read before `out` (maybe the same folder) is written.
    curves = (source / CURVES_FILE).read_bytes()
    kept = (TEACHER_MANIFEST, RECORD_FILE, REVIEW_TEACHER_MANIFEST)  # the distillation records the source has
    records = {name: (source / name).read_bytes() for name in kept if (source / name).is_file()}
    card = (source / CARD_FILE).read_text()
    distillation = card[card.index("\n## Distillation\n") :] if "\n## Distillation\n" in card else ""

    splits = sentiment_splits(
        Path(train.data), Path(train.imdb) if train.imdb else None, train.max_rows, train.valid_fraction,
        train.imdb_valid_fraction, train.seed,
    )  # fmt: skip
    encoder = SentimentEncoder(vocab, train.max_tokens)
    valid = [(encoder.encode(r.text), r.label) for r in splits.valid]
    reviews = [(encoder.encode(r.text), r.label) for r in splits.imdb_valid]
    model.eval()
    with torch.no_grad():
        metrics = validation_metrics(model, valid, reviews, vocab.pad_id)
    recorded = manifest.metrics
    if round(metrics["valid_accuracy"], 2) != recorded["valid_accuracy"]:
        raise SystemExit(f"validation accuracy {metrics['valid_accuracy']:.2f}, recorded {recorded['valid_accuracy']}")
    best_epoch = int(manifest.training["best_epoch"])
    result = FitResult(
        best_state=model.state_dict(),
        best_metric=metrics.get("valid_mean_accuracy", metrics["valid_accuracy"]),
        best_epoch=best_epoch,
        history=[{"epoch": best_epoch, "train_loss": float("nan"), **metrics}],  # nothing trained here
        seconds=float(manifest.training["duration_seconds"]),
    )
    ran = command_of(cfg)  # type: ignore[arg-type]  # any knob dataclass with a `script` spells out the same way
    training = {**manifest.training, "calibration_command": ran}
    export(model, vocab, train, result, valid, splits.valid, len(reviews), training)

    (out / CURVES_FILE).write_bytes(curves)  # the source run's curves: this run trained nothing
    for name, record in records.items():
        (out / name).write_bytes(record)
    card_text = (
        (out / CARD_FILE)
        .read_text()
        .replace(
            "## Calibration\n",
            f"## Calibration\nFitted after training, on the weights of {manifest.model_id} unchanged: `{ran}`. ",
        )
    )
    (out / CARD_FILE).write_text(card_text + distillation)
    log.info("wrote %s: %s with T = %.3f", out, manifest.model_id, float(model.temperature))


if __name__ == "__main__":
    main()
