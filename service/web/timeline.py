"""GET /debug/timeline: where a /sentiment or /ner request's time goes, stamp by stamp, in this HTTP process.

Only with `RNNSERVE_TIMELINE=1` (`build_server` then adds the middleware and the route; off, neither exists and
the workers take no stamps). The middleware, the outermost, opens a sample for each POST /sentiment and /ner:
`http_in` when the request reaches it, the worker's stamps through `client.answer` (`litserve_ext.timeline`),
`http_out` when the answer's last body message is handed to the server. Each HTTP process keeps its last
`timeline_samples` complete samples in a fixed-size ring (appending costs the same however long the server runs);
GET /debug/timeline returns them and, with `?clear=true`, empties the ring (a bench clears it after its warm-up).
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.litserve_ext.timeline import CURRENT, Sample

PATHS = frozenset({"/sentiment", "/ner"})

# The stages, as (name, from stamp, to stamp): their durations add up to the request's time in the server.
STAGES = (
    ("http_in_to_queue", "http_in", "queued"),  # body, validation, the route, the put on the queue
    ("queue_wait", "queued", "taken"),  # waiting for the worker to take it
    ("batch_forming", "taken", "formed"),  # waiting for the rest of its batch
    ("decode_and_pad", "formed", "model_start"),
    ("model", "model_start", "model_end"),
    ("encode_and_pipe_write", "model_end", "written"),  # unbatch, encode, answers written before this one
    ("pipe_to_reader", "written", "read"),  # the pipe, the HTTP process's reader waking
    ("reader_to_route", "read", "woken"),  # the event set, the route's task scheduled again
    ("route_to_http_out", "woken", "http_out"),
)


class TimelineStore:
    """The last `size` samples of this process: (path, stamps). Forked with the app: each HTTP process its own."""

    def __init__(self, size: int) -> None:
        self.samples: deque[tuple[str, Sample]] = deque(maxlen=size)

    def add(self, path: str, sample: Sample) -> None:
        if "written" in sample:  # answered by a worker (not a 422, 413 or 503 from the HTTP side)
            self.samples.append((path, sample))


class TimelineMiddleware:
    def __init__(self, app: ASGIApp, *, store: TimelineStore) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in PATHS:
            await self.app(scope, receive, send)
            return
        sample: Sample = {"http_in": time.monotonic()}
        token = CURRENT.set(sample)

        async def stamped_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                sample["http_out"] = time.monotonic()
                self.store.add(path, sample)
            await send(message)

        try:
            await self.app(scope, receive, stamped_send)
        finally:
            CURRENT.reset(token)


def add_timeline_route(app: FastAPI, store: TimelineStore) -> None:
    async def timeline(clear: bool = False) -> dict[str, Any]:
        samples = [{"path": path, **stamps} for path, stamps in store.samples]
        if clear:
            store.samples.clear()
        return {"pid": os.getpid(), "clock": "CLOCK_MONOTONIC", "stages": [s[0] for s in STAGES], "samples": samples}

    app.add_api_route(
        "/debug/timeline", timeline, methods=["GET"], summary="Recent request timelines (RNNSERVE_TIMELINE=1 only)"
    )
