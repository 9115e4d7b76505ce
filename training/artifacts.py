"""The one artifact writer: model.onnx (exported, parity-checked), vocab.json, curves.png, manifest.json and
MODEL_CARD.md, written the same way for the three tasks from an `ArtifactSpec` each training script fills in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnntext.manifest import CARD_FILE, IOSpec, Manifest, Task, file_sha256
from rnntext.vocab import save_json
from training.config import RunConfig, command_of
from training.export import Inputs, Signature, write_checked
from training.loop import FitResult, plot_history

MODEL_FILE, VOCAB_FILE, CURVES_FILE = "model.onnx", "vocab.json", "curves.png"


@dataclasses.dataclass
class ArtifactSpec:
    """What a training script knows about its model that the writer cannot work out for itself."""

    task: Task
    signature: Signature
    example: Inputs  # the export example; parity is checked at `parity_cases`, which should differ from it
    parity_cases: Sequence[Inputs]
    io: IOSpec
    vocab: dict[str, Any]
    encoder: dict[str, Any]
    architecture: dict[str, Any]
    metrics: dict[str, Any]
    curves_metric: str
    curves_title: str
    summary: str  # the card's first paragraph
    sections: dict[str, str]  # the card's sections after "How it was made", title -> markdown
    data: Sequence[Path]  # training and validation files, recorded with their sha256
    labels: list[str] | None = None
    tags: list[str] | None = None
    decoding: dict[str, Any] | None = None  # what the service needs to decode the outputs (e.g. CRF transitions)


def write_artifact(
    out: Path,
    model: nn.Module,
    spec: ArtifactSpec,
    config: RunConfig,
    result: FitResult,
    training: dict[str, Any] | None = None,
) -> Manifest:
    """`training` replaces the record made from `config` and `result`: an artifact derived from another one's
    weights (training.recalibrate) keeps the record of the run that made them."""
    out.mkdir(parents=True, exist_ok=True)
    parity = write_checked(out / MODEL_FILE, model, spec.example, spec.signature, spec.parity_cases)
    save_json(out / VOCAB_FILE, spec.vocab)
    plot_history(result.history, spec.curves_metric, out / CURVES_FILE, spec.curves_title)
    manifest = Manifest(
        task=spec.task,
        name=config.name,
        version=config.version,
        model_file=MODEL_FILE,
        sha256=file_sha256(out / MODEL_FILE),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        vocab_file=VOCAB_FILE,
        labels=spec.labels,
        tags=spec.tags,
        io=spec.io,
        encoder=spec.encoder,
        architecture={**spec.architecture, "parameters": sum(p.numel() for p in model.parameters())},
        metrics=spec.metrics,
        training=training if training is not None else training_record(config, spec.data, result),
        parity=parity.to_json(),
        **({"decoding": spec.decoding} if spec.decoding else {}),
    )
    manifest.write(out)
    write_card(out, manifest, spec.summary, spec.sections)
    return manifest


def data_record(*paths: Path) -> list[dict[str, str]]:
    """Data files by dataset folder and name (no machine paths) with their sha256, so a rerun can check them."""
    return [{"file": f"{p.resolve().parent.name}/{p.name}", "sha256": file_sha256(p)} for p in paths]


def training_record(config: RunConfig, data: Sequence[Path], result: FitResult) -> dict[str, Any]:
    return {
        "command": command_of(config),
        "config": dataclasses.asdict(config),
        "data": data_record(*data),
        "seed": config.seed,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "duration_seconds": round(result.seconds, 1),
        "resumed": result.resumed,
        "best_epoch": result.best_epoch,
        **({"averaged_last": config.average_last} if result.averaged is not None else {}),
    }


def write_card(out: Path, manifest: Manifest, summary: str, sections: dict[str, str]) -> None:
    """A short model card: what it is, how it was made, how good it is on our own validation data, weaknesses."""
    t = manifest.training
    size_mb = (out / MODEL_FILE).stat().st_size / 1e6
    kept = (
        f"best epoch {t['best_epoch']}"
        if t["best_epoch"]
        else f"the mean of the last {t.get('averaged_last')} epochs' weights"
    )
    lines = [
        f"# {manifest.name} {manifest.version} ({manifest.task})",
        "",
        summary,
        "",
        "## How it was made",
        f"- Command: `{t['command']}`",
        "- Data: " + ", ".join(f"`{d['file']}` (sha256 `{d['sha256'][:12]}…`)" for d in t["data"]),
        f"- Seed {t['seed']}, torch {t['torch_version']}, CPU threads: {t['threads']}, "
        f"{t['duration_seconds'] / 60:.1f} min, weights kept: {kept}",
        f"- Architecture: {', '.join(f'{k}={v}' for k, v in manifest.architecture.items())}",
        f"- ONNX file: {size_mb:.1f} MB, sha256 `{manifest.sha256[:12]}…`; ONNX vs PyTorch max abs diff "
        f"{manifest.parity['max_abs_diff']:.2g} over {len(manifest.parity['shapes_checked'])} input shapes",
        "",
        "![training curves](curves.png)",
        "",
    ]
    for title, body in sections.items():
        lines += [f"## {title}", body.rstrip(), ""]
    (out / CARD_FILE).write_text("\n".join(lines), encoding="utf-8")
