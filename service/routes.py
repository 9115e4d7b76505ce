"""Routes that replace LitServe's defaults: POST /generate (JSON or Server-Sent Events) and GET /info.

Why /generate is replaced: LitServe 0.2.19 serves a streaming LitAPI as chunked JSON lines without a content
type, and an error inside the worker ends that stream as an empty 200. Our route keeps LitServe's worker queue
(the request goes to the same queue and worker processes, pieces come back through the same response buffer)
but reads the stream with its status flags, so that it can:
- answer `"stream": false` with one JSON body, and a worker error with a real HTTP status;
- answer `"stream": true` with `text/event-stream`: one `data:` event per piece, a final event carrying
  `finish_reason`; a failure before the first piece is an HTTP error, a failure after it an `event: error`.
This relies on LitServer internals (`litapi_request_queues`, `response_buffer`, `data_streamer`), which is why
litserve is pinned to 0.2.19.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import litserve as ls
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from litserve.utils import LitAPIStatus, ResponseBufferItem

from service.schemas import GeneratePiece, GenerateRequest, GenerateResponse
from service.workers import WorkerStatus


def remove_route(app: FastAPI, path: str, method: str) -> None:
    app.router.routes = [
        r for r in app.router.routes if not (isinstance(r, APIRoute) and r.path == path and method in (r.methods or ()))
    ]


async def worker_pieces(server: ls.LitServer, api_path: str, payload: Any) -> AsyncGenerator[GeneratePiece, None]:
    """Send one request to the LitAPI's worker queue and yield its pieces; a worker error raises HTTPException."""
    uid, event, pieces = str(uuid.uuid4()), asyncio.Event(), deque()  # type: ignore[var-annotated]
    server.response_buffer[uid] = ResponseBufferItem(event=event, response_queue=pieces)
    try:
        queue = server.litapi_request_queues[api_path]
        queue.put((server.app.response_queue_id, uid, time.monotonic(), payload))
        async for data, status in server.data_streamer(pieces, event, send_status=True):
            if status == LitAPIStatus.ERROR:
                raise _as_http_error(data)
            yield GeneratePiece.model_validate_json(data)
    finally:
        server.response_buffer.pop(uid, None)


def _as_http_error(data: Any) -> HTTPException:
    if isinstance(data, bytes):  # LitServe pickles worker exceptions; these bytes come from our own workers
        try:
            data = pickle.loads(data)
        except Exception:
            data = None
    status = getattr(data, "status_code", None)
    if isinstance(status, int):
        return HTTPException(status, str(getattr(data, "detail", "")))
    return HTTPException(500, "generation failed (see the server log)")


def add_generate_route(server: ls.LitServer, api_path: str) -> None:
    remove_route(server.app, api_path, "POST")

    async def generate(request: GenerateRequest) -> Response:
        pieces = worker_pieces(server, api_path, request)
        first = await anext(pieces)  # errors before the first piece are plain HTTP errors
        if not request.stream:
            await pieces.aclose()
            return JSONResponse(GenerateResponse(**first.model_dump()).model_dump())
        return StreamingResponse(
            _sse(first, pieces), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    server.app.add_api_route(
        api_path,
        generate,
        methods=["POST"],
        response_model=GenerateResponse,
        summary="Generate text (JSON, or Server-Sent Events with stream=true)",
        responses={200: {"content": {"text/event-stream": {"schema": GeneratePiece.model_json_schema()}}}},
    )


async def _sse(first: GeneratePiece, rest: AsyncIterator[GeneratePiece]) -> AsyncIterator[str]:
    yield f"data: {first.model_dump_json(exclude_none=True)}\n\n"
    if first.finish_reason is not None:
        return
    try:
        async for piece in rest:
            yield f"data: {piece.model_dump_json(exclude_none=True)}\n\n"
    except HTTPException as err:
        yield f"event: error\ndata: {json.dumps({'status': err.status_code, 'detail': err.detail})}\n\n"


def add_info_route(server: ls.LitServer, manifests: Callable[[], list[dict[str, Any]]], status: WorkerStatus) -> None:
    """GET /info: each model's manifest facts, and per worker process the providers really in use."""
    remove_route(server.app, server.info_path, "GET")

    async def info() -> dict[str, Any]:
        workers = sorted(dict(status).items())
        return {
            "models": manifests(),
            "workers": [{"id": key, **value} for key, value in workers],
            "server": {"torch_imported": "torch" in sys.modules},
        }

    server.app.add_api_route(server.info_path, info, methods=["GET"], summary="Models, versions, metrics, providers")


def add_validation_handler(app: FastAPI) -> None:
    """422 bodies name the field (`loc`) and say what is allowed (`msg`), without echoing the input back: an echo
    could not hold NaN (FastAPI's default then fails with a 500) and would repeat user text."""

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)
