"""README's "Use it from your client" section, and the standard-library stream client of "Try it", run as written
against the live server (only its address replaced): what a reader copies is what is tested."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import pytest

from tests.service.serving import Server

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Use it from your client", 1)[1].split("\n## ", 1)[0]
STREAM_CLIENT = README.split("A Python client for the stream", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


PYTHON = blocks(SECTION, "python") + blocks(STREAM_CLIENT, "python")[:1]


def test_the_section_has_every_client() -> None:
    assert len(PYTHON) == 3 and "from openai import" in PYTHON[0] and "InferenceClient" in PYTHON[1]
    assert "urllib.request" in PYTHON[2] and len(blocks(SECTION, "bash")) == 1


@pytest.mark.parametrize("code", PYTHON, ids=["openai", "huggingface_hub", "urllib-stream"])
def test_python_blocks_run(server: Server, code: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace("http://127.0.0.1:8000", server.url), "README.md", "exec"), {})
    assert len(out.getvalue()) > 40, out.getvalue()


def test_curl_block_runs(server: Server) -> None:
    (script,) = blocks(SECTION, "bash")
    commands = script.replace("localhost:8000", server.url).replace("\\\n", " ").strip().splitlines()
    for command in commands:
        done = subprocess.run(["bash", "-c", command + " -f"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout, (command, done.stderr)
        assert '"error"' not in done.stdout
    assert "data: [DONE]" in subprocess.run(["bash", "-c", commands[1]], capture_output=True, text=True).stdout
