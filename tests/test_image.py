"""The image built and run: `make image-test` (deploy/image/check.py) inside `make test`, where a Docker engine runs or
buildah can build as root; a skip that says what is missing otherwise. Around it, fast checks of what the image test
reads from the README, which run everywhere."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("image_check", REPO / "deploy" / "image" / "check.py")
assert spec and spec.loader
check = importlib.util.module_from_spec(spec)
sys.modules["image_check"] = check
spec.loader.exec_module(check)

BASE_SCRIPT = REPO / "deploy" / "image" / "base.sh"
BASE = f"localhost/rnnserve-base:py311-bookworm-{hashlib.sha256(BASE_SCRIPT.read_bytes()).hexdigest()[:12]}"


def why_no_image_test() -> str | None:
    if check.docker_engine():
        return None
    missing = [tool for tool in ("buildah", "unshare", "nsenter", "chroot") if shutil.which(tool) is None]
    if missing:
        return f"no Docker engine, and no {', '.join(missing)} (make .venv/.dev installs buildah where apt-get can)"
    if os.geteuid() != 0:
        return "no Docker engine, and buildah (chroot isolation) and the PID namespace of the image test need root"
    has_base = subprocess.run(["buildah", "inspect", "--type", "image", BASE], capture_output=True).returncode == 0
    if not has_base and shutil.which("debootstrap") is None:
        return f"no Docker engine, no {BASE} and no debootstrap to make it"
    return None


def test_make_image_test() -> None:
    reason = why_no_image_test()
    if reason:
        pytest.skip(reason)
    start = time.monotonic()
    result = subprocess.run(["make", "--no-print-directory", "image-test"], cwd=REPO, capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "image-test FAILED" not in out
    print(f"make image-test: {time.monotonic() - start:.0f} s\n{result.stdout[-2000:]}")


def test_the_readme_runs_what_the_image_test_reproduces() -> None:
    args = check.readme_run_args("localhost/rnnserve:0.1.0")  # fails on a flag the buildah runner cannot do
    assert "--read-only" in args and "/tmp" in args, "the read-only root of the Kubernetes manifest, exercised"
    assert "-p" in args


def test_the_readme_examples_cover_every_endpoint() -> None:
    examples = check.readme_examples()
    paths = {next(a for a in check.shlex.split(cmd, comments=True)[1:] if "localhost:8000" in a) for cmd, _ in examples}
    assert {"localhost:8000/generate", "localhost:8000/sentiment", "localhost:8000/ner"} <= paths
    assert all(check.printed_pairs(out) for _, out in examples), "every example prints its answer"


def test_an_answer_unlike_the_readme_fails() -> None:
    printed = check.printed_pairs('{"entities":[{"text":"EU","label":"ORG","start":0,"end":2,"score":0.9999}, ...]}')
    answer = {"entities": [{"text": "EU", "label": "ORG", "start": 0, "end": 2, "score": 0.99991}], "model": "m"}
    assert check.matches(printed, check.answer_pairs(answer)) is None
    answer["entities"][0]["label"] = "LOC"
    assert check.matches(printed, check.answer_pairs(answer)) == "label='ORG'"
    answer["entities"][0].update(label="ORG", score=0.98)
    assert check.matches(printed, check.answer_pairs(answer)) == "score=0.9999"
    stream = [("text", "\n"), ("text", "Wha"), ("finish_reason", "length")]
    assert check.joined_stream(stream)[0] == ("text", "\nWha", -1)
