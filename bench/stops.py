"""How long our server takes to go, all its processes included: after SIGTERM when idle, and after its /generate
worker is killed in the middle of a stream (the server then exits with status 1 for the orchestrator to restart it).

    python -m bench.stops [--trials 5]

Prints one JSON line per trial and the medians. Each time runs from the signal to the moment the main process has
exited and no process it started is left (multiprocessing's resource tracker goes a moment after the main one).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from bench.servers import Running, descendants, start, stop


def gone(running: Running, pids: set[int], since: float) -> tuple[int, float]:
    """Wait for the main process and then every process of the tree; the exit code and seconds since `since`."""
    code = running.process.wait(60)
    while any(Path(f"/proc/{p}").exists() and not zombie(p) for p in pids):
        time.sleep(0.005)
    return code, time.perf_counter() - since


def zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False  # gone between the two looks


def generate_worker(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/info")
    workers = json.loads(conn.getresponse().read())["workers"]
    return next(int(w["pid"]) for w in workers if w["task"] == "charlm")


def sigterm_when_idle(logdir: Path) -> dict[str, str | float | int]:
    running = start("ours", {}, logdir)
    pids = descendants(running.process.pid) | {running.process.pid}
    sent = time.perf_counter()
    running.process.send_signal(signal.SIGTERM)
    code, seconds = gone(running, pids, sent)
    return {"scenario": "sigterm-idle", "exit_code": code, "seconds": round(seconds, 3)}


def worker_killed_mid_stream(logdir: Path) -> dict[str, str | float | int]:
    running = start("ours", {}, logdir)
    try:
        pids = descendants(running.process.pid) | {running.process.pid}
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        body = json.dumps({"prompt": "KING:", "max_new_tokens": 5000, "stream": True})
        conn.request("POST", "/generate", body, {"Content-Type": "application/json"})
        stream = conn.getresponse()
        stream.readline()  # the first event: the generation is under way
        killed = time.perf_counter()
        os.kill(generate_worker(running.port), signal.SIGKILL)
        stream.read()  # its `event: error` and the end
        code, seconds = gone(running, pids, killed)
        return {"scenario": "worker-killed", "exit_code": code, "seconds": round(seconds, 3)}
    finally:
        stop(running)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.trials):
            for scenario in (sigterm_when_idle, worker_killed_mid_stream):
                result = scenario(Path(logdir))
                print(json.dumps(result), flush=True)
                results.setdefault(str(result["scenario"]), []).append(float(result["seconds"]))
    for name, times in results.items():
        print(f"{name}: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
