"""service.web.guard's bound on inference requests in flight, over ASGI without a server."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from service.web.guard import GuardMiddleware


async def _post(guard: GuardMiddleware, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    await guard(scope, receive, send)
    return sent


def test_requests_over_the_in_flight_limit_get_503_at_once_and_free_slots_are_reused() -> None:
    release = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = GuardMiddleware(slow, protected=["/sentiment"], api_key=None, max_body_bytes=1024, max_in_flight=2)

    async def scenario() -> None:
        held = [asyncio.create_task(_post(guard, "/sentiment")) for _ in range(2)]
        await asyncio.sleep(0.01)
        refused = await asyncio.wait_for(_post(guard, "/sentiment"), 1)  # answered while the others still wait
        assert refused[0]["status"] == 503 and (b"retry-after", b"1") in refused[0]["headers"]
        assert b"2 requests in flight" in refused[1]["body"]
        other = asyncio.create_task(_post(guard, "/health"))  # not an inference route: never limited
        release.set()
        assert [(await t)[0]["status"] for t in [*held, other]] == [200, 200, 200]
        assert guard.in_flight == 0
        assert (await _post(guard, "/sentiment"))[0]["status"] == 200

    asyncio.run(scenario())


def test_no_limit_when_zero() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = GuardMiddleware(ok, protected=["/ner"], api_key=None, max_body_bytes=1024)

    async def many() -> list[list[Message]]:
        return await asyncio.gather(*(_post(guard, "/ner") for _ in range(50)))

    assert {sent[0]["status"] for sent in asyncio.run(many())} == {200}
