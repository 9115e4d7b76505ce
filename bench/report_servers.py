"""The report's server part: every figure side by side, the head-to-head rounds, each server's detail, the sweep."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from bench.kinds import OURS, label
from bench.markdown import listed, num, ratio, table
from bench.results import Point, RequestPoint, Results, ServerResult, SweepRow

Getter = Callable[[ServerResult], float | None]


def _request(path: str, clients: int, field: str) -> Getter:
    return lambda s: float(getattr(s.point(path, clients), field))


def _stream(n: int, field: str) -> Getter:
    return lambda s: float(getattr(s.stream(n), field))


def _first(field: str) -> Getter:
    return lambda s: float(getattr(s.first_char, field))


def figures(r: Results) -> list[tuple[str, str, Getter, int]]:
    """(figure, better, getter on one server's results, digits), for every point of the plan."""
    out: list[tuple[str, str, Getter, int]] = []
    for path in ("/sentiment", "/ner"):
        for c in r.plan.clients:
            who = f"{c} client" + ("s" if c > 1 else "")
            out.append((f"{path} {who}: req/s", "higher", _request(path, c, "rps"), 0))
            out += [(f"{path} {who}: {q} ms", "lower", _request(path, c, f"{q}_ms"), 1) for q in ("p50", "p95", "p99")]
    n, bc = r.bodies.batch_texts, r.plan.batch_clients
    out.append((f"/sentiment {n}-text requests, {bc} clients: sentences/s", "higher", _batched_rate, 0))
    out.append((f"/sentiment {n}-text requests: p99 ms", "lower", _batched_p99, 1))
    for q in ("p50", "p95"):
        out.append((f"/generate first character, lone client: {q} ms", "lower", _first(f"first_char_{q}_ms"), 1))
    for k in r.plan.streams:
        name = "one stream: chars/s" if k == 1 else f"{k} streams: total chars/s"
        out.append((f"/generate {name}", "higher", _stream(k, "chars_per_s"), 0))
        if k > 1:
            out.append((f"/generate {k} streams: first char p50 ms", "lower", _stream(k, "first_char_p50_ms"), 0))
    out.append(("start-up to ready /health, s", "lower", _startup, 2))
    out.append(("serving processes", "–", _processes, 0))
    out.append(("memory after the load, PSS MB (all processes)", "lower", _pss, 0))
    out.append(("memory after the load, RSS sum MB", "lower", _rss, 0))
    return out


def _batched_rate(s: ServerResult) -> float | None:
    return s.batched.sentences_per_s


def _batched_p99(s: ServerResult) -> float:
    return s.batched.p99_ms


def _startup(s: ServerResult) -> float:
    return s.startup_s


def _processes(s: ServerResult) -> float:
    return s.memory_loaded.processes


def _pss(s: ServerResult) -> float:
    return s.memory_loaded.pss_mb


def _rss(s: ServerResult) -> float:
    return s.memory_loaded.rss_mb


def side_by_side(r: Results) -> str:
    ours = r.servers.get(OURS)
    others = [k for k in r.servers if k != OURS]
    head = ["figure", "better", label(OURS)]
    for k in others:
        head += [label(k), f"ours ÷ {label(k).split()[0]}"]
    rows = []
    for name, better, get, digits in figures(r):
        mine = get(ours) if ours else None
        row = [name, better, num(mine, digits)]
        for k in others:
            theirs = get(r.servers[k])
            row += [num(theirs, digits), ratio(mine, theirs) if better != "–" else "–"]
        rows.append(row)
    return table(head, rows)


def _where(p: Point) -> str:
    return (
        f"{p.path} with {p.clients} clients" if isinstance(p, RequestPoint) else f"/generate with {p.streams} streams"
    )


def loadgen_share(r: Results) -> str:
    points = [(name, p) for name, s in r.servers.items() for p in s.all_points()]
    if not points:
        return ""
    name, worst = max(points, key=lambda x: x[1].loadgen_cores)
    cores = r.machine.cores
    return (
        f"\nThe load generator's own CPU: at most {worst.loadgen_cores:.2f} cores "
        f"({100 * worst.loadgen_cores / cores:.0f} % of the machine's {cores}), at {_where(worst)} against "
        f"{label(name)}; every point's figure is in the detail tables.\n"
    )


def disturbed(r: Results, limit: float = 0.2) -> str:
    """The points during which other processes used more than `limit` cores."""
    hit = [
        f"{label(n)} {_where(p)} ({p.other_cores:.2f})"
        for n, s in r.servers.items()
        for p in s.all_points()
        if p.other_cores > limit
    ]
    if not hit:
        return ""
    return (
        f"\n\n**Disturbed points:** other processes used more than {limit} cores during " + ", ".join(hit) + ". Their "
        "figures (and ratios built on them) are not reliable in this run."
    )


def head_to_head(r: Results) -> str:
    h = r.head_to_head
    if h is None:
        return "(not run: `--rounds=0`, or only one server)"
    rows = []
    for name, by_kind in h.points.items():
        unit = "sentences/s" if "texts" in name else "req/s"
        for kind in (k for k in by_kind if k != OURS):
            for figure, what in (("points", unit), ("p99_ms", "p99 ms")):
                ratios = h.ratios(name, name, kind, figure)
                if not ratios:
                    continue
                side = h.points if figure == "points" else h.p99_ms
                digits = 1 if figure == "p99_ms" else 0
                rows.append(
                    [
                        f"{name}: {what}",
                        label(kind),
                        ", ".join(num(x, digits) for x in side[name][OURS]),
                        ", ".join(num(x, digits) for x in side[name][kind]),
                        listed(ratios),
                        f"**{statistics.median(ratios):.2f}×**",
                    ]
                )
    own = []
    for point, versus in (("/sentiment 64 texts x8", "/sentiment x32"), ("/generate 16 streams", "/generate 1 stream")):
        rates = h.points.get(point, {}).get(OURS, [])
        if rates:
            own.append(
                f"Ours, {point}: {', '.join(num(x) for x in rates)}; ÷ ours at {versus} in the same round: "
                f"{listed(h.ratios(point, versus, OURS))}."
            )
    return (
        table(["point", "versus", "ours, each round", "theirs, each round", "ours ÷ theirs", "median"], rows)
        + f"\n\nThe servers run side by side; each round measures every point on each of them in turn, "
        f"{h.seconds:.1f} s each ({h.rounds} rounds). Other processes used at most {h.max_other_cores:.2f} cores "
        "during a point. " + " ".join(own)
    )


def detail(r: Results, name: str) -> str:
    s = r.servers[name]
    rows = []
    n = r.bodies.batch_texts
    for p, path in [*((q, q.path) for q in s.requests), (s.batched, f"/sentiment ({n} texts)")]:
        batch = f"{p.mean_batch:.1f} / {p.model_ms_per_call:.2f}" if p.mean_batch and p.model_ms_per_call else "–"
        rows.append(
            [path, str(p.clients), num(p.rps), num(p.p50_ms, 1), num(p.p95_ms, 1), num(p.p99_ms, 1), str(p.errors)]
            + [f"{x:.2f}" for x in (p.loadgen_cores, p.server_cores, p.busiest_cores, p.other_cores)]
            + [batch]
        )
    first = f"first char ({r.bodies.first_char_tokens}-char streams)" if r.bodies.first_char_tokens else "first char"
    for st, what in [(s.first_char, first), *((q, "/generate streams") for q in s.streams)]:
        rows.append(
            [what, str(st.streams), f"{num(st.chars_per_s)} chars/s", num(st.first_char_p50_ms, 1)]
            + [num(st.first_char_p95_ms, 1), "–", str(st.errors)]
            + [f"{x:.2f}" for x in (st.loadgen_cores, st.server_cores, st.busiest_cores, st.other_cores)]
            + ["–"]
        )
    head = ["endpoint", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "load gen cores", "server cores"]
    head += ["busiest process cores", "other processes cores", "requests per model call / model ms per call"]
    mem = s.memory_loaded
    return (
        f"Ready in {s.startup_s:.2f} s. After the load: {mem.processes} processes, PSS {mem.pss_mb:.0f} MB, "
        f"RSS sum {mem.rss_mb:.0f} MB; processes with libtorch mapped: {len(mem.torch_loaded)}.\n\n"
        + table(head, rows)
        + processes(s)
    )


def processes(s: ServerResult) -> str:
    rows = [
        [str(p.pid), p.role, f"`{p.cmd[:70]}`", num(p.pss_mb), num(p.rss_mb), str(p.threads)]
        for p in s.memory_processes
    ]
    if not rows:
        return ""
    return "\n\nProcesses after the load:\n\n" + table(["pid", "role", "command", "PSS MB", "RSS MB", "threads"], rows)


def details(r: Results) -> str:
    return "\n".join(f"\n## Detail: {label(name)}\n\n{detail(r, name)}" for name in r.servers)


SCORED = ("sentiment32", "ner32", "generate4")  # the sweep's score: geometric mean of these rates


def score(row: SweepRow) -> float:
    xs = [row.points[k].rate for k in SCORED]
    return math.prod(max(x, 1e-9) for x in xs) ** (1 / len(xs))


def sweep(r: Results) -> str:
    if not r.sweep:
        return "(not run: `--no-sweep`)"
    base = r.sweep[0]

    def rounds(row: SweepRow, key: str) -> str:
        p = row.points[key]
        return f"{num(p.rate)} ({', '.join(num(v) for v in p.rate_rounds)})"

    def p99(row: SweepRow, key: str) -> str:
        p = row.points[key].point
        return num(p.p99_ms, 1) if isinstance(p, RequestPoint) else "–"

    def p50(row: SweepRow, key: str) -> str:
        p = row.points[key].point
        return num(p.p50_ms, 2) if isinstance(p, RequestPoint) else "–"

    rows = [
        [
            ", ".join(f"{k}={v}" for k, v in row.env.items()) or "defaults",
            f"{row.startup_s:.2f}",
            p50(row, "sentiment1"),
            f"{rounds(row, 'sentiment32')} / {p99(row, 'sentiment32')}",
            f"{rounds(row, 'ner32')} / {p99(row, 'ner32')}",
            rounds(row, "generate4"),
            num(row.memory.pss_mb),
            ratio(score(row), score(base)),
            f"{max(p.point.other_cores for p in row.points.values()):.2f}",
        ]
        for row in r.sweep
    ]
    head = ["settings", "start-up s", "/sentiment 1 client p50 ms", "/sentiment 32: req/s (rounds) / p99 ms"]
    head += ["/ner 32: req/s (rounds) / p99 ms", "/generate 4 streams chars/s (rounds)", "PSS MB", "score vs defaults"]
    head += ["other processes' cores (max of the points)"]
    best = max(r.sweep, key=score)
    pick = ", ".join(f"{k}={v}" for k, v in best.env.items()) or "the defaults"
    point = base.points["sentiment32"]
    return table(head, rows) + (
        f"\n\nAll rows' servers run side by side; each point is measured on every row in turn, {point.rounds} "
        f"rounds of {point.point.seconds:.1f} s, and the table shows the median (each round in brackets: their "
        "spread is this machine's noise). Score: the geometric mean of /sentiment and /ner req/s at 32 clients and "
        f"/generate chars/s at 4 streams, relative to the defaults. Best in this run: **{pick}**."
    )
