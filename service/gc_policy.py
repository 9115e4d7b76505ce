"""Garbage collection in the serving processes: after start-up, everything alive then (the app, the routes, the
model, the vocabularies) is moved out of the collector's sight (`gc.freeze`), and young collections run less
often. A full collection then scans only what requests allocated since, instead of every object of the process, so
its pause is short; an HTTP process stopped by a pause delays every answer waiting in it (the timeline's
`reader_to_route` stage). Reference counting frees almost everything a request allocates anyway; the collector
is only for cycles."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def quiet_gc() -> None:
    """Call once a process is ready to serve (in a forked child, right after the fork)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
