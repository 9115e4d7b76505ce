"""What the sentiment artifact holds: its labels, graph signature, parity cases, manifest fields and model card.

`training.train_sentiment` computes the numbers (validation probabilities, calibration, behaviour) with torch; this
module only turns them into an `ArtifactSpec`, so the script reads as data, model, loop, save. The label order is
the graph's output order: the service reads it back from the manifest, so it must not change between versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from rnntext.manifest import IOSpec, TensorSpec
from rnntext.vocab import Vocab
from training.artifacts import ArtifactSpec
from training.data import LabeledText
from training.export import Signature
from training.loop import FitResult

if TYPE_CHECKING:  # the script imports this module: a runtime import back would load the script twice under -m
    from training.train_sentiment import TrainConfig

LABELS = ["negative", "positive"]
RELIABILITY_FILE = "reliability.png"

SIGNATURE = Signature(
    inputs=["tokens", "lengths"],
    outputs=["probs"],
    dynamic_axes={"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probs": {0: "batch"}},
)


def padded_case(batch: int, steps: int, vocab: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """Random ids with random lengths (the first row full), padded: parity must hold on padding too."""
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    tokens = torch.randint(2, vocab, (batch, steps), generator=generator)
    tokens[torch.arange(steps).unsqueeze(0) >= lengths.unsqueeze(1)] = pad_id
    return tokens, lengths


def kept_metrics(result: FitResult) -> dict[str, float]:
    """The validation row of the weights that were kept: the best epoch's, or the averaged weights' (epoch 0)."""
    if result.best_epoch:
        return next(row for row in result.history if row["epoch"] == result.best_epoch)
    return {"epoch": 0, **(result.averaged or {})}


def artifact_spec(
    cfg: TrainConfig,
    vocab: Vocab,
    *,
    temperature: float,
    best: dict[str, float],
    valid_rows: list[LabeledText],
    gold: np.ndarray,
    probs: np.ndarray,
    n_reviews: int,
    calibration: dict[str, Any],
    behaviour: dict[str, Any],
    sections: dict[str, str],
) -> ArtifactSpec:
    """`probs` are the exported graph's (calibrated) probabilities for `valid_rows`, whose labels are `gold`;
    `sections` are extra card sections (behaviour, calibration) placed after Validation and Known weaknesses."""
    assert vocab.pad_id is not None
    confusion = [[int(((gold == g) & (probs.argmax(1) == p)).sum()) for p in range(2)] for g in range(2)]
    imdb_metrics = {}
    if "valid_imdb_accuracy" in best:
        imdb_metrics = {
            "valid_imdb_accuracy": round(best["valid_imdb_accuracy"], 2),
            "valid_imdb_reviews": n_reviews,
            "imdb_split": f"{cfg.imdb_valid_fraction:.0%} of IMDb train (seeded), never trained on",
        }
    wrong = [(r.text, r.label, p) for r, p in zip(valid_rows, probs, strict=True) if p.argmax() != r.label]
    wrong.sort(key=lambda w: -w[2].max())
    examples = "\n".join(
        f'- "{t}": gold {LABELS[g]}, predicted {LABELS[int(p.argmax())]} ({p.max():.2f})' for t, g, p in wrong[:5]
    )
    return ArtifactSpec(
        task="sentiment",
        labels=LABELS,
        signature=SIGNATURE,
        example=padded_case(2, 4, len(vocab), vocab.pad_id),
        parity_cases=[padded_case(batch, steps, len(vocab), vocab.pad_id) for batch in (1, 7) for steps in (1, 5, 300)],
        io=IOSpec(
            inputs={
                "tokens": TensorSpec(dtype="int64", shape=["batch", "time"]),
                "lengths": TensorSpec(dtype="int64", shape=["batch"]),
            },
            outputs={"probs": TensorSpec(dtype="float32", shape=["batch", len(LABELS)])},
        ),
        vocab=vocab.to_json(),
        encoder={"max_tokens": cfg.max_tokens},
        architecture={
            "pretrained": cfg.pretrained,
            "cell": cfg.cell,
            "embed": cfg.embed,
            "hidden": cfg.hidden,
            "layers": cfg.layers,
            "members": cfg.members,
            "bidirectional": True,
            "pooling": "mean+max",
            "vocab": len(vocab),
            "temperature": temperature,  # in the graph as a constant: rebuilders of the module need it
        },
        metrics={
            "valid_accuracy": round(best["valid_accuracy"], 2),
            "valid_loss": round(best["valid_loss"], 4),
            "valid_sentences": len(gold),
            "confusion_matrix": {"rows": "gold", "columns": "predicted", "labels": LABELS, "counts": confusion},
            "split": f"{cfg.valid_fraction:.0%} of SST-2 train's full sentences, their phrases removed from training",
            **imdb_metrics,
            **({"calibration": calibration} if calibration else {}),
            "behaviour": behaviour,
        },
        curves_metric="valid_accuracy",
        curves_title=f"{cfg.name}: SST-2 sentences",
        summary="Bidirectional LSTM sentence sentiment classifier (negative / positive); serves /sentiment.",
        sections={
            "Validation": f"Accuracy {best['valid_accuracy']:.2f} % on {len(gold)} held-out SST-2 training sentences "
            "(full sentences, their phrases removed from training). Confusion (rows gold, columns predicted; "
            f"negative, positive): {confusion}. "
            + (
                f"Accuracy {imdb_metrics['valid_imdb_accuracy']:.2f} % on {n_reviews} held-out IMDb training reviews. "
                if imdb_metrics
                else ""
            )
            + "The judges are SST-2 dev and IMDb test, which are not in our data.",
            "Known weaknesses": f"Reviews longer than {cfg.max_tokens} words keep only their first and last "
            f"{cfg.max_tokens // 2} words"
            + (f" (training saw at most {cfg.train_max_tokens})" if imdb_metrics else "; trained on sentences only")
            + ". Most confident mistakes on SST-2 validation sentences:\n"
            + examples,
            **sections,
        },
        data=[Path(p) for p in (cfg.data, cfg.imdb) if p],
    )
