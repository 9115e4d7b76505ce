"""schemathesis against the live server's own /openapi.json: generated requests (schema examples, boundary
values, fuzzing) for every operation; no 5xx, and every response matches the schema it documents. Bounded: a
few examples per operation, a fixed seed, a time limit. One worker: with two, hypothesis's threads raced in
CPython 3.11's ast.parse ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905) and
failed a CI run with no server error at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.service.serving import Server


def test_no_server_errors_and_responses_match_the_schema(server: Server, tmp_path: Path) -> None:
    for probe in ("/health", "/readyz"):  # LitServe sent these without a content type (found by this test)
        assert httpx.get(server.url + probe).headers["content-type"].startswith("text/plain")
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", server.url + "/openapi.json"),
        *("--checks", "not_a_server_error,response_schema_conformance"),
        *("--phases", "examples,coverage,fuzzing"),
        *("--max-examples", "15", "--seed", "1", "--request-timeout", "20", "--workers", "1"),
        *("--report", "junit", "--report-dir", str(tmp_path)),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-3000:]
    print("\n".join(line for line in run.stdout.splitlines() if "generated" in line or "passed" in line))
