"""Faults over real HTTP (RNNSERVE_MAX_IN_FLIGHT=2, RNNSERVE_MAX_NEW_TOKENS=5000):
- a client that leaves a generation stops it: the worker generates far fewer characters than requested;
- an overloaded server answers 503 with Retry-After at once instead of queueing;
- a killed worker: the requests it held get a clear 503 (or an error event) instead of hanging, and the server
  exits non-zero so that an orchestrator restarts it (LitServe 0.2.19 does not replace the worker).
The first two share a server of this module; each test that kills something has a server of its own, so that
any selection or order of these tests works."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.serving import (
    Server,
    descendants,
    outliving,
    processes_with_env,
    start_server,
    stop_server,
    wait_until,
)

LONG = 5000  # characters a long generation asks for: seconds of work for the one /generate worker
GENERATED = "rnnserve_generated_characters_total"


# One HTTP process: the in-flight limit is per HTTP process, and the overload test counts on one.
ENV = {"RNNSERVE_MAX_IN_FLIGHT": "2", "RNNSERVE_MAX_NEW_TOKENS": str(LONG), "RNNSERVE_API_SERVERS": "1"}


@pytest.fixture(scope="module")
def faulty(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(artifacts, tmp_path_factory.mktemp("faults"), ENV)
    yield running
    if running.process.poll() is None:
        stop_server(running)


@pytest.fixture
def doomed(artifacts: Path, tmp_path: Path) -> Iterator[Server]:
    """A server for one test that ends it."""
    running = start_server(artifacts, tmp_path, ENV)
    yield running
    if running.process.poll() is None:
        stop_server(running)


def generated(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == GENERATED)


def in_flight(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "rnnserve_requests_in_flight" and s.labels.get("endpoint") == "/generate"
    )


def settled(url: str, timeout: float = 15) -> float:
    """The generated-characters count once it has stopped changing (the worker finished or gave up)."""
    last, deadline = generated(url), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = generated(url)
        if now == last:
            return now
        last = now
    return last


def stop_messages(server: Server) -> list[int]:
    marker = "generation stopped after "
    lines = [line for line in server.log.read_text(errors="replace").splitlines() if marker in line]
    return [int(line.split(marker)[1].split()[0]) for line in lines]


def test_a_stream_whose_client_leaves_stops_generating(faulty: Server) -> None:
    before = settled(faulty.url)
    request = {"prompt": "ROMEO:", "max_new_tokens": LONG, "temperature": 0.8, "seed": 3, "stream": True}
    with httpx.stream("POST", faulty.url + "/generate", json=request, timeout=30) as r:
        first = next(line for line in r.iter_lines() if line.startswith("data: "))
    assert json.loads(first.removeprefix("data: "))["text"]
    made = settled(faulty.url) - before
    assert 0 < made < LONG / 5, f"{made} of {LONG} characters generated after the client left"
    assert stop_messages(faulty)[-1] == made  # the worker's log line says the same
    started = time.monotonic()  # and the worker is free again at once
    r = httpx.post(faulty.url + "/generate", json={"prompt": "a", "max_new_tokens": 5}, timeout=30)
    assert r.status_code == 200 and time.monotonic() - started < 2


def test_a_plain_generation_whose_client_leaves_stops_too(faulty: Server) -> None:
    before = settled(faulty.url)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(faulty.url + "/generate", json={"max_new_tokens": LONG, "seed": 1}, timeout=0.5)
    made = settled(faulty.url) - before
    assert made < LONG / 2, f"{made} of {LONG} characters generated after the client left"


def test_overload_is_503_at_once_and_passes(faulty: Server) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=faulty.url, timeout=30) as client:

            async def hold() -> None:  # a long stream, read slowly: one slot of the two
                request = {"max_new_tokens": LONG, "seed": 2, "stream": True}
                async with client.stream("POST", "/generate", json=request) as r:
                    async for _ in r.aiter_lines():
                        await asyncio.sleep(0.05)

            holders = [asyncio.create_task(hold()) for _ in range(2)]
            deadline = time.monotonic() + 10
            while in_flight(faulty.url) < 2 and time.monotonic() < deadline:  # the second queued behind the first
                await asyncio.sleep(0.05)
            started = time.monotonic()
            refused = await client.post("/sentiment", json={"text": "good"})
            assert refused.status_code == 503 and time.monotonic() - started < 1
            assert refused.headers["retry-after"] == "1" and "2 requests in flight" in refused.json()["detail"]
            assert (await client.get("/health")).status_code == 200  # probes are never limited
            for task in holders:
                task.cancel()
            await asyncio.gather(*holders, return_exceptions=True)
            deadline = time.monotonic() + 10
            while in_flight(faulty.url) > 0 and time.monotonic() < deadline:  # the guard has let both go
                await asyncio.sleep(0.05)
            assert (await client.post("/sentiment", json={"text": "good"})).status_code == 200

    asyncio.run(scenario())
    settled(faulty.url)  # the abandoned generations have stopped


def test_a_killed_worker_fails_its_requests_and_the_server_exits_non_zero(doomed: Server) -> None:
    info = httpx.get(doomed.url + "/info", timeout=10).json()
    (pid,) = [w["pid"] for w in info["workers"] if w["task"] == "charlm"]
    family = descendants(doomed.process.pid)
    assert pid in family
    request = {"prompt": "KING:", "max_new_tokens": LONG, "seed": 5}

    def plain() -> tuple[int, str, float]:
        started = time.monotonic()
        r = httpx.post(doomed.url + "/generate", json=request, timeout=60)
        return r.status_code, r.text, time.monotonic() - started

    with ThreadPoolExecutor(1) as pool:
        with httpx.stream("POST", doomed.url + "/generate", json={**request, "stream": True}, timeout=60) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            queued = pool.submit(plain)  # waits behind the stream in the worker's queue
            wait_until(lambda: in_flight(doomed.url) >= 2, 10, "the second request reached the server")
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            rest = list(lines)
        assert time.monotonic() - killed < 5, "the stream hung after its worker died"
        error = rest[rest.index("event: error") + 1]
        assert json.loads(error.removeprefix("data: "))["status"] == 503
        status, body, _ = queued.result(timeout=30)
    assert status == 503 and "/generate model worker stopped" in json.loads(body)["detail"]

    code = doomed.process.wait(timeout=60)  # LitServe shuts everything down when a worker dies
    assert code != 0, "an orchestrator must see the failure"
    assert not outliving(family, grace=10)
    assert not processes_with_env("RNNSERVE_PORT", doomed.url.rsplit(":", 1)[1])
    log = doomed.log.read_text(errors="replace")
    assert "a model worker process died: exiting with status 1" in log


def test_workers_of_a_killed_server_stop_on_their_own(artifacts: Path, tmp_path: Path) -> None:
    """SIGKILL gives the server no chance to stop its processes: the workers, HTTP and manager processes get
    SIGTERM from the kernel (PR_SET_PDEATHSIG); none is left running."""
    server = start_server(artifacts, tmp_path)
    port = server.url.rsplit(":", 1)[1]
    try:
        workers = processes_with_env("RNNSERVE_PORT", port) - {server.process.pid}
        assert len(workers) >= 3
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        wait_until(lambda: not processes_with_env("RNNSERVE_PORT", port), 15, "no orphaned process", poll=0.2)
    finally:
        for pid in processes_with_env("RNNSERVE_PORT", port):
            os.kill(pid, signal.SIGKILL)
