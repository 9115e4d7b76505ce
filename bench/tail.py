"""Issue 18: ours against baseline (c), plain LitServe + onnxruntime (`bench.baseline_litserve_onnx`), on /sentiment
and /ner at 1, 8, 32 and 64 clients, with the tail (p50, p95, p99, p99.9), and where a request's time goes (the
per-request timeline of ours, `RNNSERVE_TIMELINE=1`, GET /debug/timeline).

One server at a time: the servers not being measured are frozen (SIGSTOP on their whole process tree, SIGCONT
before their turn), because an idle LitServe worker polls its queue and would take CPU from the one measured.
Rounds alternate which server goes first. `python -m bench.tail --seconds=2 --rounds=1` runs it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from bench import loadgen, servers
from bench.kinds import OURS, PLAIN_LITSERVE
from bench.payloads import Bodies, bodies
from bench.scenario import HOST, start_all, stop_all
from bench.tail_results import BatchStats, StageStats, TailPoint, TailResults, Timeline
from service.web.timeline import STAGES

PEER = PLAIN_LITSERVE.name
KINDS = (OURS, PEER)
CLIENTS = (1, 8, 32, 64)
PATHS = (("/sentiment", "sentiment"), ("/ner", "ner"))
TIMELINE_CLIENTS = 32
# The targets of issue 18 are bench/targets.py's TAIL_TARGETS, on the median of the rounds' ratios.


def signal_tree(server: servers.Running, sig: signal.Signals) -> None:
    for pid in server.pids():
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def point(
    port: int, path: str, payloads: Sequence[bytes], clients: int, seconds: float, kind: str = OURS, round_: int = 0
) -> TailPoint:
    window = loadgen.closed_loop(HOST, port, path, payloads, clients, seconds, 0.5)
    latencies, errors, measured = cast(tuple[list[float], int, float], loadgen.run(window))
    ms = np.array(latencies or [float("nan")]) * 1000
    p50, p95, p99, p999 = (float(x) for x in np.percentile(ms, [50, 95, 99, 99.9]))
    return TailPoint(kind, path, clients, round_, len(latencies) / measured, errors, p50, p95, p99, p999)


def timeline(port: int, path: str, since: float) -> list[dict[str, float]]:
    """The samples of `path` that began after `since`, from every HTTP process (each call may reach either; new
    connections until two processes answered, or ten calls)."""
    found: dict[int, list[dict[str, Any]]] = {}
    for _ in range(10):
        with urllib.request.urlopen(f"http://{HOST}:{port}/debug/timeline", timeout=10) as r:
            body = json.loads(r.read())
        found[body["pid"]] = [s for s in body["samples"] if s["path"] == path and s["http_in"] >= since]
        if len(found) >= 2:
            break
    return [s for samples in found.values() for s in samples]


def stage_table(samples: list[dict[str, float]]) -> Timeline:
    """Per stage: p50, p99, mean ms; and the mean of each stage over the slowest 1 % of requests (what the tail is
    made of)."""
    total = np.array([s["http_out"] - s["http_in"] for s in samples]) * 1000
    slow = total >= np.percentile(total, 99)
    stages = {}
    for name, a, b in (*STAGES, ("total", "http_in", "http_out")):
        ms = np.array([s[b] - s[a] for s in samples]) * 1000
        p50, p99 = np.percentile(ms, [50, 99])
        stages[name] = StageStats(float(p50), float(p99), float(ms.mean()), float(ms[slow].mean()))
    batch = np.array([s["batch"] for s in samples])
    return Timeline(len(samples), stages, BatchStats(float(batch.mean()), float(np.median(batch)), float(batch.max())))


def measure(env: dict[str, str], b: Bodies, seconds: float, rounds: int, logdir: Path, log: Any = print) -> TailResults:
    """Ours and (c) at every client count, `rounds` times, one server at a time; then ours' timeline at 32 clients
    (a server of its own with RNNSERVE_TIMELINE=1, the only one running)."""
    running = start_all([(kind, env) for kind in KINDS], logdir)
    for server in running:
        signal_tree(server, signal.SIGSTOP)
    points: list[TailPoint] = []
    try:
        for round_ in range(rounds):
            order = running if round_ % 2 == 0 else running[::-1]
            for path, attr in PATHS:
                for clients in CLIENTS:
                    for server in order:
                        signal_tree(server, signal.SIGCONT)
                        p = point(server.port, path, getattr(b, attr), clients, seconds, server.kind, round_)
                        signal_tree(server, signal.SIGSTOP)
                        points.append(p)
                        log(
                            f"    {server.kind} {path} x{clients}: {p.rps:.0f} req/s "
                            f"p50 {p.p50_ms:.1f} p99 {p.p99_ms:.1f} ms"
                        )
            log(f"  tail round {round_ + 1} done")
    finally:
        for server in running:
            signal_tree(server, signal.SIGCONT)
        stop_all(running)
    stages: dict[str, Timeline] = {}
    timed = servers.start(OURS, {**env, "RNNSERVE_TIMELINE": "1"}, logdir)
    try:
        for path, attr in PATHS:
            since = time.monotonic() + 0.5  # after the load's warm-up
            point(timed.port, path, getattr(b, attr), TIMELINE_CLIENTS, seconds)
            samples = timeline(timed.port, path, since)
            if samples:
                stages[path] = stage_table(samples)
    finally:
        servers.stop(timed)
    return TailResults(rounds, seconds, list(CLIENTS), points, TIMELINE_CLIENTS, stages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--logs", type=Path, default=servers.LOGS)
    args = parser.parse_args(argv)
    result = measure({}, bodies(), args.seconds, args.rounds, args.logs)
    from bench import targets
    from bench.tail_report import tables

    print(tables(result))
    print(targets.tail_table(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))


if __name__ == "__main__":
    main()
