"""What the benchmark measures, typed: one record per measured thing, and `Results`, the whole run.

bench/results.json is `Results.to_json()`; `Results.from_json` reads it back (bench/records.py says how), so the
report renders from a saved run as from a fresh one. Field names are results.json's keys: renaming one changes the
file's shape.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.records import Record
from bench.tail_results import TailResults


@dataclass(frozen=True)
class RequestPoint(Record):
    """One closed-loop load point on a request/response endpoint."""

    path: str
    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    loadgen_cores: float  # CPU cores the load generator itself used (1.0 = one full core)
    server_cores: float  # CPU cores the serving processes used
    busiest_cores: float  # CPU cores of the busiest serving process (near 1.0: that process is the bottleneck)
    other_cores: float  # CPU cores used by anything else on the machine (should be near 0)
    mean_batch: float | None = None  # requests per model call (GET /metrics; None where the server has none)
    model_ms_per_call: float | None = None
    sentences_per_s: float | None = None  # multi-text requests only: rps x texts per request


@dataclass(frozen=True)
class StreamPoint(Record):
    """`streams` clients, each streaming one /generate answer after another."""

    streams: int
    completed: int  # generations that started and finished inside the window
    errors: int
    seconds: float
    chars: int
    chars_per_s: float  # all streams together
    per_stream_chars_per_s: float
    first_char_p50_ms: float
    first_char_p95_ms: float
    loadgen_cores: float
    server_cores: float
    busiest_cores: float
    other_cores: float


Point = RequestPoint | StreamPoint


@dataclass(frozen=True)
class Memory(Record):
    processes: int
    rss_mb: float  # sum of resident set sizes (counts shared pages once per process: an upper bound)
    pss_mb: float  # proportional set size: shared pages split between the processes sharing them
    torch_loaded: list[int]  # pids with libtorch mapped


@dataclass(frozen=True)
class ProcessMemory(Record):
    pid: int
    role: str
    cmd: str
    pss_mb: float
    rss_mb: float
    threads: int


@dataclass(frozen=True)
class ServerResult(Record):
    """One server under the whole load (`bench.scenario.run_server`)."""

    kind: str
    env: dict[str, str]
    startup_s: float
    memory_ready: Memory
    memory_loaded: Memory
    requests: list[RequestPoint]
    batched: RequestPoint  # multi-text /sentiment requests
    first_char: StreamPoint
    streams: list[StreamPoint]
    memory_processes: list[ProcessMemory] = field(default_factory=list)  # after the load
    torch_imported: list[str] = field(default_factory=list)  # /info: workers and server that report torch

    def point(self, path: str, clients: int) -> RequestPoint:
        return next(p for p in self.requests if p.path == path and p.clients == clients)

    def stream(self, n: int) -> StreamPoint:
        return next(p for p in self.streams if p.streams == n)

    def all_points(self) -> list[Point]:
        return [*self.requests, self.batched, self.first_char, *self.streams]


@dataclass(frozen=True)
class HeadToHead(Record):
    """Servers side by side, alternating (`bench.scenario.head_to_head`): per point and server, each round's rate
    (sentences/s, requests/s for one-text requests, characters/s for streams) and p99."""

    rounds: int
    seconds: float
    points: dict[str, dict[str, list[float]]]
    p99_ms: dict[str, dict[str, list[float]]]
    max_other_cores: float

    def ratios(self, point: str, versus: str, theirs: str, figure: str = "points") -> list[float]:
        """Per round: ours at `point` ÷ `theirs` at `versus`, measured within the same round; `figure` "points"
        compares rates, "p99_ms" latencies. Empty where the rounds did not measure both."""
        table = self.points if figure == "points" else self.p99_ms
        mine, other = table.get(point, {}).get("ours", []), table.get(versus, {}).get(theirs, [])
        return [m / t for m, t in zip(mine, other, strict=False) if t]


@dataclass(frozen=True)
class SweepPoint(Record):
    """The median over rounds of one point (each field's median, counts rounded; `other_cores`: the most any
    other process used), and each round's rate. JSON: the point's fields plus `rounds` and `<rate>_rounds`."""

    point: Point
    rounds: int
    rate_rounds: list[float]

    @property
    def rate(self) -> float:
        return self.point.rps if isinstance(self.point, RequestPoint) else self.point.chars_per_s

    @staticmethod
    def rate_key(point: Point) -> str:
        return "rps" if isinstance(point, RequestPoint) else "chars_per_s"

    @classmethod
    def median(cls, rounds: Sequence[Point]) -> SweepPoint:
        first = rounds[0]
        merged: dict[str, Any] = {}
        for f in dataclasses.fields(first):
            values = [getattr(r, f.name) for r in rounds]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                merged[f.name] = getattr(first, f.name)
            elif f.name == "other_cores":
                merged[f.name] = max(values)
            else:
                m = statistics.median(values)
                merged[f.name] = round(m) if f.type in ("int", int) else m
        rate = cls.rate_key(first)
        return cls(dataclasses.replace(first, **merged), len(rounds), [getattr(r, rate) for r in rounds])

    def to_json(self) -> dict[str, Any]:
        return {"rounds": self.rounds, **self.point.to_json(), f"{self.rate_key(self.point)}_rounds": self.rate_rounds}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPoint:
        kind: type[Point] = StreamPoint if "streams" in data else RequestPoint
        point = kind.from_json(data)
        return cls(point, int(data.get("rounds", 1)), [float(x) for x in data.get(f"{cls.rate_key(point)}_rounds", [])])


@dataclass(frozen=True)
class SweepRow(Record):
    """One settings combination of the sweep. JSON: env, startup_s, memory, then each point under its name."""

    env: dict[str, str]
    startup_s: float
    memory: Memory
    points: dict[str, SweepPoint]

    def to_json(self) -> dict[str, Any]:
        head = {"env": self.env, "startup_s": self.startup_s, "memory": self.memory.to_json()}
        return {**head, **{name: p.to_json() for name, p in self.points.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepRow:
        points = {k: SweepPoint.from_json(v) for k, v in data.items() if k not in ("env", "startup_s", "memory")}
        return cls(dict(data["env"]), float(data["startup_s"]), Memory.from_json(data["memory"]), points)


@dataclass(frozen=True)
class ModelRow(Record):
    """Model only, in process: median ms per call at one batch size."""

    task: str
    batch: int
    ort_ms: dict[int, float]  # threads -> median ms per call
    torch_ms: dict[int, float]
    flops_per_item: float  # 2 per weight per position (an item: a sentence, or one generated character)


@dataclass(frozen=True)
class PaddingRow(Record):
    task: str
    sentences: int
    chunk: int
    mean_length: float
    max_length: int
    padded_ms: float  # one call padded to the longest
    singles_ms: float  # one call per sentence
    sorted_chunks_ms: float  # sorted by length, calls of `chunk`
    encode_ms: float | None = None  # texts -> padded ids, as a worker prepares a batch


@dataclass(frozen=True)
class OpShare(Record):
    op: str
    us_per_call: float
    share: float


@dataclass(frozen=True)
class OpProfile(Record):
    task: str
    chunk: int
    us_per_call: float
    ops: list[OpShare]


@dataclass(frozen=True)
class ChunkRow(Record):
    task: str
    sentences: int
    ms: dict[int, float]  # chunk size -> median ms per batch
    rounds: int | None = None  # the sizes alternate within each round
    threads: int | None = None  # chunks run on this many threads, one intra-op thread each


@dataclass(frozen=True)
class Machine(Record):
    cpu: str
    cores: int
    isa: list[str]
    memory_gb: float
    os: str
    python: str
    packages: dict[str, str]
    commit: str
    date: str


@dataclass(frozen=True)
class Plan(Record):
    """The load of one server (`bench.scenario.run_server`)."""

    seconds: float = 5.0  # measured seconds per point
    warmup: float = 0.5  # unmeasured seconds before each point
    clients: tuple[int, ...] = (1, 8, 32, 64)
    streams: tuple[int, ...] = (1, 4, 16)
    batch_clients: int = 8
    first_char_seconds: float = 3.0


@dataclass(frozen=True)
class BodyCounts(Record):
    sentiment: int  # distinct /sentiment bodies
    ner: int
    batch_texts: int  # sentences per multi-text /sentiment request
    new_tokens: int | None = None  # max_new_tokens of a /generate stream
    first_char_tokens: int | None = None  # max_new_tokens of the first-character streams
    temperature: float | None = None


@dataclass(frozen=True)
class Interference(Record):
    mean_cores: float
    max_cores: float
    period_s: float | None = None  # one sample per period


@dataclass(frozen=True)
class Results(Record):
    """The whole run: bench/results.json."""

    machine: Machine
    command: str
    plan: Plan
    bodies: BodyCounts
    matmul_gflops: float  # numpy float32 matmul on all cores: the FLOP ceiling
    model_only: list[ModelRow]
    servers: dict[str, ServerResult]
    duration_s: float
    busy_before: list[str] = field(default_factory=list)
    padding: list[PaddingRow] = field(default_factory=list)
    op_profile: list[OpProfile] = field(default_factory=list)
    chunks: list[ChunkRow] = field(default_factory=list)
    head_to_head: HeadToHead | None = None
    sweep: list[SweepRow] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    interference: Interference | None = None
    busy_after: list[str] = field(default_factory=list)
    matmul_n: int | None = None  # the matmul's n x n size
    tail: TailResults | None = None  # issue 18: ours against baseline (c), one at a time (bench/tail.py)

    def flops(self, task: str) -> float:
        """FLOPs of one item of `task` (a sentence; a character for the char LM)."""
        return next(m.flops_per_item for m in self.model_only if m.task == task)

    def ceiling_share(self, task: str, items_per_s: float) -> float:
        """`items_per_s` as a fraction of what the matmul rate allows for `task`."""
        return items_per_s * self.flops(task) / (self.matmul_gflops * 1e9)
