"""One server under the whole load: start-up, memory, /sentiment and /ner at 1/8/32/64 clients, 64-text batches,
/generate first character, one stream and 1/4/16 concurrent streams."""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import loadgen, servers
from bench.payloads import Bodies

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Plan:
    seconds: float = 5.0  # measured seconds per point
    warmup: float = 0.5  # unmeasured seconds before each point
    clients: tuple[int, ...] = (1, 8, 32, 64)
    streams: tuple[int, ...] = (1, 4, 16)
    batch_clients: int = 8
    first_char_seconds: float = 3.0


@dataclass
class ServerResult:
    kind: str
    env: dict[str, str]
    startup_s: float
    memory_ready: dict[str, Any]
    memory_loaded: dict[str, Any] = field(default_factory=dict)
    memory_processes: list[dict[str, Any]] = field(default_factory=list)  # after the load: role, PSS, RSS
    torch_imported: list[str] = field(default_factory=list)  # /info: workers and server that report torch
    requests: list[dict[str, Any]] = field(default_factory=list)
    batched: dict[str, Any] = field(default_factory=dict)
    first_char: dict[str, Any] = field(default_factory=dict)
    streams: list[dict[str, Any]] = field(default_factory=list)

    def point(self, path: str, clients: int) -> dict[str, Any]:
        return next(p for p in self.requests if p["path"] == path and p["clients"] == clients)

    def stream(self, n: int) -> dict[str, Any]:
        return next(p for p in self.streams if p["streams"] == n)


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
        result = ServerResult(kind, env, running.startup_s, asdict(servers.memory(running.pids())))
        result.torch_imported = torch_report(running.port)
        log(f"  {kind}: ready in {running.startup_s:.2f} s, {result.memory_ready['rss_mb']:.0f} MB RSS")
        pids = running.pids()

        def requests(path: str, payloads: list[bytes], clients: int) -> dict[str, Any]:
            before = batch_counters(running.port, path)
            point = loadgen.run(
                loadgen.request_load(
                    HOST, running.port, path, payloads, clients, plan.seconds, plan.warmup, server_pids=pids
                )
            )
            assert isinstance(point, loadgen.RequestPoint)
            means = batch_means(before, batch_counters(running.port, path))
            log(
                f"    {path} x{clients}: {point.rps:.0f} req/s p50 {point.p50_ms:.1f} p99 {point.p99_ms:.1f} ms, "
                f"load gen {point.loadgen_cores:.2f} server {point.server_cores:.2f} busiest {point.busiest_cores:.2f} "
                f"cores {means}"
            )
            time.sleep(0.2)
            return {**point.as_dict(), **means}

        def streams(payloads: list[bytes], n: int, seconds: float) -> dict[str, Any]:
            point = loadgen.run(
                loadgen.stream_load(
                    HOST, running.port, "/generate", payloads, n, seconds, plan.warmup, server_pids=pids
                )
            )
            assert isinstance(point, loadgen.StreamPoint)
            log(f"    /generate x{n}: {point.chars_per_s:.0f} chars/s, first char {point.first_char_p50_ms:.1f} ms")
            time.sleep(0.2)
            return point.as_dict()

        for path, payloads in (("/sentiment", bodies.sentiment), ("/ner", bodies.ner)):
            for clients in plan.clients:
                result.requests.append(requests(path, payloads, clients))
        batched = requests("/sentiment", bodies.sentiment_batch, plan.batch_clients)
        batched["sentences_per_s"] = batched["rps"] * bodies.batch_texts
        result.batched = batched
        result.first_char = streams(bodies.first_char, 1, plan.first_char_seconds)
        for n in plan.streams:
            result.streams.append(streams(bodies.generate, n, plan.seconds))
        result.memory_loaded = asdict(servers.memory(running.pids()))
        result.memory_processes = servers.memory_each(running.pids())
        return result
    finally:
        servers.stop(running)


def sweep(
    combos: list[dict[str, str]],
    env: dict[str, str],
    bodies: Bodies,
    seconds: float,
    rounds: int,
    logdir: Path,
    kind_of: Any = lambda combo: "ours",
    log: Any = print,
) -> list[dict[str, Any]]:
    """The figures the defaults are chosen on, for each settings combination: all servers run side by side and
    each point is measured on every combination in turn, `rounds` times (as `head_to_head` does: a slow minute of
    the machine then hits every combination alike). Each point reports the median of its rounds and the rounds."""
    running = []
    for combo in combos:
        server = servers.start(kind_of(combo), {**env, **combo}, logdir)
        running.append(server)
        time.sleep(0.3)
    try:
        out = [
            {"env": combo, "startup_s": r.startup_s, "memory": asdict(servers.memory(r.pids()))}
            for combo, r in zip(combos, running, strict=True)
        ]
        points: dict[str, tuple[str, str, int, bool]] = {  # name -> path, bodies, clients or streams, streaming
            "sentiment1": ("/sentiment", "sentiment", 1, False),
            "sentiment32": ("/sentiment", "sentiment", 32, False),
            "ner32": ("/ner", "ner", 32, False),
            "generate4": ("/generate", "generate", 4, True),
        }
        measured: list[dict[str, list[dict[str, Any]]]] = [{name: [] for name in points} for _ in combos]
        log(f"  {len(running)} servers ready")
        for round_ in range(rounds):
            for name, (path, which, n, streaming) in points.items():
                for i, server in enumerate(running):
                    args = (HOST, server.port, path, getattr(bodies, which), n, seconds)
                    load = loadgen.stream_load if streaming else loadgen.request_load
                    point = loadgen.run(load(*args, server_pids=server.pids()))
                    measured[i][name].append(point.as_dict())  # type: ignore[attr-defined]
                    time.sleep(0.2)
            log(f"  round {round_ + 1} done")
        for row, by_point in zip(out, measured, strict=True):
            for name, results in by_point.items():
                row[name] = median_point(results)
        return out
    finally:
        for server in running:
            servers.stop(server)


def median_point(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure per key: the median over the rounds (the most any other process used, for `other_cores`)."""
    merged: dict[str, Any] = {"rounds": len(rounds)}
    for key, value in rounds[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in rounds]
            merged[key] = max(values) if key == "other_cores" else statistics.median(values)
            if key in ("rps", "chars_per_s"):
                merged[f"{key}_rounds"] = values
        else:
            merged[key] = value
    return merged


# The points whose ratios the targets hinge on: name -> (path, which bodies, clients or streams, sentences per
# request (0: a /generate stream, measured in characters/s), kinds). The 64-text and stream points are compared with
# ours' own single-text rate and one stream, so only ours runs them.
DUEL_POINTS = {
    "/sentiment x32": ("/sentiment", "sentiment", 32, 1, ("ours", "fastapi-torch", "litserve-torch")),
    "/ner x32": ("/ner", "ner", 32, 1, ("ours", "fastapi-torch", "litserve-torch")),
    "/sentiment 64 texts x8": ("/sentiment", "sentiment_batch", 8, 64, ("ours",)),
    "/generate 1 stream": ("/generate", "generate", 1, 0, ("ours",)),
    "/generate 16 streams": ("/generate", "generate", 16, 0, ("ours",)),
}


def head_to_head(
    kinds: list[str], env: dict[str, str], bodies: Bodies, rounds: int, seconds: float, logdir: Path, log: Any = print
) -> dict[str, Any]:
    """The target ratios, measured so that the machine's slow minutes hit every side alike: the servers run side
    by side (an idle one costs no CPU) and each point is measured on each server in turn, `rounds` times. One
    point per server, minutes apart, moved ratios by ±15-30 % between runs here.

    Returns, per point and server, the sentences/s (requests/s for one-text requests) and p99 of each round."""
    running = {kind: servers.start(kind, env, logdir) for kind in kinds}
    try:
        time.sleep(0.5)
        rates: dict[str, dict[str, list[float]]] = {name: {} for name in DUEL_POINTS}
        p99: dict[str, dict[str, list[float]]] = {name: {} for name in DUEL_POINTS}
        others: list[float] = []
        log(f"  {len(running)} servers ready")
        for round_ in range(rounds):
            for name, (path, which, clients, texts, on) in DUEL_POINTS.items():
                for kind, server in running.items():
                    if kind not in on:
                        continue
                    load = loadgen.request_load if texts else loadgen.stream_load
                    args = (HOST, server.port, path, getattr(bodies, which), clients, seconds)
                    point = loadgen.run(load(*args, server_pids=server.pids()))
                    if isinstance(point, loadgen.StreamPoint):
                        rates[name].setdefault(kind, []).append(point.chars_per_s)
                    else:
                        assert isinstance(point, loadgen.RequestPoint)
                        rates[name].setdefault(kind, []).append(point.rps * texts)
                        p99[name].setdefault(kind, []).append(point.p99_ms)
                    others.append(point.other_cores)  # includes the idle servers: they should stay near 0
                    time.sleep(0.2)
            log(f"  round {round_ + 1} done")
        return {
            "rounds": rounds,
            "seconds": seconds,
            "points": rates,
            "p99_ms": p99,
            "max_other_cores": max(others, default=0.0),
        }
    finally:
        for server in running.values():
            servers.stop(server)
