"""The benchmark's targets as data: each `Target` names a figure of one server (bench/figures.py), what it is compared
with (another server's figure, another figure of the same server, or nothing: a bound), the operator, the threshold
and why. `evaluate` turns them into verdicts on a run (bench/verdicts.py says how a ratio and a tail figure are
read); `render` makes them one table.
"""

from __future__ import annotations

from bench.figures import Figure, batched_rate, chars, p99, rps, tail_figure, torch_processes
from bench.kinds import OURS, PLAIN_LITSERVE, label
from bench.markdown import num
from bench.report_servers import disturbed
from bench.results import Results
from bench.tail_results import TailResults
from bench.verdicts import Target, Verdict, figure_of, tail_verdict, verdict, verdict_table

A, B, C = "fastapi-torch", "litserve-torch", PLAIN_LITSERVE.name


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


BATCHED = Figure(OURS, "/sentiment 64-text requests x8: sentences/s", batched_rate, "/sentiment 64 texts x8")


def _ceiling_note(r: Results) -> str:
    single, batched = rps(OURS, "/sentiment"), BATCHED
    return (
        f"; of the FLOP ceiling: 64-text {100 * r.ceiling_share('sentiment', figure_of(r, batched)):.1f} %, "
        f"single-text {100 * r.ceiling_share('sentiment', figure_of(r, single)):.1f} %"
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
        Figure(OURS, "processes with torch (libtorch mapped, or /info)", torch_processes),
        "<=",
        0,
        why="the serving side installs no torch",
    ),
    *TAIL_TARGETS,
)


def evaluate(r: Results, targets: tuple[Target, ...] = TARGETS) -> list[Verdict]:
    return [v for t in targets if (v := verdict(r, t)) is not None]


def render(r: Results) -> str:
    verdicts = evaluate(r)
    if OURS not in r.servers and not verdicts:
        return f"({label(OURS)} was not measured)"
    return verdict_table(verdicts) + batch_ceiling(r) + disturbed(r)


def tail_table(t: TailResults) -> str:
    """The tail targets alone, on bench/tail.py's own results (`python -m bench.tail`)."""
    return verdict_table([v for target in TAIL_TARGETS if (v := tail_verdict(target, t)) is not None])


def batch_ceiling(r: Results) -> str:
    """The 64-text target as a CPU budget and as a share of the FLOP ceiling: `threshold` × ours' single-text rate
    leaves each 64-text request so many milliseconds of the machine's cores; the model alone, in its most efficient
    form (1 thread, sorted by length, the padding table), and the tokenizer take their share of it before any HTTP."""
    target = next(t for t in TARGETS if t.figure is BATCHED)
    padding = next((p for p in r.padding if p.task == "sentiment"), None)
    if padding is None or padding.encode_ms is None or OURS not in r.servers or target.versus is None:
        return ""
    single = figure_of(r, target.versus)
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
        f"{100 * r.ceiling_share('sentiment', figure_of(r, BATCHED)):.1f} %."
    )
