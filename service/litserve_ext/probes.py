"""What the probes need to see of LitServe: whether an HTTP process still reads the workers' answers, and LitServe's
own /health handler (readiness: every worker has set up)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import litserve as ls
from fastapi.routing import APIRoute

ANSWER_READER = "response_queue_to_buffer"  # the name LitServe gives an HTTP process's task that reads the answers


def answer_reader_running() -> bool:
    """Whether this HTTP process still reads the workers' answers. LitServe's reader task ends on its first error;
    after that every inference request to the process waits until its client gives up, while the port still
    answers. Call inside the process's event loop."""
    return any(task.get_name().startswith(ANSWER_READER) and not task.done() for task in asyncio.all_tasks())


def take_health_route(server: ls.LitServer) -> Callable[[Any], Awaitable[Any]]:
    """Remove LitServe's GET /health route and return its handler (503 until every worker is set up, then 200 "ok"),
    for routes of our own to answer with."""
    route = next(
        r
        for r in server.app.router.routes
        if isinstance(r, APIRoute) and r.path == server.healthcheck_path and "GET" in (r.methods or ())
    )
    server.app.router.routes.remove(route)
    handler: Callable[[Any], Awaitable[Any]] = route.endpoint
    return handler
