"""How long our server takes to go, all its processes included: after SIGTERM when idle, after its /generate worker
is killed in the middle of a stream (the server then exits with status 1 for the orchestrator to restart it), and
after SIGTERM during a stream (a drain: how soon new connections are refused, and when the stream ends).

    python -m bench.stops [--trials 5]

Prints one JSON line per trial and the medians. Each time runs from the signal to the moment the main process has
exited and no process it started is left (multiprocessing's resource tracker goes a moment after the main one).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import socket
import statistics
import tempfile
import time
from pathlib import Path

from bench.servers import Running, alive, start, stop


def gone(running: Running, pids: set[int], since: float) -> tuple[int, float]:
    """Wait for the main process and then every process of the tree; the exit code and seconds since `since`."""
    code = running.process.wait(60)
    while any(alive(p) for p in pids):
        time.sleep(0.005)
    return code, time.perf_counter() - since


def generate_worker(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/info")
    workers = json.loads(conn.getresponse().read())["workers"]
    return next(int(w["pid"]) for w in workers if w["task"] == "charlm")


LONG_STREAMS = {"RNNSERVE_MAX_NEW_TOKENS": "5000"}  # a few seconds of generation (the default limit is 1,000)


def long_stream(port: int) -> http.client.HTTPResponse:
    """A 5,000-character /generate stream, read up to its first event: the generation is under way."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"prompt": "KING:", "max_new_tokens": 5000, "stream": True})
    conn.request("POST", "/generate", body, {"Content-Type": "application/json"})
    stream = conn.getresponse()
    if stream.status != 200:
        raise RuntimeError(f"/generate answered {stream.status}: {stream.read()[:300]!r}")
    stream.readline()
    return stream


def sigterm_when_idle(logdir: Path) -> dict[str, str | float | int]:
    running = start("ours", {}, logdir)
    pids = set(running.pids())
    sent = time.perf_counter()
    running.process.send_signal(signal.SIGTERM)
    code, seconds = gone(running, pids, sent)
    return {"scenario": "sigterm-idle", "exit_code": code, "seconds": round(seconds, 3)}


def worker_killed_mid_stream(logdir: Path) -> dict[str, str | float | int]:
    running = start("ours", LONG_STREAMS, logdir)
    try:
        pids = set(running.pids())
        stream = long_stream(running.port)
        killed = time.perf_counter()
        os.kill(generate_worker(running.port), signal.SIGKILL)
        stream.read()  # its `event: error` and the end
        code, seconds = gone(running, pids, killed)
        return {"scenario": "worker-killed", "exit_code": code, "seconds": round(seconds, 3)}
    finally:
        stop(running)


def drain_refuses_new_connections(logdir: Path) -> dict[str, str | float | int]:
    """SIGTERM while a 5,000-character stream runs: when a new connection is first refused, and when the stream
    (which a drain finishes) has ended."""
    running = start("ours", LONG_STREAMS, logdir)
    try:
        pids = set(running.pids())
        stream = long_stream(running.port)
        sent = time.perf_counter()
        running.process.send_signal(signal.SIGTERM)
        refused = math.nan
        while time.perf_counter() - sent < 10:
            try:
                socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
            except OSError:
                refused = time.perf_counter() - sent
                break
            time.sleep(0.01)
        stream.read()
        ended = time.perf_counter() - sent
        code, seconds = gone(running, pids, sent)
        return {
            "scenario": "drain",
            "exit_code": code,
            "refused_s": round(refused, 3),
            "stream_ended_s": round(ended, 3),
            "seconds": round(seconds, 3),
        }
    finally:
        stop(running)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict[str, str | float | int]]] = {}
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.trials):
            for scenario in (sigterm_when_idle, worker_killed_mid_stream, drain_refuses_new_connections):
                result = scenario(Path(logdir))
                print(json.dumps(result), flush=True)
                results.setdefault(str(result["scenario"]), []).append(result)
    for name, trials in results.items():
        for figure in [key for key in trials[0] if key.endswith(("seconds", "_s"))]:
            values = [float(t[figure]) for t in trials]
            spread = f"min {min(values):.2f}, max {max(values):.2f}"
            print(f"{name} {figure}: median {statistics.median(values):.2f} ({spread})")


if __name__ == "__main__":
    main()
