"""What bench/tail.py measures (issue 18), typed like bench/results.py: ours against baseline (c) one server at a
time, each round's point per server, path and client count, and ours' per-request timeline. `Results.tail` holds a
`TailResults`; results.json without one (a run before issue 18, or `--tail-rounds=0`) reads back as None.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.records import Record


@dataclass(frozen=True)
class TailPoint(Record):
    """One closed-loop window of one server, all other servers frozen."""

    kind: str  # bench/kinds.py name
    path: str
    clients: int
    round: int  # 0-based; rounds alternate which server goes first
    rps: float  # answered requests (200s) per second inside the window
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float


@dataclass(frozen=True)
class StageStats(Record):
    """One stage of the timeline (ms): percentiles and mean over the sampled requests, and its mean over the slowest
    1 % of them (what the tail is made of)."""

    p50: float
    p99: float
    mean: float
    slow_mean: float


@dataclass(frozen=True)
class BatchStats(Record):
    """Requests per model call of the sampled requests."""

    mean: float
    p50: float
    max: float


@dataclass(frozen=True)
class Timeline(Record):
    """Ours' GET /debug/timeline samples of one path under load, per stage (service/web/timeline.py's STAGES, then
    "total": in the server, first byte in to last byte out)."""

    samples: int
    stages: dict[str, StageStats]
    batch: BatchStats


@dataclass(frozen=True)
class TailResults(Record):
    rounds: int
    seconds: float  # measured seconds per window
    clients: list[int]
    points: list[TailPoint]
    timeline_clients: int = 32
    timeline: dict[str, Timeline] = field(default_factory=dict)  # path -> stages

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(p.kind for p in self.points))

    def paths(self) -> list[str]:
        return list(dict.fromkeys(p.path for p in self.points))

    def rounds_of(self, kind: str, path: str, clients: int) -> list[TailPoint]:
        """`kind`'s points at `path` and `clients`, in round order (empty: not measured)."""
        return sorted((p for p in self.points if (p.kind, p.path, p.clients) == (kind, path, clients)), key=_round)

    def series(self, kind: str, path: str, clients: int, figure: str) -> list[float]:
        """Each round's `figure` ("rps", "p99_ms", ...) of `kind` at `path` and `clients`."""
        return [float(getattr(p, figure)) for p in self.rounds_of(kind, path, clients)]

    def median(self, kind: str, path: str, clients: int, figure: str) -> float:
        values = self.series(kind, path, clients, figure)
        return statistics.median(values) if values else float("nan")


def _round(p: TailPoint) -> int:
    return p.round
