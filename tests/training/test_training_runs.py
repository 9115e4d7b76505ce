"""Short real training runs on slices of the real data: each writes a complete, self-consistent artifact.

The full runs are `make train` (minutes to an hour each); these take seconds and prove the same code path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from rnntext.artifact import load_encoder
from rnntext.manifest import Manifest, file_sha256
from training import sentiment_artifact, train_charlm, train_ner, train_sentiment

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
            "--weight-drop=0.25",  # the AWD path (functional_call with dropped weights) trains and exports plainly
            "--average-last=2",
        ]
    )
    manifest = check_artifact(out, "charlm")
    vocab_size = manifest.architecture["vocab"]
    assert manifest.metrics["valid_loss"] < 0.85 * np.log(vocab_size)  # well below a uniform guess
    assert len(manifest.metrics["probe_losses"]) == 4 and all(p["loss"] > 0 for p in manifest.metrics["probe_losses"])
    assert "--weight-drop=0.25" in manifest.training["command"] and "--max-chars=50000" in manifest.training["command"]


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
            "--epochs=3",
            "--lr=1e-2",
            "--pretrained=none",
        ]
    )
    manifest = check_artifact(out, "sentiment")
    assert manifest.labels == ["negative", "positive"]
    counts = manifest.metrics["confusion_matrix"]["counts"]
    assert sum(map(sum, counts)) == manifest.metrics["valid_sentences"]
    assert manifest.metrics["valid_accuracy"] > 55.0  # better than the majority class on a 4,000-row slice
    # Calibrated: the fitted temperature is in the graph (parity above held with it), ECE before and after recorded.
    calib = manifest.metrics["calibration"]
    assert calib["temperature"] > 0 and calib["valid_nll_after"] <= calib["valid_nll_before"] + 1e-6
    assert (out / "reliability.png").is_file() and "reliability.png" in (out / "MODEL_CARD.md").read_text()
    assert {"negated_negative", "contrast", "overall"} <= set(manifest.metrics["behaviour"])
    # The PyTorch rebuild of the ONNX weights (bench baselines) carries the temperature too.
    from bench.torch_from_onnx import load_torch

    rebuilt, _, _ = load_torch(out)
    assert float(rebuilt.temperature) == manifest.architecture["temperature"]
    assert abs(manifest.architecture["temperature"] - calib["temperature"]) < 1e-4
    tokens, lengths = sentiment_artifact.padded_case(3, 9, manifest.architecture["vocab"], 0)
    session = ort.InferenceSession(str(out / manifest.model_file), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(tokens, lengths).numpy(), probs, atol=1e-5)


def test_ensemble_teacher_then_distilled_student(data_dir: Path, tmp_path: Path) -> None:
    """A 2-member ensemble exports as one graph (its probabilities = the members' mean); a single model then
    learns from it (--teacher) and records where its targets came from."""
    common = [f"--data={data_dir}/sst2/train.tsv", "--imdb=", "--max-rows=4000", "--embed=32", "--hidden=32"]
    common += ["--epochs=2", "--pretrained=none", f"--runs={tmp_path}"]
    teacher = tmp_path / "teacher"
    train_sentiment.main([*common, f"--out={teacher}", "--members=2"])
    manifest = check_artifact(teacher, "sentiment")
    assert manifest.architecture["members"] == 2
    session = ort.InferenceSession(str(teacher / manifest.model_file), providers=["CPUExecutionProvider"])
    assert sum(n.op_type == "LSTM" for n in _graph_nodes(teacher)) == 2  # one per member
    tokens, lengths = sentiment_artifact.padded_case(3, 6, manifest.architecture["vocab"], 0)
    (probs,) = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)

    # Distillation targets: (1 - w) * one-hot(label) + w * the teacher's probabilities for the same text.
    texts = ["a gripping , funny film that never lets go", "dull"]  # longest first: order must survive sorting
    rows = [(np.array([1, 2]), 1), (np.array([3]), 0)]
    cfg = train_sentiment.TrainConfig(teacher=str(teacher), distill_weight=0.25)
    targets = [t for _, t in train_sentiment.distilled(rows, cfg, texts, [])]
    encoder = load_encoder(teacher, manifest)
    for text, (_, label), target in zip(texts, rows, targets, strict=True):
        (alone,) = session.run(
            None, {"tokens": encoder.encode(text)[None], "lengths": np.array([len(encoder.encode(text))])}
        )
        np.testing.assert_allclose(target, 0.75 * np.eye(2)[label] + 0.25 * alone[0], atol=1e-6)

    student = tmp_path / "student"
    train_sentiment.main([*common, f"--out={student}", f"--teacher={teacher}", "--distill-weight=0.7"])
    manifest = check_artifact(student, "sentiment")
    assert manifest.architecture["members"] == 1
    assert manifest.training["config"]["teacher"] == str(teacher)
    assert manifest.training["config"]["distill_weight"] == 0.7
    assert Manifest.read(teacher).model_id in (student / "MODEL_CARD.md").read_text().split("## Distillation")[1]
    assert (student / "teacher-manifest.json").read_bytes() == (teacher / "manifest.json").read_bytes()


def _graph_nodes(directory: Path) -> list[onnx.NodeProto]:
    return list(onnx.load(str(directory / "model.onnx")).graph.node)


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
            "--lm-loss=0.1",
            "--lm-words=500",
        ]
    )
    manifest = check_artifact(out, "ner")
    assert manifest.architecture["auxiliary_lm"] == "next/previous word, weight 0.1, 500 words"
    assert manifest.tags is not None and len(manifest.tags) == 9
    assert manifest.metrics["valid_f1"] > 10.0  # entities found at all after seconds of training
    assert {"given", "lower", "upper", "text"} <= set(manifest.metrics["valid_variant_scores"])
    assert {"PER", "LOC", "overall"} <= set(manifest.metrics["valid_variant_scores"]["text"])  # raw text per type
    assert manifest.metrics["valid_f1_lower"] > 5.0  # case augmentation: lower-cased text is not hopeless
    crf = manifest.decoding
    assert crf is not None and len(crf["transitions"]) == 10 and len(crf["end"]) == 9  # start row + 9 tags
    assert manifest.training["command"].startswith("python -m training.train_ner --out=")


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
        assert body["model"] == f"sentiment-gru-smoke@{train_sentiment.TrainConfig().version}"
        assert body["label"] in ("negative", "positive") and abs(sum(body["scores"].values()) - 1) < 1e-5
    finally:
        stop_server(server)


def test_recalibration_folds_a_temperature_into_the_same_weights(data_dir: Path, tmp_path: Path) -> None:
    """training.recalibrate: a model trained without calibration gets a fitted temperature as a new version; its
    labels do not change, its scores are the old ones at temperature T, and its record is still the training run's."""
    out = tmp_path / "sentiment"
    common = [f"--data={data_dir}/sst2/train.tsv", "--imdb=", "--max-rows=4000", "--embed=32", "--hidden=32"]
    train_sentiment.main([*common, f"--out={out}", f"--runs={tmp_path}", "--epochs=2", "--calibrate=false"])
    before = Manifest.read(out)
    texts = ["a gripping , funny film .", "dull and thin .", "not bad", "it is a film ."]
    old = train_sentiment.artifact_sentiment_probs(out, texts, 400)
    assert before.architecture["temperature"] == 1.0 and "calibration" not in before.metrics

    from training import recalibrate

    ran = [f"--source={out}", f"--out={out}", f"--data={data_dir}/sst2/train.tsv", "--imdb=", "--version=9.9.1"]
    recalibrate.main(ran)
    after = check_artifact(out, "sentiment")
    temperature = after.architecture["temperature"]
    assert after.version == "9.9.1" and temperature != 1.0
    assert after.metrics["calibration"]["temperature"] == round(temperature, 4)
    assert after.training["command"] == before.training["command"]  # the weights' run
    assert after.training["calibration_command"].startswith("python -m training.recalibrate --source=")
    new = train_sentiment.artifact_sentiment_probs(out, texts, 400)
    np.testing.assert_array_equal(new.argmax(1), old.argmax(1))
    rescaled = torch.softmax(torch.log(torch.from_numpy(old).double()) / temperature, dim=1).numpy()
    np.testing.assert_allclose(new, rescaled, atol=1e-5)
    assert after.metrics["valid_accuracy"] == before.metrics["valid_accuracy"]
    card = (out / "MODEL_CARD.md").read_text()
    assert f"| {before.model_id} (before) | this model |" in card and "Fitted after training" in card
    with pytest.raises(SystemExit, match="calibrated already"):
        recalibrate.main(ran)
