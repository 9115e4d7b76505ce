"""The HTTP side of the request timeline: the sample of the request being served, and what `client.answer` adds to
it from a timed answer (`protocol.Timed`). `service.web.timeline` opens and keeps the samples.

A sample is a dict of time.monotonic() stamps (CLOCK_MONOTONIC: one clock for every process on the machine, so
stamps taken in a worker and in an HTTP process subtract) plus `batch`, the requests in its model call. The
request's task sees its own sample through a context variable: set by the middleware, read in the route's task.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from service.litserve_ext.protocol import Timed

Sample = dict[str, float]

CURRENT: ContextVar[Sample | None] = ContextVar("rnnserve_timeline_sample", default=None)


def unwrap(data: Any) -> Any:
    """The answer inside a timed answer, its stamps filed in the current sample (if one is open); any other answer
    as it is. `woken`: the route's task runs again after the answer's event was set."""
    if not isinstance(data, Timed):
        return data
    sample = CURRENT.get()
    if sample is not None:
        sample.update(data.worker_stamps(), woken=time.monotonic(), batch=float(data.batch))
    return data.data
