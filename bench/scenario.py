"""One server under the whole load: start-up, memory, /sentiment and /ner at 1/8/32/64 clients, 64-text batches,
/generate first character, one stream and 1/4/16 concurrent streams."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import loadgen, servers
from bench.kinds import KINDS, OURS
from bench.payloads import Bodies
from bench.results import HeadToHead, Plan, Point, RequestPoint, ServerResult, StreamPoint, SweepPoint, SweepRow

HOST = "127.0.0.1"


def torch_report(port: int) -> list[str]:
    """Which processes say they imported torch (GET /info, our server and baseline (b) only)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/info", timeout=5) as r:
            info = json.loads(r.read())
    except OSError:
        return []
    found = [w["id"] for w in info.get("workers", []) if w.get("torch_imported")]
    if info.get("server", {}).get("torch_imported"):
        found.append("server")
    return found


def batch_counters(port: int, path: str) -> dict[str, float]:
    """Sums and counts of the worker-side histograms in GET /metrics (our server and baseline (b)): requests merged
    per model call and model seconds per call. Empty when the server has no /metrics (baseline (a))."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        for name in ("rnnserve_batch_requests", "rnnserve_model_seconds"):
            for part in ("sum", "count"):
                if line.startswith(f'{name}_{part}{{endpoint="{path}"}}'):
                    out[f"{name}_{part}"] = float(line.rsplit(" ", 1)[1])
    return out


def batch_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    calls = delta("rnnserve_batch_requests_count")
    if not calls:
        return {}
    return {
        "mean_batch": delta("rnnserve_batch_requests_sum") / calls,
        "model_ms_per_call": 1000 * delta("rnnserve_model_seconds_sum") / max(delta("rnnserve_model_seconds_count"), 1),
    }


def run_server(
    kind: str, env: dict[str, str], bodies: Bodies, plan: Plan, logdir: Path, log: Any = print
) -> ServerResult:
    running = servers.start(kind, env, logdir)
    try:
        time.sleep(0.5)  # let every worker finish its warm-up call before the first memory reading
        memory_ready = servers.memory(running.pids())
        torch_imported = torch_report(running.port)
        log(f"  {kind}: ready in {running.startup_s:.2f} s, {memory_ready.rss_mb:.0f} MB RSS")
        pids = running.pids()

        def requests(path: str, payloads: list[bytes], clients: int) -> RequestPoint:
            before = batch_counters(running.port, path)
            point = loadgen.run(
                loadgen.request_load(
                    HOST, running.port, path, payloads, clients, plan.seconds, plan.warmup, server_pids=pids
                )
            )
            assert isinstance(point, RequestPoint)
            means = batch_means(before, batch_counters(running.port, path))
            log(
                f"    {path} x{clients}: {point.rps:.0f} req/s p50 {point.p50_ms:.1f} p99 {point.p99_ms:.1f} ms, "
                f"load gen {point.loadgen_cores:.2f} server {point.server_cores:.2f} busiest {point.busiest_cores:.2f} "
                f"cores {means}"
            )
            time.sleep(0.2)
            return replace(point, mean_batch=means.get("mean_batch"), model_ms_per_call=means.get("model_ms_per_call"))

        def streams(payloads: list[bytes], n: int, seconds: float) -> StreamPoint:
            point = loadgen.run(
                loadgen.stream_load(
                    HOST, running.port, "/generate", payloads, n, seconds, plan.warmup, server_pids=pids
                )
            )
            assert isinstance(point, StreamPoint)
            log(f"    /generate x{n}: {point.chars_per_s:.0f} chars/s, first char {point.first_char_p50_ms:.1f} ms")
            time.sleep(0.2)
            return point

        points = [
            requests(path, payloads, clients)
            for path, payloads in (("/sentiment", bodies.sentiment), ("/ner", bodies.ner))
            for clients in plan.clients
        ]
        batched = requests("/sentiment", bodies.sentiment_batch, plan.batch_clients)
        batched = replace(batched, sentences_per_s=batched.rps * bodies.batch_texts)
        first_char = streams(bodies.first_char, 1, plan.first_char_seconds)
        stream_points = [streams(bodies.generate, n, plan.seconds) for n in plan.streams]
        return ServerResult(
            kind,
            env,
            running.startup_s,
            memory_ready,
            servers.memory(running.pids()),
            points,
            batched,
            first_char,
            stream_points,
            servers.memory_each(running.pids()),
            torch_imported,
        )
    finally:
        servers.stop(running)


@dataclass(frozen=True)
class Load:
    """One load point: `clients` closed-loop clients on `path` (streams, for /generate), bodies from `Bodies`."""

    path: str
    bodies: str  # attribute of Bodies
    clients: int
    texts: int = 1  # sentences per request; 0: /generate streams, measured in characters/s


def alternate(
    running: list[servers.Running],
    loads: dict[str, Load],
    bodies: Bodies,
    seconds: float,
    rounds: int,
    log: Any = print,
    skip: Any = lambda name, index: False,
) -> list[dict[str, list[Point]]]:
    """Servers side by side (an idle one costs no CPU), each load measured on each server in turn, `rounds` times:
    a slow minute of the machine then hits every server alike. One point per server, minutes apart, moved ratios by
    ±15-30 % between runs here. Returns per server, per load, the point of each round (`skip` leaves some out)."""
    measured: list[dict[str, list[Point]]] = [{name: [] for name in loads} for _ in running]
    log(f"  {len(running)} servers ready")
    for round_ in range(rounds):
        for name, load in loads.items():
            for i, server in enumerate(running):
                if skip(name, i):
                    continue
                run = loadgen.request_load if load.texts else loadgen.stream_load
                args = (HOST, server.port, load.path, getattr(bodies, load.bodies), load.clients, seconds)
                point = loadgen.run(run(*args, server_pids=server.pids()))
                assert isinstance(point, RequestPoint | StreamPoint)
                measured[i][name].append(point)
                time.sleep(0.2)
        log(f"  round {round_ + 1} done")
    return measured


def start_all(specs: list[tuple[str, dict[str, str]]], logdir: Path) -> list[servers.Running]:
    """Start the servers one after another (kind, env); if one fails, those already up are stopped."""
    running: list[servers.Running] = []
    try:
        for kind, env in specs:
            running.append(servers.start(kind, env, logdir))
            time.sleep(0.3)
    except BaseException:
        stop_all(running)
        raise
    return running


def stop_all(running: list[servers.Running]) -> None:
    for server in running:
        servers.stop(server)


SWEEP_LOADS = {
    "sentiment1": Load("/sentiment", "sentiment", 1),
    "sentiment32": Load("/sentiment", "sentiment", 32),
    "ner32": Load("/ner", "ner", 32),
    "generate4": Load("/generate", "generate", 4, texts=0),
}


def sweep(
    combos: list[dict[str, str]],
    env: dict[str, str],
    bodies: Bodies,
    seconds: float,
    rounds: int,
    logdir: Path,
    log: Any = print,
) -> list[SweepRow]:
    """The figures the defaults are chosen on, for each settings combination, measured by `alternate`. Each point
    is the median of its rounds, with the rounds (`SweepPoint`)."""
    running = start_all([(OURS, {**env, **combo}) for combo in combos], logdir)
    try:
        memories = [servers.memory(r.pids()) for r in running]
        measured = alternate(running, SWEEP_LOADS, bodies, seconds, rounds, log)
        return [
            SweepRow(combo, r.startup_s, memory, {name: median_point(points) for name, points in by_load.items()})
            for combo, r, memory, by_load in zip(combos, running, memories, measured, strict=True)
        ]
    finally:
        stop_all(running)


def median_point(rounds: Sequence[Point]) -> SweepPoint:
    return SweepPoint.median(rounds)


# The points whose ratios the targets hinge on, and the servers that run them. The 64-text and stream points are
# compared with ours' own single-text rate and one stream, so only ours runs them.
ALL = tuple(k.name for k in KINDS)
DUEL_POINTS: dict[str, tuple[Load, tuple[str, ...]]] = {
    "/sentiment x32": (Load("/sentiment", "sentiment", 32), ALL),
    "/ner x32": (Load("/ner", "ner", 32), ALL),
    "/sentiment 64 texts x8": (Load("/sentiment", "sentiment_batch", 8, texts=64), (OURS,)),
    "/generate 1 stream": (Load("/generate", "generate", 1, texts=0), (OURS,)),
    "/generate 16 streams": (Load("/generate", "generate", 16, texts=0), (OURS,)),
}


def head_to_head(
    kinds: list[str], env: dict[str, str], bodies: Bodies, rounds: int, seconds: float, logdir: Path, log: Any = print
) -> HeadToHead:
    """The target ratios, measured by `alternate`: per point and server, the sentences/s (requests/s for one-text
    requests, characters/s for streams) and the p99 of each round."""
    running = start_all([(kind, env) for kind in kinds], logdir)
    try:
        loads = {name: load for name, (load, _) in DUEL_POINTS.items()}
        measured = alternate(
            running, loads, bodies, seconds, rounds, log, skip=lambda name, i: kinds[i] not in DUEL_POINTS[name][1]
        )
        rates: dict[str, dict[str, list[float]]] = {name: {} for name in loads}
        p99: dict[str, dict[str, list[float]]] = {name: {} for name in loads}
        others: list[float] = []
        for kind, by_load in zip(kinds, measured, strict=True):
            for name, points in by_load.items():
                texts = loads[name].texts
                for p in points:
                    if isinstance(p, RequestPoint):
                        rates[name].setdefault(kind, []).append(p.rps * texts)
                        p99[name].setdefault(kind, []).append(p.p99_ms)
                    else:
                        rates[name].setdefault(kind, []).append(p.chars_per_s)
                    others.append(p.other_cores)  # includes the idle servers: they should stay near 0
        return HeadToHead(rounds, seconds, rates, p99, max(others, default=0.0))
    finally:
        stop_all(running)
