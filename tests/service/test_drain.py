"""SIGTERM drains: a generation in flight when the signal arrives finishes completely, new connections are turned
away, and the server and every worker process exit cleanly."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.service.serving import descendants, outliving, start_server


def test_sigterm_finishes_the_stream_in_flight_then_exits(artifacts: Path, tmp_path: Path) -> None:
    server = start_server(artifacts, tmp_path)
    family = descendants(server.process.pid) | {server.process.pid}
    events = []
    body = {"prompt": "ROMEO:", "max_new_tokens": 1000, "temperature": 0.8, "seed": 3, "stream": True}
    try:
        with httpx.stream("POST", server.url + "/generate", json=body, timeout=60) as reply:
            lines = reply.iter_lines()
            for line in lines:  # the generation has started: it is in flight
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    break
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(httpx.TransportError):  # no new work is taken once draining
                httpx.post(server.url + "/sentiment", json={"text": "fine"}, timeout=5)
            events += [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        assert reply.status_code == 200
        assert events[-1]["finish_reason"] == "length" and events[-1]["generated_tokens"] == 1000
        assert len("".join(e.get("text", "") for e in events)) == 1000
        assert server.process.wait(timeout=30) == 0
        assert not outliving(family, grace=5), "worker processes outlived the server"
    finally:
        if server.process.poll() is None:
            server.process.kill()
