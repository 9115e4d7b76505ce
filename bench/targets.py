"""The benchmark's targets as data: each `Target` names a figure of one server, what it is compared with (another
server's figure, another figure of the same server, or nothing: a bound), the operator, the threshold and why.
`evaluate` turns them into verdicts on a run; `render` makes them one table.

A ratio uses the head-to-head rounds where both figures were measured there (the median of the per-round ratios,
servers alternating), else the side-by-side table's one figure each. A tail figure (issue 18, `Figure.rounds`) is
read from `Results.tail` instead, bench/tail.py's rounds of ours against baseline (c) one server at a time: its
verdict is on the median of the per-round ratios, or of the rounds' figures. A target whose servers (or whose tail
rounds) were not measured is left out.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.kinds import OURS, PLAIN_LITSERVE, label
from bench.markdown import listed, num, table
from bench.report_servers import disturbed
from bench.results import Results, ServerResult
from bench.tail_results import TailResults

A, B, C = "fastapi-torch", "litserve-torch", PLAIN_LITSERVE.name
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


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


@dataclass(frozen=True)
class Target:
    figure: Figure
    op: str  # a key of OPS
    threshold: float
    versus: Figure | None = None  # None: `figure` itself against the threshold; else figure ÷ versus
    why: str = ""
    note: Callable[[Results], str] | None = None  # more of the measurement, for the "measured" cell


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float  # the ratio, or the figure itself
    measured: str
    holds: bool


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


def _batched(s: ServerResult) -> float:
    return s.batched.sentences_per_s or 0.0


def _torch(s: ServerResult) -> float:
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


TAIL_CLIENTS = (32, 64)  # issue 18's targets hold at these client counts
TAIL_TARGETS: tuple[Target, ...] = tuple(
    t
    for path in ("/sentiment", "/ner")
    for clients in TAIL_CLIENTS
    for t in (
        Target(
            tail_figure(OURS, path, clients, "rps"),
            ">=",
            2,
            tail_figure(C, path, clients, "rps"),
            "issue 18: our batching, pipes and HTTP processes against LitServe's own, the same model work",
        ),
        Target(
            tail_figure(OURS, path, clients, "p99_ms"),
            "<=",
            0.7,
            tail_figure(C, path, clients, "p99_ms"),
            "issue 18: the same, in tail latency",
        ),
        Target(
            tail_figure(OURS, path, clients, "p99_ms"),
            "<=",
            2.5,
            tail_figure(OURS, path, clients, "p50_ms"),
            "issue 18: a tail close to the median",
        ),
    )
)


BATCHED = Figure(OURS, "/sentiment 64-text requests x8: sentences/s", _batched, "/sentiment 64 texts x8")


def _ceiling_note(r: Results) -> str:
    single, batched = rps(OURS, "/sentiment"), BATCHED
    return (
        f"; of the FLOP ceiling: 64-text {100 * r.ceiling_share('sentiment', _median(r, batched)):.1f} %, "
        f"single-text {100 * r.ceiling_share('sentiment', _median(r, single)):.1f} %"
    )


TARGETS: tuple[Target, ...] = (
    *(
        t
        for path in ("/sentiment", "/ner")
        for t in (
            Target(rps(OURS, path), ">=", 2, rps(A, path), "batching and onnxruntime against a hand-written server"),
            Target(p99(OURS, path), "<=", 0.5, p99(A, path), "the same, in tail latency"),
            Target(rps(OURS, path), ">=", 1.2, rps(B, path), "onnxruntime's share: the same server on PyTorch"),
        )
    ),
    Target(
        BATCHED,
        ">=",
        4,
        rps(OURS, "/sentiment"),
        "issue 16: a 64-text request saves HTTP, JSON and queueing per sentence; the 10× target is withdrawn, since "
        "dynamic batching already batches single-text requests",
        _ceiling_note,
    ),
    Target(chars(OURS, 16), ">=", 4, chars(OURS, 1), "continuous batching: concurrent streams share each step"),
    Target(chars(OURS, 16), ">=", 10, chars(A, 16), "(a) makes a model call per character per stream"),
    Target(
        Figure(
            OURS,
            "/generate first character, lone client: p50",
            lambda s: s.first_char.first_char_p50_ms,
            unit=" ms",
            digits=1,
        ),
        "<",
        50,
        why="interactive use",
        note=lambda r: f", p95 {r.servers[OURS].first_char.first_char_p95_ms:.1f} ms",
    ),
    Target(
        Figure(OURS, "start-up to ready /health", lambda s: s.startup_s, unit=" s", digits=2), "<", 5, why="restarts"
    ),
    Target(
        Figure(OURS, "all serving processes: PSS", lambda s: s.memory_loaded.pss_mb, unit=" MB"),
        "<",
        600,
        why="a small container",
        note=lambda r: (
            f", RSS sum {r.servers[OURS].memory_loaded.rss_mb:.0f} MB, {r.servers[OURS].memory_loaded.processes} "
            "processes"
        ),
    ),
    Target(
        Figure(OURS, "processes with torch (libtorch mapped, or /info)", _torch),
        "<=",
        0,
        why="the serving side installs no torch",
    ),
    *TAIL_TARGETS,
)


def _median(r: Results, f: Figure, versus: Figure | None = None) -> float:
    """`f` (÷ `versus`) as the targets read it: the head-to-head median where the rounds measured it."""
    if versus is None:
        rounds = r.head_to_head.points.get(f.duel or "", {}).get(f.server, []) if r.head_to_head else []
        return statistics.median(rounds) if rounds else f.of(r.servers[f.server])
    duel = _duel(r, f, versus)
    return statistics.median(duel) if duel else _div(f.of(r.servers[f.server]), versus.of(r.servers[versus.server]))


def _div(a: float, b: float) -> float:
    """a / b; a figure over a zero (nothing measured in the window: a stalled server) is infinitely larger."""
    return a / b if b else (math.inf if a > 0 else math.nan)


def _duel(r: Results, f: Figure, versus: Figure) -> list[float]:
    if r.head_to_head is None or f.duel is None or versus.duel is None or f.server != OURS:
        return []
    return r.head_to_head.ratios(f.duel, versus.duel, versus.server, "p99_ms" if f.latency else "points")


def tail_verdict(t: Target, tail: TailResults | None) -> Verdict | None:
    """A tail target on bench/tail.py's rounds: the median of the per-round ratios (or of the rounds' figure); None
    where the rounds did not measure it."""
    f, v = t.figure, t.versus
    assert f.rounds is not None and (v is None or v.rounds is not None), "a tail target compares tail figures"
    mine = f.rounds(tail) if tail else []
    theirs = v.rounds(tail) if tail and v and v.rounds else []
    if not mine or (v is not None and not theirs):
        return None
    if v is None:
        value = statistics.median(mine)
        measured = f"median of {_rounds(len(mine))} {value:.{f.digits}f}{f.unit} ({listed(mine, f.digits)})"
    else:
        ratios = [_div(m, o) for m, o in zip(mine, theirs, strict=False)]
        value = statistics.median(ratios)
        medians = f"{num(statistics.median(mine), f.digits)} vs {num(statistics.median(theirs), v.digits)}{f.unit}"
        measured = f"median of {_rounds(len(ratios))} {value:.2f}× ({listed(ratios)}); medians {medians}"
    return Verdict(t, value, measured, OPS[t.op](value, t.threshold))


def _rounds(n: int) -> str:
    return f"{n} round{'s' if n != 1 else ''}"


def evaluate(r: Results, targets: tuple[Target, ...] = TARGETS) -> list[Verdict]:
    out = []
    for t in targets:
        f, v = t.figure, t.versus
        if f.rounds is not None:
            verdict = tail_verdict(t, r.tail)
            if verdict is not None:
                out.append(verdict)
            continue
        if f.server not in r.servers or (v is not None and v.server not in r.servers):
            continue
        mine = f.of(r.servers[f.server])
        if v is None:
            value, measured = mine, f"{mine:.{f.digits}f}{f.unit}"
        else:
            theirs = v.of(r.servers[v.server])
            digits = 1 if f.latency else 0
            once = f"{mine:.{digits}f} vs {theirs:.{digits}f}{f.unit} = {_div(mine, theirs):.2f}×"
            duel = _duel(r, f, v)
            value = statistics.median(duel) if duel else _div(mine, theirs)
            measured = (
                f"head to head, median of {len(duel)} rounds {value:.2f}× ({listed(duel)}); table: {once}"
                if duel
                else once
            )
        if t.note is not None:
            measured += t.note(r)
        out.append(Verdict(t, value, measured, OPS[t.op](value, t.threshold)))
    return out


def _against(v: Figure | None, f: Figure) -> str:
    if v is None:
        return "–"
    return label(v.server) if v.what == f.what else (v.what if v.server == f.server else f"{label(v.server)} {v.what}")


def _table(verdicts: list[Verdict]) -> str:
    rows = []
    for v in verdicts:
        t = v.target
        needs = f"{t.op} {t.threshold:g}×" if t.versus is not None else f"{t.op} {t.threshold:g}{t.figure.unit}"
        verdict = "**holds**" if v.holds else "**misses**"
        rows.append([t.figure.what, _against(t.versus, t.figure), needs, v.measured, verdict, t.why])
    return table(["target", "against", "needs", "measured", "verdict", "why"], rows)


def render(r: Results) -> str:
    verdicts = evaluate(r)
    if OURS not in r.servers and not verdicts:
        return f"({label(OURS)} was not measured)"
    return _table(verdicts) + batch_ceiling(r) + disturbed(r)


def tail_table(t: TailResults) -> str:
    """The tail targets alone, on bench/tail.py's own results (`python -m bench.tail`)."""
    return _table([v for target in TAIL_TARGETS if (v := tail_verdict(target, t)) is not None])


def batch_ceiling(r: Results) -> str:
    """The 64-text target as a CPU budget and as a share of the FLOP ceiling: `threshold` × ours' single-text rate
    leaves each 64-text request so many milliseconds of the machine's cores; the model alone, in its most efficient
    form (1 thread, sorted by length, the padding table), and the tokenizer take their share of it before any HTTP."""
    target = next(t for t in TARGETS if t.figure is BATCHED)
    padding = next((p for p in r.padding if p.task == "sentiment"), None)
    if padding is None or padding.encode_ms is None or OURS not in r.servers or target.versus is None:
        return ""
    single = _median(r, target.versus)
    if not single > 0:
        return ""
    from_rounds = bool(r.head_to_head and r.head_to_head.points.get(target.versus.duel or "", {}).get(OURS))
    x, n, cores = target.threshold, padding.sentences, r.machine.cores
    budget = cores * 1000 * n / (x * single)  # CPU ms per n-text request at x times the single-text rate
    left = budget - padding.sorted_chunks_ms - padding.encode_ms
    rest = (
        f"leaving {left:.1f} ms for HTTP, JSON, the pipes and the answer"
        if left > 0
        else f"{-left:.1f} ms over the budget before any HTTP, JSON or pipe"
    )
    ceiling = r.matmul_gflops * 1e9 / r.flops("sentiment")
    return (
        f"\n\nThe 64-text target as a CPU budget: {x:g}× ours' single-text rate ({num(single)} req/s at 32 clients"
        f"{', head-to-head median' if from_rounds else ''}) is {num(x * single)} sentences/s, i.e. {budget:.1f} ms "
        f"of the {cores} cores per {n}-text request. The model alone takes {padding.sorted_chunks_ms:.1f} ms of it "
        f'for the benchmark\'s {n} sentences (1 thread, sorted by length: its most efficient form, "Padding" below) '
        f"and turning the texts into ids {padding.encode_ms:.1f} ms: {rest}. As a share of the FLOP ceiling "
        f"({num(ceiling)} sentences/s at {r.flops('sentiment') / 1e6:.1f} MFLOP each): the target is "
        f"{100 * r.ceiling_share('sentiment', x * single):.1f} %, the 64-text rate measured "
        f"{100 * r.ceiling_share('sentiment', _median(r, BATCHED)):.1f} %."
    )
