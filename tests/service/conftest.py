"""One real server for the whole session (started once: model loading and worker start-up dominate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.serving import Server, start_server, stop_server

# Limits set through the environment, as an operator would: the routes must enforce these, not the defaults.
LIMITS = {"RNNSERVE_MAX_NEW_TOKENS": "300", "RNNSERVE_MAX_BATCH_TEXTS": "8", "RNNSERVE_MAX_STOP_SEQUENCES": "2"}


@pytest.fixture(scope="session")
def server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(artifacts, tmp_path_factory.mktemp("server"), LIMITS)
    yield running
    errors = running.logged_errors()  # before the shutdown, whose own messages are not the tests' business
    stop_server(running)
    assert not errors, "the server logged errors during the tests:\n" + "\n".join(errors[:20])


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
