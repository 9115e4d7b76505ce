"""Bounded load over loopback on the session server: 480 mixed requests at concurrency 24 on all three endpoints
(single and batched /sentiment, /ner text and tokens, seeded and greedy /generate, streams read to the end, and
streams whose client disconnects after the first event). Zero errors, and every answer equal to the answer the
same request gets alone (floats to 1e-5: padded batch shapes may round differently)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.service.serving import Server
from tests.service.test_batching import SENTENCES, same_answer

TOTAL = 480
CONCURRENCY = 24

Request = tuple[str, str, dict[str, Any]]  # kind, path, body


def distinct_requests() -> list[Request]:
    work: list[Request] = []
    for i, s in enumerate(SENTENCES):
        work.append(("json", "/sentiment", {"text": s}))
        work.append(("json", "/ner", {"text": s}))
        work.append(("json", "/generate", {"prompt": s[:12], "max_new_tokens": 20 + 5 * i, "seed": i}))
    work += [
        ("json", "/sentiment", {"texts": SENTENCES}),
        ("json", "/ner", {"tokens": ["Peter", "Blackburn", "visited", "New", "York"]}),
        ("json", "/generate", {"prompt": "KING:", "max_new_tokens": 40, "temperature": 0}),
        ("json", "/generate", {"max_new_tokens": 30, "top_k": 5, "top_p": 0.9, "seed": 99, "stop": ["\n\n"]}),
        ("stream", "/generate", {"prompt": "ROMEO:", "max_new_tokens": 60, "seed": 7, "stream": True}),
        ("stream", "/generate", {"prompt": "JULIET:", "max_new_tokens": 45, "temperature": 0, "stream": True}),
        ("leave", "/generate", {"prompt": "HAMLET:", "max_new_tokens": 300, "seed": 1, "stream": True}),
    ]
    return work


async def send(client: httpx.AsyncClient, kind: str, path: str, body: dict[str, Any]) -> Any:
    """The answer as JSON; a stream's events joined into the plain answer; a left stream: its first event."""
    if kind == "json":
        r = await client.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = []
        async for line in r.aiter_lines():
            assert not line.startswith("event: error"), line
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if kind == "leave":
                    return {"first": bool(events[0]["text"])}  # the client goes away here
    last = events[-1]
    return {**last, "text": "".join(e["text"] for e in events)}


@pytest.mark.load
def test_mixed_concurrent_load_equals_requests_alone(server: Server) -> None:
    distinct = distinct_requests()
    work = [distinct[i % len(distinct)] for i in range(TOTAL)]

    async def run() -> tuple[list[Any], list[Any], float]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            alone = [await send(client, *request) for request in distinct]
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(request: Request) -> Any:
                async with gate:
                    try:
                        return await send(client, *request)
                    except Exception as err:  # counted below, with the request that failed
                        return err

            started = time.monotonic()
            answers = await asyncio.gather(*(one(r) for r in work))
            return alone, answers, time.monotonic() - started

    alone, answers, seconds = asyncio.run(run())
    expected = [alone[i % len(distinct)] for i in range(TOTAL)]
    for e in expected:  # a plain answer and its streamed twin agree too
        if "finish_reason" in e:
            assert e["finish_reason"] in ("length", "stop")
    errors = [
        (work[i], a) for i, a in enumerate(answers) if isinstance(a, BaseException) or not same_answer(a, expected[i])
    ]
    print(f"\nload: {TOTAL} requests at concurrency {CONCURRENCY} in {seconds:.1f} s, {len(errors)} errors")
    assert not errors, errors[:3]
    assert seconds < 60

    deadline = time.monotonic() + 10  # every request is let go (a left stream's end is noticed a moment later)
    while True:
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        in_flight = [
            line
            for line in metrics.splitlines()
            if line.startswith("rnnserve_requests_in_flight{") and "/metrics" not in line  # not the scrape itself
        ]
        if all(line.endswith(" 0.0") for line in in_flight) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert in_flight and all(line.endswith(" 0.0") for line in in_flight), in_flight
