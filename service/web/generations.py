"""The one path from every generation route (/generate, OpenAI's /v1/completions, TGI's POST / and
/generate_stream) to the /generate workers: validation at the configured limits (`validated`), the pieces of one
generation (`Generations`), a client that goes away stopping its generation (the cancellation flags), and Server-Sent
Events (`sse`). Each protocol's module only translates its request into a `GenerateRequest` and the pieces into
its own answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, MutableMapping
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from service.litserve_ext import client
from service.litserve_ext.client import ClientGone, Probe, Workers
from service.schemas import GeneratePiece, GenerateRequest
from service.status import WorkerStatus, workers_alive

FLAG_LIFETIME = 600.0  # seconds a cancellation flag the worker never read is kept

Cancellations = MutableMapping[str, float]  # request id -> time the client went away (shared with the workers)


async def generate_pieces(
    workers: Workers,
    request: GenerateRequest,
    alive: Callable[[], bool] | None = None,
    gone: Probe | None = None,
    cancellations: Cancellations | None = None,
) -> AsyncGenerator[GeneratePiece, None]:
    """One /generate request's pieces from the worker. Left before the end (the client went away, the route stopped
    reading), it flags the request id in `cancellations` so that the worker stops generating."""
    uid = client.new_uid()
    request._request_id = uid  # the worker's key into the cancellation flags
    abandoned = None if cancellations is None else lambda: _flag(cancellations, uid)
    async for data in workers.pieces("/generate", uid, request, alive, gone, abandoned):
        yield GeneratePiece.model_validate_json(data)


class Generations:
    """How every generation route (/generate and the OpenAI and TGI ones) reaches the /generate workers: the same
    request gives the same pieces whichever protocol it came in."""

    def __init__(
        self, workers: Workers, status: WorkerStatus | None = None, cancellations: Cancellations | None = None
    ) -> None:
        self.workers, self.status, self.cancellations = workers, status, cancellations

    def alive(self, task: str) -> Callable[[], bool] | None:
        status = self.status
        return None if status is None else lambda: workers_alive(status, task)

    def pieces(self, request: GenerateRequest, http: Request) -> AsyncGenerator[GeneratePiece, None]:
        """`request` (a plain `GenerateRequest`, already validated at the configured limits) piece by piece."""
        return generate_pieces(self.workers, request, self.alive("charlm"), http.is_disconnected, self.cancellations)

    async def begin(
        self, request: GenerateRequest, http: Request
    ) -> tuple[GeneratePiece, AsyncGenerator[GeneratePiece, None]] | None:
        """The first piece and the rest. An error before the first piece raises (a plain HTTP error); None when the
        client went away first (answer 499: nobody reads it, and the worker was told to stop)."""
        pieces = self.pieces(request, http)
        try:
            return await anext(pieces), pieces
        except ClientGone:
            return None


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], fields: dict[str, Any], names: Mapping[str, str]) -> M:
    """`fields` as a request of `model` (one of the limited request models): a compatibility route checks its
    translated request against the same limits as ours. A violation is the error handler's 400 or 422, with the
    field as the client named it (`names`: our field -> theirs)."""
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        errors = [
            {**e, "loc": ("body", *(names.get(str(p), p) for p in e["loc"]))} for e in err.errors(include_input=False)
        ]
        raise RequestValidationError(errors) from None


def _flag(cancellations: Cancellations, uid: str) -> None:
    try:
        cancellations[uid] = time.time()
        # The worker removes a flag it acts on; one set just as the worker finished is removed here, later.
        asyncio.get_running_loop().call_later(FLAG_LIFETIME, lambda: cancellations.pop(uid, None))
    except (OSError, EOFError, RuntimeError):  # the manager is gone: the server is shutting down
        pass


async def sse(
    first: GeneratePiece,
    rest: AsyncIterator[GeneratePiece],
    data: Callable[[GeneratePiece], Iterable[str]],
    error: Callable[[HTTPException], dict[str, Any]],
    done: Iterable[str] = (),
) -> AsyncIterator[str]:
    """A generation as Server-Sent Events, for every protocol: `data(piece)` gives the `data:` payloads of a piece
    (/generate: one; TGI: one per character; OpenAI: a chunk, then the usage chunk), `done` those after the last
    piece (OpenAI's `[DONE]`). An error after the first piece ends the stream with `event: error` and the body
    `error(exception)`; a client that went away ends it silently."""
    for payload in data(first):
        yield f"data: {payload}\n\n"
    if first.finish_reason is None:
        try:
            async for piece in rest:
                for payload in data(piece):
                    yield f"data: {payload}\n\n"
        except ClientGone:
            return
        except HTTPException as err:
            yield f"event: error\ndata: {json.dumps(error(err))}\n\n"
            return
    for payload in done:
        yield f"data: {payload}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
