"""The report section of `bench.tail` (issue 18): ours against baseline (c) with the tail, and ours' per-request
timeline. `section(results)` is one markdown string, "" where the run has no tail rounds (`bench.report`'s
SECTIONS); the targets against (c) are rows of the report's one targets table (bench/targets.py's TAIL_TARGETS).
"""

from __future__ import annotations

from bench.kinds import OURS, PLAIN_LITSERVE
from bench.markdown import num, table
from bench.results import Results
from bench.tail_results import TailResults, Timeline

FIGURES = ("p50_ms", "p95_ms", "p99_ms", "p999_ms")

# What the timeline showed and what was changed for it, with the measurements behind each change (hand-written; the
# figures above this text are the run's own).
NOTES = """\
How to read the timeline: each request's stamps are `time.monotonic()` (CLOCK_MONOTONIC, one clock for every
process), taken in the HTTP process (`http_in` at the outermost middleware, `queued` at the put, `read` when the
answer comes off the pipe, `woken` when the route runs again, `http_out` at the last body message) and in the
worker (`taken` off the queue, `formed` when its batch is complete, the model call's start and end, `written` to
the pipe). The last column is each stage's mean over the slowest 1 % of the requests: the stages where it is far
above the mean are where the tail comes from.

What the timeline showed (issue 18, measured while other tests and benchmarks shared the 2 cores, so the
absolute figures are low and noisy; ratios are within one window): at 32 clients the slowest 1 % of /sentiment requests
spent most of their time in `queue_wait` and `reader_to_route` (the worker and the HTTP processes not running, not
the model), and /ner's batches were full (16) with `encode_and_pipe_write` at 6 ms p50: every answer of a batch
waited until all 16 were encoded. Changes, each measured with the others frozen (`bench/tail.py`'s method):
- answers leave the worker one by one as each is encoded (`BlockingBatchedLoop.serve`);
- `RNNSERVE_GC_QUIET` (default on, `service/gc_policy.py`): `gc.freeze()` after start-up and a young-collection
  threshold of 10,000 in the workers and the HTTP processes. Same window, 4 rounds of 2 s, medians, off -> on:
  /sentiment x32 p99 222 -> 108 ms (p99/p50 3.8 -> 2.0), x64 359 -> 204 ms; /ner x32 207 -> 144 ms, x64 267 -> 205
  ms; requests/s 513 -> 611, 533 -> 703, 388 -> 416, 323 -> 421.
- Tried and not adopted (no gain that outlasted the noise): `RNNSERVE_API_SERVERS=1`, `RNNSERVE_MAX_BATCH_SIZE=32`.
- Before the fixes (`python -m bench.tail --seconds=2 --rounds=2`, a busier window): /sentiment x32 p99 0.90x (c)
  and p99/p50 4.4, both missed; the other ten targets held. After (the same command, a quieter window): all twelve
  held; req/s ours / (c) /sentiment x32 1,363 / 432 (3.16x), x64 1,208 / 434 (2.79x), /ner x32 705 / 241 (2.92x),
  x64 664 / 218 (3.04x); p99 ours ÷ (c) 0.41, 0.43, 0.39, 0.39; p99/p50 of ours 1.98, 1.79, 1.48, 1.28.
"""


def side_by_side(t: TailResults) -> str:
    rows = []
    for path in t.paths():
        for clients in t.clients:
            o_rps, p_rps = (t.median(k, path, clients, "rps") for k in (OURS, PLAIN_LITSERVE.name))
            o_p99, p_p99 = (t.median(k, path, clients, "p99_ms") for k in (OURS, PLAIN_LITSERVE.name))
            rows.append(
                [
                    f"{path} x{clients}",
                    num(o_rps),
                    num(p_rps),
                    f"{o_rps / p_rps:.2f}×" if p_rps else "–",
                    " / ".join(num(t.median(OURS, path, clients, k), 1) for k in FIGURES),
                    " / ".join(num(t.median(PLAIN_LITSERVE.name, path, clients, k), 1) for k in FIGURES),
                    f"{o_p99 / p_p99:.2f}×" if p_p99 else "–",
                ]
            )
    head = [
        "point",
        "ours req/s",
        "(c) req/s",
        "ratio",
        "ours p50 / p95 / p99 / p99.9 ms",
        "(c) p50 / p95 / p99 / p99.9 ms",
        "p99 ours ÷ (c)",
    ]
    return table(head, rows)


def timeline_table(tl: Timeline) -> str:
    rows = [[name, num(s.p50, 2), num(s.p99, 2), num(s.mean, 2), num(s.slow_mean, 2)] for name, s in tl.stages.items()]
    b = tl.batch
    return (
        table(["stage", "p50 ms", "p99 ms", "mean ms", "mean ms, slowest 1 %"], rows)
        + f"\n\n{tl.samples:,} requests sampled; requests per model call: mean {b.mean:.1f}, median "
        f"{b.p50:.0f}, max {b.max:.0f}.\n"
    )


def tables(t: TailResults) -> str:
    """The measurements: (c) side by side with ours, then the timeline of each path."""
    parts = [
        f"(c) is {PLAIN_LITSERVE.what}. Ours and (c) one at a time (the other frozen), {t.rounds} "
        f"round{'s' if t.rounds != 1 else ''} of "
        f"{t.seconds:.1f} s per point, medians of the rounds; the targets against (c) are in the targets table "
        "above, on the median of the rounds' ratios.\n",
        side_by_side(t),
    ]
    if t.timeline:
        parts.append(f"\n### Where a request's time goes: ours at {t.timeline_clients} clients\n")
    for path, tl in t.timeline.items():
        parts += [f"**{path}**\n", timeline_table(tl)]
    return "\n".join(parts)


def section(r: Results) -> str:
    if r.tail is None or not r.tail.points:
        return ""
    return tables(r.tail) + "\n" + NOTES
