"""SIGTERM drains: a generation in flight when the signal arrives finishes completely, new connections are turned
away, and the server and every worker process exit cleanly."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.service.serving import descendants, outliving, start_server

LENGTH = 5000  # characters: a few seconds of generation, so that the drain begins while it runs


def turned_away(url: str, within: float) -> float | None:
    """When a new request first failed to connect, trying for `within` seconds. Not at once: the signal reaches the
    HTTP processes through the main one, which a loaded machine may not run for a while."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.post(url + "/sentiment", json={"text": "fine"}, timeout=5)
        except httpx.TransportError:
            return time.monotonic()
        time.sleep(0.05)
    return None


def read_events(lines: Iterator[str]) -> tuple[list[dict[str, Any]], float]:
    """The stream's remaining events, and when the last one arrived."""
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    return events, time.monotonic()


def test_sigterm_finishes_the_stream_in_flight_then_exits(artifacts: Path, tmp_path: Path) -> None:
    server = start_server(artifacts, tmp_path, {"RNNSERVE_MAX_NEW_TOKENS": str(LENGTH)})
    family = descendants(server.process.pid) | {server.process.pid}
    events = []
    body = {"prompt": "ROMEO:", "max_new_tokens": LENGTH, "temperature": 0.8, "seed": 3, "stream": True}
    try:
        with ThreadPoolExecutor(1) as pool, httpx.stream("POST", server.url + "/generate", json=body) as reply:
            lines = reply.iter_lines()
            for line in lines:  # the generation has started: it is in flight
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    break
            rest = pool.submit(read_events, lines)
            server.process.send_signal(signal.SIGTERM)
            refused = turned_away(server.url, within=10)
            more, ended = rest.result(timeout=60)
            events += more
        assert refused is not None, "new requests were still taken 10 s after SIGTERM"
        assert refused < ended, "new requests were taken until the stream in flight had ended: no drain"
        assert reply.status_code == 200
        assert events[-1]["finish_reason"] == "length" and events[-1]["generated_tokens"] == LENGTH
        assert len("".join(e.get("text", "") for e in events)) == LENGTH
        assert server.process.wait(timeout=30) == 0
        assert not outliving(family, grace=5), "worker processes outlived the server"
    finally:
        if server.process.poll() is None:
            server.process.kill()
