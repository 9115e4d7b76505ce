"""A bad artifact stops start-up with a message naming the file and the check, and leaves no process behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.service.serving import REPO, free_port, processes_with_env


def run_server(artifacts: Path, tmp_path: Path) -> tuple[int, str, set[int]]:
    env = {"PATH": "/usr/bin:/bin", "RNNSERVE_ARTIFACTS": str(artifacts), "RNNSERVE_PORT": str(free_port()),
           "PYTHONPATH": str(REPO)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "service.server"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = process.communicate(timeout=90)
    finally:
        process.kill()
    return process.returncode, out.decode(errors="replace"), processes_with_env("RNNSERVE_ARTIFACTS", str(artifacts))


def test_tampered_model_stops_start_up_before_any_worker(artifacts: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(artifacts, tmp_path / "artifacts"))
    with (copy / "ner" / "model.onnx").open("ab") as f:
        f.write(b"\0")
    code, log, left = run_server(copy, tmp_path)
    assert code == 1 and not left
    assert "ner/model.onnx: sha256 check failed" in log and "inference-worker" not in log


def test_graph_mismatch_found_by_a_worker_stops_the_server(artifacts: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(artifacts, tmp_path / "artifacts"))
    manifest = copy / "sentiment" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["io"]["inputs"]["ids"] = data["io"]["inputs"].pop("tokens")
    manifest.write_text(json.dumps(data))
    code, log, left = run_server(copy, tmp_path)
    assert code != 0 and not left
    assert "sentiment/model.onnx: input names check failed" in log
