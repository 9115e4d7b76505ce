"""The orchestrator probes: GET /livez (the process answers and reads the workers' answers), GET /readyz and GET
/health (every model loaded and warmed: LitServe's readiness, as text/plain). None needs an API key."""

from __future__ import annotations

from typing import Any

import litserve as ls
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from service.litserve_ext import answer_reader_running, take_health_route


def add_probe_routes(server: ls.LitServer) -> None:
    health = take_health_route(server)

    async def livez() -> JSONResponse:
        if not answer_reader_running():  # a restart is the remedy: exactly what a failing liveness probe brings
            return JSONResponse({"status": "not reading the workers' answers"}, status_code=503)
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        # LitServe's /health, the same answer; as text/plain, which it sends without a content type
        answer = await health(request)
        return PlainTextResponse(bytes(answer.body), status_code=answer.status_code)

    app = server.app
    app.add_api_route(
        "/livez", livez, methods=["GET"], summary="Liveness: the HTTP process answers and reads the workers' answers"
    )
    probe: dict[str, Any] = {
        "methods": ["GET"],
        "response_class": PlainTextResponse,
        "responses": {
            200: {"content": {"text/plain": {"schema": {"type": "string", "const": "ok"}}}},
            503: {"description": "not ready", "content": {"text/plain": {"schema": {"type": "string"}}}},
        },
    }
    app.add_api_route(server.healthcheck_path, readyz, summary="Every model loaded and warmed (LitServe's)", **probe)
    app.add_api_route("/readyz", readyz, summary="Readiness: every model loaded and warmed", **probe)
