"""Write a self-describing artifact directory: model.onnx, vocab.json, manifest.json, MODEL_CARD.md, curves.png."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from rnntext.manifest import IOSpec, Manifest, Task, file_sha256
from rnntext.vocab import save_json
from training.export import ParityReport

MODEL_FILE, VOCAB_FILE, CURVES_FILE, CARD_FILE = "model.onnx", "vocab.json", "curves.png", "MODEL_CARD.md"


def data_record(*paths: Path) -> list[dict[str, str]]:
    """Data files by dataset folder and name (no machine paths) with their sha256, so a rerun can check them."""
    return [{"file": f"{p.resolve().parent.name}/{p.name}", "sha256": file_sha256(p)} for p in paths]


def training_record(config: Any, data: list[dict[str, str]], seconds: float, best_epoch: int) -> dict[str, Any]:
    module = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "?"
    return {
        "command": f"python -m training.{module} " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "config": dataclasses.asdict(config),
        "data": data,
        "seed": config.seed,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "duration_seconds": round(seconds, 1),
        "best_epoch": best_epoch,
    }


def write_manifest(
    out: Path,
    *,
    task: Task,
    name: str,
    version: str,
    io: IOSpec,
    encoder: dict[str, Any],
    architecture: dict[str, Any],
    metrics: dict[str, Any],
    training: dict[str, Any],
    parity: ParityReport,
    labels: list[str] | None = None,
    tags: list[str] | None = None,
) -> Manifest:
    manifest = Manifest(
        task=task,
        name=name,
        version=version,
        model_file=MODEL_FILE,
        sha256=file_sha256(out / MODEL_FILE),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        vocab_file=VOCAB_FILE,
        labels=labels,
        tags=tags,
        io=io,
        encoder=encoder,
        architecture=architecture,
        metrics=metrics,
        training=training,
        parity=parity.to_json(),
    )
    manifest.write(out)
    return manifest


def write_vocab(out: Path, data: dict[str, Any]) -> None:
    save_json(out / VOCAB_FILE, data)


def write_card(out: Path, manifest: Manifest, summary: str, sections: dict[str, str]) -> None:
    """A short model card: what it is, how it was made, how good it is on our own validation data, weaknesses."""
    t = manifest.training
    size_mb = (out / MODEL_FILE).stat().st_size / 1e6
    lines = [
        f"# {manifest.name} {manifest.version} ({manifest.task})",
        "",
        summary,
        "",
        "## How it was made",
        f"- Command: `{t['command']}`",
        "- Data: " + ", ".join(f"`{d['file']}` (sha256 `{d['sha256'][:12]}…`)" for d in t["data"]),
        f"- Seed {t['seed']}, torch {t['torch_version']}, {t['threads']} CPU threads, "
        f"{t['duration_seconds'] / 60:.1f} min, best epoch {t['best_epoch']}",
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
