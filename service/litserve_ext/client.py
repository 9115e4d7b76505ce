"""The HTTP side of the protocol: put a request on its endpoint's worker queue and wait for the answer, or for the
pieces of a stream, in LitServe's response buffer (which LitServe's reader task fills from the transport).

The routes in `service.web.routes` see the workers as a `Workers` (answer, pieces, queue depths); `LitServeWorkers`
is that for one LitServer, and what it touches of LitServe (`litapi_request_queues`, `response_buffer`, the app's
`response_queue_id`, all set per HTTP process) is here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

import litserve as ls
from fastapi import HTTPException
from litserve.utils import ResponseBufferItem

from service.litserve_ext.protocol import END, ERROR, Job, error_from
from service.litserve_ext.timeline import unwrap

POLL_SECONDS = 0.1  # how often a waiting request checks that its worker lives and its client is still there: a
# plain /generate whose client left goes on for up to this long (0.5 let 1.2 s of characters through on a fast run)

Probe = Callable[[], Awaitable[bool]]  # true when the client has gone


class ClientGone(Exception):
    """The client disconnected while its request was waiting or streaming."""


def new_uid() -> str:
    return str(uuid.uuid4())


def _submit(server: ls.LitServer, api_path: str, uid: str, payload: Any, item: ResponseBufferItem) -> None:
    server.response_buffer[uid] = item  # registered before the worker can possibly answer
    server.litapi_request_queues[api_path].put(Job.new(server.app.response_queue_id, uid, payload).item())


async def _wait(event: asyncio.Event, api_path: str, alive: Callable[[], bool] | None, gone: Probe | None) -> None:
    """Wait for the worker's next message, checking every POLL_SECONDS that the worker lives and the client is
    still connected."""
    while True:
        try:
            await asyncio.wait_for(event.wait(), POLL_SECONDS)
            return
        except TimeoutError:
            if alive is not None and not alive():
                raise HTTPException(
                    503, f"the {api_path} model worker stopped; the server restarts: retry", {"Retry-After": "5"}
                ) from None
            if gone is not None and await gone():
                raise ClientGone() from None


async def answer(server: ls.LitServer, api_path: str, payload: Any, alive: Callable[[], bool] | None = None) -> Any:
    """One request through a non-streaming endpoint's worker; a worker error raises HTTPException, and so does a
    worker that died (503) when `alive` says so."""
    item = ResponseBufferItem(event=asyncio.Event())
    uid = new_uid()
    _submit(server, api_path, uid, payload, item)
    try:
        await _wait(item.event, api_path, alive, None)
    finally:
        server.response_buffer.pop(uid, None)
    data, status = item.response
    if status == ERROR:
        raise error_from(data)
    return unwrap(data)  # a timed answer (RNNSERVE_TIMELINE) files its stamps and gives the answer


async def pieces(
    server: ls.LitServer,
    api_path: str,
    uid: str,
    payload: Any,
    alive: Callable[[], bool] | None = None,
    gone: Probe | None = None,
    abandoned: Callable[[], None] | None = None,
) -> AsyncGenerator[Any, None]:
    """One request through a streaming endpoint's worker, piece by piece (as the worker encoded them); a worker
    error raises HTTPException, a client that went away (`gone`) raises ClientGone. Left before the worker sent
    the end of the stream (the client went away, the route stopped reading), it calls `abandoned`."""
    queue: deque[Any] = deque()
    item = ResponseBufferItem(event=asyncio.Event(), response_queue=queue)
    _submit(server, api_path, uid, payload, item)
    finished = False
    try:
        while True:
            await _wait(item.event, api_path, alive, gone)
            item.event.clear()
            while queue:
                data, status = queue.popleft()
                if status == END:
                    finished = True
                    return
                if status == ERROR:
                    finished = True
                    raise error_from(data)
                yield data
    finally:
        server.response_buffer.pop(uid, None)
        if not finished and abandoned is not None:
            abandoned()


def _queue_depths(server: ls.LitServer) -> dict[str, int]:
    """Requests waiting in each endpoint's worker queue (where the platform can tell)."""
    depths = {}
    for path, queue in sorted(getattr(server, "litapi_request_queues", {}).items()):
        try:
            depths[path] = int(queue.qsize())
        except (NotImplementedError, OSError, EOFError):  # qsize is not available on every platform
            continue
    return depths


class Workers(Protocol):
    """The inference workers as the routes see them."""

    async def answer(self, api_path: str, payload: Any, alive: Callable[[], bool] | None = None) -> Any:
        """One request to a non-streaming endpoint: the worker's answer; HTTPException for its error, or 503 once
        `alive()` says the worker died."""

    def pieces(
        self,
        api_path: str,
        uid: str,
        payload: Any,
        alive: Callable[[], bool] | None = None,
        gone: Probe | None = None,
        abandoned: Callable[[], None] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """One request to a streaming endpoint, piece by piece; ClientGone once `gone()`; `abandoned()` when left
        before the end."""

    def queue_depths(self) -> dict[str, int]:
        """Requests waiting in each endpoint's worker queue."""


class LitServeWorkers:
    """`Workers` for the LitServer `server`, in whichever HTTP process runs the routes."""

    def __init__(self, server: ls.LitServer) -> None:
        self.server = server

    async def answer(self, api_path: str, payload: Any, alive: Callable[[], bool] | None = None) -> Any:
        return await answer(self.server, api_path, payload, alive)

    def pieces(
        self,
        api_path: str,
        uid: str,
        payload: Any,
        alive: Callable[[], bool] | None = None,
        gone: Probe | None = None,
        abandoned: Callable[[], None] | None = None,
    ) -> AsyncGenerator[Any, None]:
        return pieces(self.server, api_path, uid, payload, alive, gone, abandoned)

    def queue_depths(self) -> dict[str, int]:
        return _queue_depths(self.server)
