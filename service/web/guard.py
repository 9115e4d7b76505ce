"""An ASGI guard in front of every route: API key on the inference routes (401), a body size limit (413), JSON
only on the inference routes (415 instead of FastAPI's puzzling 422 for form-encoded bodies), and a bound on the
inference requests in flight (503 with Retry-After at once, rather than a queue that grows until requests time out).

LitServe's own `LIT_SERVER_API_KEY` also guards /health, which breaks orchestrator probes, so it is not used.

`protected` names the inference routes: a path (`/sentiment`, any method) or a method and a path (`POST /`: GET /
is the page, open to all). Error bodies take the shape of the route's protocol (`service.web.errors`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.errors import error_body


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        protected: Iterable[str],
        api_key: str | None,
        max_body_bytes: int,
        max_in_flight: int = 0,
    ) -> None:
        self.app = app
        self.protected = frozenset(protected)  # "/path" (any method) or "METHOD /path"
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight  # 0: no limit
        self.in_flight = 0  # inference requests this process is holding (one event loop: no lock needed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        protected = self._protects(scope)
        if self.api_key is not None and protected and not self._authorized(headers):
            await _reply(
                scope,
                send,
                401,
                "missing or wrong API key: send it as `X-API-Key` or `Authorization: Bearer`",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(scope, send, 413, f"request body is larger than {self.max_body_bytes} bytes")
            return
        if not protected:
            await self._guard_body(scope, receive, send, headers)
            return
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            await _reply(
                scope,
                send,
                503,
                f"overloaded: {self.max_in_flight} requests in flight; retry shortly",
                [(b"retry-after", b"1")],
            )
            return
        self.in_flight += 1
        try:
            await self._guard_body(scope, receive, send, headers)
        finally:
            self.in_flight -= 1

    async def _guard_body(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, bytes]) -> None:
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        media_type = headers.get("content-type", b"application/json").split(b";")[0].strip().lower()
        if self._protects(scope) and media_type not in (b"application/json", b""):
            await _reply(scope, send, 415, "send the body as JSON with `Content-Type: application/json`")
            return
        body, more = b"", True
        while more:  # chunked bodies carry no length: count while reading
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _reply(scope, send, 413, f"request body is larger than {self.max_body_bytes} bytes")
                return
        await self.app(scope, _replay(body, receive), send)

    def _protects(self, scope: Scope) -> bool:
        path = scope["path"]
        return path in self.protected or f"{scope['method']} {path}" in self.protected

    def _authorized(self, headers: dict[str, bytes]) -> bool:
        assert self.api_key is not None
        offered = headers.get("x-api-key")
        if offered is None:
            scheme, _, token = headers.get("authorization", b"").partition(b" ")
            offered = token.strip() if scheme.lower() == b"bearer" else b""
        return hmac.compare_digest(offered, self.api_key)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(
    scope: Scope, send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(error_body(scope["path"], status, detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
