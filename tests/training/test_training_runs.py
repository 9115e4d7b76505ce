"""Short real training runs on slices of the real data: each writes a complete, self-consistent artifact.

The full runs are `make train` (minutes to an hour each); these take seconds and prove the same code path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from rnntext.artifact import load_encoder
from rnntext.manifest import Manifest, file_sha256
from training import train_charlm, train_ner, train_sentiment

REPO = Path(__file__).resolve().parents[2]


def check_artifact(out: Path, task: str) -> Manifest:
    manifest = Manifest.read(out)
    assert manifest.task == task
    assert manifest.sha256 == file_sha256(out / manifest.model_file)
    assert {"MODEL_CARD.md", "curves.png", "vocab.json"} <= {p.name for p in out.iterdir()}
    assert manifest.parity["max_abs_diff"] < 1e-4 and len(manifest.parity["shapes_checked"]) == 6
    assert manifest.training["data"] and all(len(d["sha256"]) == 64 for d in manifest.training["data"])
    assert "/" not in manifest.training["data"][0]["file"].split("/", 1)[0]  # dataset/file, no machine path
    session = ort.InferenceSession(str(out / manifest.model_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(manifest.io.inputs)
    assert [o.name for o in session.get_outputs()] == list(manifest.io.outputs)
    load_encoder(out, manifest)
    return manifest


def test_charlm_short_run_learns_and_exports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "charlm"
    train_charlm.main(
        [
            f"--data={data_dir}/tinyshakespeare/train.txt",
            f"--out={out}",
            f"--runs={tmp_path}",
            "--max-chars=50000",
            "--hidden=48",
            "--layers=1",
            "--embed=16",
            "--seq-len=64",
            "--batch-size=16",
            "--epochs=2",
            "--steps-per-epoch=40",
            "--lr=1e-2",
        ]
    )
    manifest = check_artifact(out, "charlm")
    vocab_size = manifest.architecture["vocab"]
    assert manifest.metrics["valid_loss"] < 0.85 * np.log(vocab_size)  # well below a uniform guess


def test_sentiment_short_run_learns_and_exports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sentiment"
    train_sentiment.main(
        [
            f"--data={data_dir}/sst2/train.tsv",
            "--imdb=",
            f"--out={out}",
            f"--runs={tmp_path}",
            "--max-rows=4000",
            "--embed=32",
            "--hidden=32",
            "--epochs=2",
            "--pretrained=none",
        ]
    )
    manifest = check_artifact(out, "sentiment")
    assert manifest.labels == ["negative", "positive"]
    counts = manifest.metrics["confusion_matrix"]["counts"]
    assert sum(map(sum, counts)) == manifest.metrics["valid_sentences"]
    assert manifest.metrics["valid_accuracy"] > 55.0  # better than the majority class on a 4,000-row slice


def test_ner_short_run_learns_and_exports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ner"
    train_ner.main(
        [
            f"--train={data_dir}/conll2003/train.txt",
            f"--valid={data_dir}/conll2003/valid.txt",
            f"--out={out}",
            f"--runs={tmp_path}",
            "--max-sentences=1500",
            "--hidden=32",
            "--word-embed=32",
            "--char-filters=16",
            "--epochs=3",
            "--batch-size=16",
            "--lr=5e-3",
            "--pretrained=none",
        ]
    )
    manifest = check_artifact(out, "ner")
    assert manifest.tags is not None and len(manifest.tags) == 9
    assert manifest.metrics["valid_f1"] > 10.0  # entities found at all after seconds of training


def test_from_scratch_cell_trains_and_exports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sentiment-gru"
    train_sentiment.main(
        [
            f"--data={data_dir}/sst2/train.tsv",
            "--imdb=",
            f"--out={out}",
            f"--runs={tmp_path}",
            "--max-rows=1500",
            "--embed=16",
            "--hidden=16",
            "--epochs=1",
            "--cell=gru",
            "--pretrained=none",
        ]
    )
    assert check_artifact(out, "sentiment").architecture["cell"] == "gru"


def test_torchrun_two_ranks_end_with_the_same_weights(data_dir: Path, tmp_path: Path) -> None:
    """DistributedDataParallel on CPU (gloo): both ranks train on their own shards and finish identical."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "training.train_sentiment",
        f"--data={data_dir}/sst2/train.tsv",
        "--imdb=",
        f"--out={tmp_path / 'out'}",
        f"--runs={tmp_path}",
        "--max-rows=1200",
        "--embed=16",
        "--hidden=16",
        "--epochs=1",
        "--save-rank-weights=true",
        "--pretrained=none",
    ]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, timeout=300, capture_output=True)
    rank0 = torch.load(tmp_path / "sentiment" / "final-rank0.pt")
    rank1 = torch.load(tmp_path / "sentiment" / "final-rank1.pt")
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)
    assert (tmp_path / "out" / "model.onnx").is_file()  # rank 0 alone writes the artifact


def test_service_serves_a_from_scratch_cell_model_unchanged(data_dir: Path, tmp_path: Path) -> None:
    """A sentiment model trained with the from-scratch GRU replaces the committed one; the real server serves it."""
    import shutil

    import httpx

    from tests.service.serving import start_server, stop_server

    served = tmp_path / "artifacts"
    for task in ("charlm", "ner"):
        shutil.copytree(REPO / "artifacts" / task, served / task)
    train_sentiment.main(
        [
            f"--data={data_dir}/sst2/train.tsv",
            "--imdb=",
            f"--out={served / 'sentiment'}",
            f"--runs={tmp_path}",
            "--max-rows=1500",
            "--embed=16",
            "--hidden=16",
            "--epochs=1",
            "--cell=gru",
            "--pretrained=none",
            "--name=sentiment-gru-smoke",
        ]
    )
    server = start_server(served, tmp_path / "server")
    try:
        reply = httpx.post(server.url + "/sentiment", json={"text": "a gripping, funny film"}, timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["model"] == "sentiment-gru-smoke@1.1.0"
        assert body["label"] in ("negative", "positive") and abs(sum(body["scores"].values()) - 1) < 1e-5
    finally:
        stop_server(server)
