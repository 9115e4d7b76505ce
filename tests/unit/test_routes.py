"""service.web.routes without worker processes: the workers are a scripted stand-in for `Workers`, so the error
paths (which a healthy model never takes) are tested over the real FastAPI routes. What the real `Workers` does
with LitServe's queues and buffer is tested in test_client.py."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from service.limits import Limits
from service.litserve_ext.client import Probe
from service.litserve_ext.protocol import error_from
from service.schemas import (
    GeneratePiece,
    GenerateRequest,
    SentimentRequest,
    SentimentResponse,
    limited_models,
)
from service.web import generations
from service.web.routes import add_error_handlers, add_inference_routes

MODEL_FAILED = error_from(pickle.dumps(RuntimeError("boom")))  # what a worker's unexpected error becomes


def piece(text: str, finish: str | None = None) -> str:
    final = {"finish_reason": finish, "generated_tokens": 3, "model": "m@1"} if finish else {}
    return GeneratePiece(text=text, **final).model_dump_json() + "\n"  # type: ignore[arg-type]


class FakeWorkers:
    """Answers each request with the next scripted list of messages; an exception in it is raised where the real
    `Workers` raises the worker's error."""

    def __init__(self) -> None:
        self.script: list[list[Any]] = []
        self.payloads: dict[str, list[Any]] = defaultdict(list)
        self.alive: dict[str, Callable[[], bool] | None] = {}

    async def answer(self, api_path: str, payload: Any, alive: Callable[[], bool] | None = None) -> Any:
        self.payloads[api_path].append(payload)
        self.alive[api_path] = alive
        (message,) = self.script.pop(0)
        if isinstance(message, Exception):
            raise message
        return message

    async def pieces(
        self,
        api_path: str,
        uid: str,
        payload: Any,
        alive: Callable[[], bool] | None = None,
        gone: Probe | None = None,
        abandoned: Callable[[], None] | None = None,
    ) -> AsyncGenerator[Any, None]:
        self.payloads[api_path].append(payload)
        self.alive[api_path] = alive
        finished = False
        try:
            for message in self.script.pop(0):
                if isinstance(message, Exception):
                    finished = True
                    raise message
                yield message
            finished = True
        finally:
            if not finished and abandoned is not None:
                abandoned()

    def queue_depths(self) -> dict[str, int]:
        return {}


def app_with(workers: FakeWorkers, **options: Any) -> FastAPI:
    app = FastAPI()
    add_inference_routes(app, workers, limited_models(Limits(max_new_tokens=10)), **options)
    add_error_handlers(app)
    return app


@pytest.fixture
def fake() -> Iterator[tuple[FakeWorkers, TestClient]]:
    workers = FakeWorkers()
    with TestClient(app_with(workers)) as client:
        yield workers, client


def test_streamed_pieces_become_server_sent_events(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    workers.script.append([piece("ab"), piece("c", "length")])
    r = client.post("/generate", json={"prompt": "x", "max_new_tokens": 3, "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.split("\n\n")[:2] == [
        'data: {"text":"ab"}',
        'data: {"text":"c","finish_reason":"length","generated_tokens":3,"model":"m@1"}',
    ]
    assert type(workers.payloads["/generate"][0]).__module__ == "service.schemas"  # the plain, importable class


def test_error_after_the_first_piece_is_an_error_event(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    workers.script.append([piece("ab"), MODEL_FAILED])
    r = client.post("/generate", json={"prompt": "x", "stream": True})
    assert r.status_code == 200
    assert r.text.endswith('event: error\ndata: {"status": 500, "detail": "the model failed on this request (see the '
                           'server log)"}\n\n')  # fmt: skip
    assert "boom" not in r.text


def test_error_before_the_first_piece_is_an_http_error(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    workers.script.append([HTTPException(504, "Request timed out")])
    r = client.post("/generate", json={"prompt": "x", "stream": True})
    assert r.status_code == 504 and r.json() == {"detail": "Request timed out"}
    workers.script.append([MODEL_FAILED])
    assert client.post("/generate", json={"prompt": "x"}).status_code == 500


def test_plain_generate_is_one_json_body(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    workers.script.append([piece("abc", "stop")])
    r = client.post("/generate", json={"prompt": "x"})
    assert r.json() == {"text": "abc", "finish_reason": "stop", "generated_tokens": 3, "model": "m@1"}


def test_regular_routes_pass_the_worker_answer_or_its_error(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    answer = SentimentResponse(label="positive", score=0.9, scores={"negative": 0.1, "positive": 0.9}, model="m@1")
    workers.script.append([answer.model_dump_json().encode()])  # workers answer in JSON
    r = client.post("/sentiment", json={"text": "good"})
    assert r.headers["content-type"] == "application/json" and r.json() == answer.model_dump()
    assert type(workers.payloads["/sentiment"][0]) is SentimentRequest
    workers.script.append([error_from(pickle.dumps(KeyError("secret text")))])
    r = client.post("/ner", json={"text": "EU"})
    assert r.status_code == 500 and "secret text" not in r.text


def test_configured_limit_and_validation_errors_without_echo(fake: tuple[FakeWorkers, TestClient]) -> None:
    _, client = fake
    r = client.post("/generate", json={"prompt": "private words", "max_new_tokens": 11})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "max_new_tokens"] and "private words" not in r.text


def test_each_route_watches_its_own_task_s_workers() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process now
    workers = FakeWorkers()
    status = {"sentiment:1": {"pid": gone.pid}, "charlm:1": {"pid": gone.pid}, "ner:1": {"pid": os.getpid()}}
    with TestClient(app_with(workers, status=status)) as client:
        workers.script.extend([[b"{}"], [b"{}"], [piece("a", "length")]])
        client.post("/sentiment", json={"text": "good"})
        client.post("/ner", json={"text": "EU"})
        client.post("/generate", json={"prompt": "x"})
    alive = {path: check() for path, check in workers.alive.items() if check is not None}
    assert alive == {"/sentiment": False, "/ner": True, "/generate": False}


def test_a_stream_left_before_its_end_flags_the_request_for_the_worker() -> None:
    workers = FakeWorkers()
    flags: dict[str, float] = {}

    async def leave_after_first_piece() -> None:
        workers.script.append([piece("ab"), piece("cd")])
        pieces = generations.generate_pieces(workers, GenerateRequest(), cancellations=flags)
        assert (await anext(pieces)).text == "ab"
        await pieces.aclose()  # what Starlette does when the client disconnects
        workers.script.append([piece("ab", "length")])
        finished = generations.generate_pieces(workers, GenerateRequest(), cancellations=flags)
        assert [p.text async for p in finished] == ["ab"]

    asyncio.run(leave_after_first_piece())
    payloads = workers.payloads["/generate"]
    assert list(flags) == [payloads[0]._request_id]  # only the abandoned one
    assert payloads[1]._request_id not in flags


def test_the_documented_stream_events_match_the_events_sent(fake: tuple[FakeWorkers, TestClient]) -> None:
    workers, client = fake
    spec = client.get("/openapi.json").json()
    documented = spec["paths"]["/generate"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    workers.script.append([piece("ab"), piece("c", "length")])
    workers.script.append([piece("ab"), MODEL_FAILED])
    sent = [client.post("/generate", json={"prompt": "x", "stream": True}).text for _ in range(2)]
    events = []
    for block in "".join(sent).split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append({"event": fields.get("event", "message"), "data": fields["data"]})
    assert [e["event"] for e in events] == ["message", "message", "message", "error"]
    for event in events:  # the event, and the JSON in its `data` against the branch for its name
        jsonschema.validate(event, documented)
        (branch,) = [b for b in documented["anyOf"] if b["properties"]["event"]["const"] == event["event"]]
        jsonschema.validate(json.loads(event["data"]), branch["properties"]["data"]["contentSchema"])
