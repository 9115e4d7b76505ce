"""Dynamic batching over HTTP: concurrent requests share model calls (GET /metrics shows calls that merged several
requests), and 16 concurrent requests get the answers the same requests get one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.serving import Server

SENTENCES = [
    "a gripping, funny film",
    "bad",
    "the plot is thin and the acting is worse , but the music is wonderful",
    "not good",
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn",
    "😀",
    "It was the best of times, it was the worst of times.",
]


def requests() -> list[tuple[str, dict[str, Any]]]:
    sentiment = [("/sentiment", {"text": s}) for s in SENTENCES] + [("/sentiment", {"texts": SENTENCES[:3]})]
    ner = [("/ner", {"text": s}) for s in SENTENCES[:6]] + [("/ner", {"tokens": ["Japan", "beat", "Syria"]})]
    return sentiment + ner


def same_answer(a: Any, b: Any) -> bool:
    """Equal structure and strings; floats equal to 1e-5 (padded batch shapes may round differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_answer(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_answer(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, abs=1e-5)
    return bool(a == b)


def test_concurrent_requests_equal_sequential(server: Server, client: httpx.Client) -> None:
    work = requests() * 1
    alone = [client.post(path, json=body).json() for path, body in work]

    async def together() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            responses = await asyncio.gather(*(c.post(path, json=body) for path, body in work))
        assert all(r.status_code == 200 for r in responses)
        return [r.json() for r in responses]

    for concurrent in (asyncio.run(together()), asyncio.run(together())):
        for a, b in zip(concurrent, alone, strict=True):
            assert same_answer(a, b), (a, b)


def test_large_answers_at_once_arrive_whole(server: Server, client: httpx.Client) -> None:
    """/ner answers at the token limit are tens of kilobytes: written to an HTTP process's answer pipe in pieces,
    many at once, each must come back whole (a reader that met half an answer once stopped a process's answers)."""
    body = {"text": " ".join(["Peter", "Blackburn", "flew", "to", "Paris", "for", "the", "EU"] * 64)}  # 512 tokens
    first = client.post("/ner", json=body)
    assert first.status_code == 200 and len(first.content) > 32_768, len(first.content)

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            return await asyncio.gather(*(c.post("/ner", json=body) for _ in range(24)))

    for responses in (asyncio.run(together()), asyncio.run(together())):
        assert [r.status_code for r in responses] == [200] * len(responses)
        for r in responses:
            assert same_answer(r.json(), first.json())


def batch_calls(url: str, endpoint: str) -> tuple[float, float, float]:
    """(model calls, calls that served one request, requests served) so far, from the batch-size histogram."""
    values = {"count": 0.0, "single": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text):
        for s in family.samples:
            if s.labels.get("endpoint") != endpoint or not s.name.startswith("rnnserve_batch_requests"):
                continue
            if s.name.endswith("_count"):
                values["count"] = s.value
            elif s.name.endswith("_sum"):
                values["sum"] = s.value
            elif s.name.endswith("_bucket") and float(s.labels["le"]) == 1.0:
                values["single"] = s.value
    return values["count"], values["single"], values["sum"]


@pytest.mark.parametrize(("endpoint", "body"), [("/sentiment", {"text": "a fine film"}), ("/ner", {"text": "EU"})])
def test_concurrent_requests_share_model_calls(server: Server, endpoint: str, body: dict[str, Any]) -> None:
    """Waves of 16 concurrent requests until one model call has merged several of them (with the default batch
    timeout 0 a call takes what is queued, so merging needs requests to arrive while the worker is busy: the first
    wave nearly always does it). Every request went into exactly one call."""
    before = batch_calls(server.url, endpoint)

    async def wave() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            responses = await asyncio.gather(*(c.post(endpoint, json=body) for _ in range(16)))
        assert [r.status_code for r in responses] == [200] * 16

    waves, calls, single, served = 0, 0.0, 0.0, 0.0
    while waves < 10 and calls <= single:
        asyncio.run(wave())
        waves += 1
        calls, single, served = (a - b for a, b in zip(batch_calls(server.url, endpoint), before, strict=True))
    assert calls > single, f"{waves} waves of 16 concurrent requests: every one of {calls:.0f} calls served one"
    assert served == 16 * waves and calls < served
