"""The HTTP side of the three endpoints, replacing the routes LitServe generates; LitServe keeps the rest: worker
processes, request queues, /health and the process lifecycle (with our extensions, `service.litserve_ext`).

Why replace them:
- Limits are settings, so each route validates with request models derived from them (`limited_models`), while
  the workers receive the plain, importable classes (`to_base`).
- LitServe 0.2.19 serves a streaming LitAPI as chunked JSON lines without a content type, and an error inside the
  worker ends that stream as an empty 200. /generate reads the worker's stream with its status flags instead:
  `"stream": false` gets one JSON body; `"stream": true` gets `text/event-stream`, one `data:` event per piece and
  a final event carrying `finish_reason`; a failure before the first piece is an HTTP error, one after it an
  `event: error`. One streaming LitAPI serves both forms, so there is one set of /generate workers.
- LitServe's request handler logs whole requests at debug level; request text is never logged here.
- A client that goes away stops its generation: the route flags the request id in a shared mapping that the
  /generate worker reads (LitServe 0.2.19 has no cancellation of its own).
- A worker that dies fails the requests waiting on it with a 503 instead of leaving them hanging (LitServe 0.2.19
  does not answer them: it shuts the whole server down, see `service.server`).
Requests reach the workers through a `Workers` (`service.litserve_ext.client`).
"""

# No `from __future__ import annotations`: FastAPI must see the request models (local variables) as live objects.
import sys
from collections.abc import Callable
from typing import Any

import litserve as ls
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.litserve_ext.client import Workers
from service.schemas import (
    GeneratePiece,
    GenerateRequest,
    GenerateResponse,
    NerRequest,
    NerResponse,
    RequestModels,
    SentimentBatchResponse,
    SentimentRequest,
    SentimentResponse,
    to_base,
)
from service.status import WorkerStatus
from service.tasks import ENDPOINTS
from service.web.errors import error_body, protocol_of
from service.web.generations import Cancellations, Generations, event_stream, sse


def remove_route(app: FastAPI, path: str, method: str) -> None:
    app.router.routes = [
        r for r in app.router.routes if not (isinstance(r, APIRoute) and r.path == path and method in (r.methods or ()))
    ]


def _piece_json(piece: GeneratePiece) -> list[str]:
    return [piece.model_dump_json(exclude_none=True)]


def json_answer(body: bytes) -> Response:
    """The /sentiment and /ner workers answer with their response model already serialized to JSON (pydantic's
    `to_json`): a bytes object crosses the pipe instead of pickled models (11 /ner answers: 1.3 ms of pickling
    -> 0.1 ms of JSON), and the route sends it as it is, without FastAPI validating and encoding it again. The
    routes still declare the response models for the OpenAPI document; the service tests check the bodies
    against them."""
    return Response(body, media_type="application/json")


def _json_event(name: str, content: dict[str, Any]) -> dict[str, Any]:
    data = {"type": "string", "contentMediaType": "application/json", "contentSchema": content}
    return {"type": "object", "required": ["data"], "properties": {"event": {"const": name}, "data": data}}


def _component_schema(model: type[GeneratePiece]) -> dict[str, Any]:
    """A model's JSON schema referring to its nested models where the OpenAPI document keeps them."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # GeneratedToken is there already: GenerateResponse uses it
    return schema


# One Server-Sent Event of a /generate stream (the Open API 3.2 reading: `event`, `data`, ...; `data` holds JSON):
# a piece, or an error after the stream started.
SSE_EVENT = {
    "anyOf": [
        _json_event("message", _component_schema(GeneratePiece)),
        _json_event(
            "error",
            {
                "type": "object",
                "required": ["status", "detail"],
                "properties": {"status": {"type": "integer"}, "detail": {"type": "string"}},
            },
        ),
    ]
}


def add_inference_routes(
    app: FastAPI,
    workers: Workers,
    models: RequestModels,
    status: WorkerStatus | None = None,
    cancellations: Cancellations | None = None,
) -> None:
    """The three POST routes. With `status` (the workers' reports), a request whose worker died gets a 503; with
    `cancellations`, a /generate whose client went away is stopped in the worker."""
    for path in ENDPOINTS.values():
        remove_route(app, path, "POST")
    generate_model, sentiment_model, ner_model = models.generate, models.sentiment, models.ner
    generations = Generations(workers, status, cancellations)
    alive = generations.alive

    async def generate(request: generate_model, http: Request) -> Response:  # type: ignore[valid-type]
        started = await generations.begin(to_base(request, GenerateRequest), http)
        if started is None:
            return Response(status_code=499)
        first, pieces = started
        if not request.stream:  # type: ignore[attr-defined]
            await pieces.aclose()
            return JSONResponse(GenerateResponse(**first.model_dump()).model_dump(exclude_none=True))
        return event_stream(sse(first, pieces, _piece_json, lambda e: {"status": e.status_code, "detail": e.detail}))

    async def sentiment(request: sentiment_model) -> Response:  # type: ignore[valid-type]
        return json_answer(await workers.answer("/sentiment", to_base(request, SentimentRequest), alive("sentiment")))

    async def ner(request: ner_model) -> Response:  # type: ignore[valid-type]
        return json_answer(await workers.answer("/ner", to_base(request, NerRequest), alive("ner")))

    app.add_api_route(
        "/generate",
        generate,
        methods=["POST"],
        response_model=GenerateResponse,
        summary="Continue a prompt character by character (JSON, or Server-Sent Events with stream=true)",
        responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}},
    )
    app.add_api_route(
        "/sentiment",
        sentiment,
        methods=["POST"],
        response_model=SentimentResponse | SentimentBatchResponse,
        summary="Sentiment of one text (`text`) or of several (`texts`)",
    )
    app.add_api_route(
        "/ner", ner, methods=["POST"], response_model=NerResponse, summary="Named entities in `text` or `tokens`"
    )


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


def add_error_handlers(app: FastAPI) -> None:
    """Errors in the shape of the protocol the request came in (`service.web.errors`). 422 bodies name the field
    (`loc`) and say what is allowed (`msg`), without echoing the input back: an echo could not hold NaN (FastAPI's
    default then fails with a 500) and would repeat user text. OpenAI's clients expect 400 for a bad parameter."""

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]
        path = request.url.path
        status = 400 if protocol_of(path) == "openai" else 422
        param = next((str(p) for e in detail for p in reversed(e["loc"]) if isinstance(p, str) and p != "body"), None)
        return JSONResponse(error_body(path, status, detail, param), status_code=status)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        body = error_body(request.url.path, exc.status_code, exc.detail)
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
