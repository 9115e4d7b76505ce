"""The report section of `bench.tail` (issue 18): ours against baseline (c) with the tail, the targets, and the
per-request timeline. `section(results["tail"])` is one markdown string; `bench.report` appends it."""

from __future__ import annotations

import statistics
from typing import Any

from bench.tail import CLIENTS, PATHS, PEER, TIMELINE_CLIENTS

FIGURES = ("p50_ms", "p95_ms", "p99_ms", "p999_ms")

# What the timeline showed and what was changed for it, with the measurements behind each change (hand-written; the
# figures above this text are the run's own).
NOTES = """\
How to read the timeline: each request's stamps are `time.monotonic()` (CLOCK_MONOTONIC, one clock for every
process), taken in the HTTP process (`http_in` at the outermost middleware, `queued` at the put, `read` when the
answer comes off the pipe, `woken` when the route runs again, `http_out` at the last body message) and in the
worker (`taken` off the queue, `formed` when its batch is complete, the model call's start and end, `written` to
the pipe). The last column is each stage's mean over the slowest 1 % of the requests: the stages where it is far
above the mean are where the tail comes from. Baseline (c) is `bench/baseline_litserve_onnx.py`: LitServe 0.2.19's
own queues, batched loop and HTTP processes, onnxruntime's defaults, `max_batch_size=16`, `batch_timeout=0.005`.

What the timeline showed (issue 18, 2 cores shared with a training run that could not be paused, so the absolute
figures are low and noisy; ratios are within one window): at 32 clients the slowest 1 % of /sentiment requests
spent most of their time in `queue_wait` and `reader_to_route` (the worker and the HTTP processes not running, not
the model), and /ner's batches were full (16) with `encode_and_pipe_write` at 6 ms p50: every answer of a batch
waited until all 16 were encoded. Changes, each measured with the others frozen (`bench/tail.py`'s method):
- answers leave the worker one by one as each is encoded (`BlockingBatchedLoop.serve`);
- `RNNSERVE_GC_QUIET` (default on, `service/gc_policy.py`): `gc.freeze()` after start-up and a young-collection
  threshold of 10,000 in the workers and the HTTP processes. Same window, 4 rounds of 2 s, medians, off -> on:
  /sentiment x32 p99 222 -> 108 ms (p99/p50 3.8 -> 2.0), x64 359 -> 204 ms; /ner x32 207 -> 144 ms, x64 267 -> 205
  ms; requests/s 513 -> 611, 533 -> 703, 388 -> 416, 323 -> 421.
- Tried and not adopted (no gain that outlasted the noise): `RNNSERVE_API_SERVERS=1`, `RNNSERVE_MAX_BATCH_SIZE=32`.
"""


def _median(points: list[dict[str, Any]], key: str) -> float:
    return statistics.median(p[key] for p in points)


def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def side_by_side(t: dict[str, Any]) -> str:
    rows = []
    for path, _ in PATHS:
        for clients in CLIENTS:
            key = f"{path} x{clients}"
            ours, peer = t["points"]["ours"][key], t["points"][PEER][key]
            o_rps, p_rps = _median(ours, "rps"), _median(peer, "rps")
            rows.append(
                [
                    key,
                    _f(o_rps, 0),
                    _f(p_rps, 0),
                    f"{o_rps / p_rps:.2f}×",
                    " / ".join(_f(_median(ours, k)) for k in FIGURES),
                    " / ".join(_f(_median(peer, k)) for k in FIGURES),
                    f"{_median(ours, 'p99_ms') / _median(peer, 'p99_ms'):.2f}×",
                ]
            )
    head = [
        "point",
        "ours req/s",
        "(c) req/s",
        "ratio",
        "ours p50 / p95 / p99 / p99.9 ms",
        "(c) p50 / p95 / p99 / p99.9 ms",
    ]
    return _table([*head, "p99 ours ÷ (c)"], rows)


def target_table(t: dict[str, Any]) -> str:
    rows = [
        [x["target"], ", ".join(f"{r:.2f}" for r in x["rounds"]), f"**{x['median']:.2f}**", f"**{x['verdict']}**"]
        for x in t["targets"]
    ]
    return _table(["target", "each round", "median", "verdict"], rows)


def timeline_table(tl: dict[str, Any]) -> str:
    rows = [
        [name, _f(s["p50"], 2), _f(s["p99"], 2), _f(s["mean"], 2), _f(s["slow_mean"], 2)]
        for name, s in tl["stages"].items()
    ]
    b = tl["batch"]
    return (
        _table(["stage", "p50 ms", "p99 ms", "mean ms", "mean ms, slowest 1 %"], rows)
        + f"\n{tl['samples']:,} requests sampled; requests per model call: mean {b['mean']:.1f}, median "
        f"{b['p50']:.0f}, max {b['max']:.0f}.\n"
    )


def section(t: dict[str, Any]) -> str:
    parts = [
        "\n## Baseline (c): plain LitServe + onnxruntime, and the tail\n",
        f"Ours and (c) one at a time (the other frozen), {t['rounds']} rounds of {t['seconds']:.1f} s per point, "
        "medians of the rounds.\n",
        side_by_side(t),
        "\n### Targets against (c)\n",
        target_table(t),
        f"\n### Where a request's time goes: ours at {TIMELINE_CLIENTS} clients\n",
    ]
    for path, tl in t.get("timeline", {}).items():
        parts += [f"\n**{path}**\n", timeline_table(tl)]
    parts += ["", NOTES]
    return "\n".join(parts)
