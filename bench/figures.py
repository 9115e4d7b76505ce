"""The figures the benchmark's targets compare (bench/targets.py): each `Figure` names one server's figure and how to
read it from that server's results, or, for a tail figure (issue 18), from each of bench/tail.py's rounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.results import ServerResult
from bench.tail_results import TailResults


@dataclass(frozen=True)
class Figure:
    server: str
    what: str
    get: Callable[[ServerResult], float] | None  # None: a tail figure, read by `rounds`
    duel: str | None = None  # the head-to-head point that measures it in every round
    latency: bool = False  # the duel's p99 rounds, not its rates
    unit: str = ""
    digits: int = 0
    rounds: Callable[[TailResults], list[float]] | None = None  # a tail figure: each round's value (bench/tail.py)

    def of(self, s: ServerResult) -> float:
        if self.get is None:
            raise TypeError(f"{self.what!r} is a tail figure: it reads Results.tail, not a server's results")
        return self.get(s)


def rps(server: str, path: str, clients: int = 32) -> Figure:
    return Figure(
        server, f"{path} {clients} clients: req/s", lambda s: s.point(path, clients).rps, f"{path} x{clients}"
    )


def p99(server: str, path: str, clients: int = 32) -> Figure:
    get: Callable[[ServerResult], float] = lambda s: s.point(path, clients).p99_ms  # noqa: E731
    return Figure(
        server, f"{path} {clients} clients: p99", get, f"{path} x{clients}", latency=True, unit=" ms", digits=1
    )


def chars(server: str, streams: int) -> Figure:
    what = f"/generate {streams} stream{'s' if streams > 1 else ''}: chars/s"
    duel = f"/generate {streams} stream{'s' if streams > 1 else ''}"
    return Figure(server, what, lambda s: s.stream(streams).chars_per_s, duel)


def batched_rate(s: ServerResult) -> float:
    """Sentences/s of the 64-text requests; 0 where they were not measured."""
    return s.batched.sentences_per_s or 0.0


def torch_processes(s: ServerResult) -> float:
    """Processes with libtorch mapped (loaded, or once ready), plus workers whose /info says torch was imported."""
    pids = set(s.memory_loaded.torch_loaded) | set(s.memory_ready.torch_loaded)
    return float(len(pids) + len(s.torch_imported))


def tail_figure(server: str, path: str, clients: int, figure: str) -> Figure:
    """`figure` ("rps", "p50_ms", "p99_ms") of `server` in bench/tail.py's rounds, one server at a time."""
    latency = figure != "rps"
    what = f"{path} {clients} clients, one at a time: {'req/s' if not latency else figure.removesuffix('_ms')}"
    return Figure(
        server,
        what,
        None,
        latency=latency,
        unit=" ms" if latency else "",
        digits=1 if latency else 0,
        rounds=lambda t: t.series(server, path, clients, figure),
    )
