"""The `rnnserve` command: every subcommand's --help explains every option, flags become settings, training and
evaluation pass their arguments through, and `rnnserve serve` never imports torch."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.cli import build_parser, evaluate_arguments, serve_environment, train_command
from service.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, torch_blocked: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{torch_blocked}:{REPO}" if torch_blocked else str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def options_in(help_text: str) -> dict[str, str]:
    """--flag -> its help text, from argparse's formatted help."""
    found: dict[str, str] = {}
    current = None
    for line in help_text.split("options:", 1)[1].splitlines():
        m = re.match(r"\s{2}(-[^\s,]+)", line)
        if m:
            current = m.group(1)
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)  # "--flag METAVAR", then the help text
            found[current] = parts[1] if len(parts) > 1 else ""
        elif current and line.strip():
            found[current] += " " + line.strip()
    return found


@pytest.mark.parametrize("command", [[], ["serve"], ["train"], ["evaluate"]])
def test_help_explains_every_option(command: list[str], tmp_path: Path) -> None:
    blocker = tmp_path / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text('raise ImportError("torch must not be imported by rnnserve --help")\n')
    result = run(*command, "--help", torch_blocked=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: rnnserve {' '.join(command)}".rstrip())
    options = options_in(result.stdout)
    assert all(text.strip() for flag, text in options.items() if flag != "-h"), options


def test_serve_has_a_flag_for_every_setting_but_the_secret() -> None:
    help_text = run("serve", "--help").stdout
    flags = options_in(help_text)
    for name in Settings.model_fields:
        if name == "api_key":
            assert "--api-key" not in flags and "RNNSERVE_API_KEY" in help_text
        else:
            flag = f"--{name.replace('_', '-')}"
            assert flag in flags and f"RNNSERVE_{name.upper()}" in flags[flag], flag


def test_serve_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        ["serve", "--port=9123", "--host=0.0.0.0", "--workers-sentiment=3", "--no-access-log", "--batch-timeout=0.01"]
    )
    env = serve_environment(args)
    assert env == {
        "RNNSERVE_PORT": "9123",
        "RNNSERVE_HOST": "0.0.0.0",
        "RNNSERVE_WORKERS_SENTIMENT": "3",
        "RNNSERVE_ACCESS_LOG": "false",
        "RNNSERVE_BATCH_TIMEOUT": "0.01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.port, settings.host, settings.workers_sentiment) == (9123, "0.0.0.0", 3)
    assert settings.access_log is False and settings.batch_timeout == 0.01


def test_train_passes_everything_after_the_task_through() -> None:
    args = build_parser().parse_args(["train", "sentiment", "--epochs=3", "--help"])
    assert train_command(args) == [sys.executable, "-m", "training.train_sentiment", "--epochs=3", "--help"]
    args = build_parser().parse_args(["train", "--nproc-per-node=2", "ner", "--epochs=1"])
    assert train_command(args)[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "-m",
                                       "training.train_ner", "--epochs=1"]  # fmt: skip
    shown = run("train", "--dry-run", "charlm", "--seq-len=64")
    assert shown.returncode == 0 and shown.stdout.split()[1:] == ["-m", "training.train_charlm", "--seq-len=64"]
    assert run("train", "gpt").returncode == 2  # not a task: argparse's usage error


def test_train_flags_after_the_task_and_a_bare_train() -> None:
    """README writes `rnnserve train TASK [flags] (--nproc-per-node=N ...)`: the wrapper's flags work after TASK."""
    for flags in (["--nproc-per-node=2"], ["--nproc-per-node", "2"]):
        shown = run("train", "ner", "--epochs=1", *flags, "--dry-run")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split()[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "-m",
                                            "training.train_ner", "--epochs=1"]  # fmt: skip
    bare = run("train")
    assert bare.returncode == 2 and "train needs a TASK: one of charlm, sentiment, ner" in bare.stderr
    assert "args" not in bare.stderr.splitlines()[-1]


def test_serve_help_says_generations_are_batched() -> None:
    shown = run("serve", "--help").stdout
    assert "one generation at a time" not in shown and "generations together" in " ".join(shown.split())


def test_evaluate_options_match_the_script() -> None:
    ours = set(options_in(run("evaluate", "--help").stdout))
    theirs = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--help"], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert ours == set(options_in(theirs.stdout)), "rnnserve evaluate and python -m training.evaluate diverged"
    args = build_parser().parse_args(["evaluate", "artifacts/sentiment", "data.tsv", "--limit=50"])
    assert evaluate_arguments(args) == ["artifacts/sentiment", "data.tsv", "--limit=50"]
    args = build_parser().parse_args(["evaluate", "artifacts/sentiment", "train.tsv", "--valid", "--imdb", "i.tsv"])
    assert evaluate_arguments(args) == ["artifacts/sentiment", "train.tsv", "--imdb=i.tsv", "--valid"]
    args = build_parser().parse_args(["evaluate", "artifacts/ner", "valid.txt", "--ensemble", "runs/a", "runs/b"])
    assert evaluate_arguments(args) == ["artifacts/ner", "valid.txt", "--ensemble", "runs/a", "runs/b"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "rnnserve"
    assert script.exists(), "pip install -e . creates it from [project.scripts]"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "serve" in result.stdout and "train" in result.stdout


def test_serve_runs_the_server_without_torch(artifacts: Path, tmp_path: Path) -> None:
    import httpx

    from tests.service.serving import TORCH_BLOCKER, Server, free_port, stop_server

    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(TORCH_BLOCKER)
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{REPO}", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "service.cli", "serve", f"--port={port}", f"--artifacts={artifacts}",
               "--ort-threads=1", "--log-level=warning"]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        assert httpx.get(server.url + "/readyz").status_code == 200, server.log_tail()
        workers = httpx.get(server.url + "/info").json()["workers"]
        assert len(workers) == 3 and not any(w["torch_imported"] for w in workers)
        assert all(w["threads"] == 1 for w in workers), "--ort-threads reached the workers"
    finally:
        assert stop_server(server) == set(), server.log_tail()
