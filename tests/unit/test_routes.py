"""service.web.routes, through service.litserve_ext.client, without worker processes: a fake LitServer whose queue
answers with scripted worker messages, so the error paths (which a healthy model never takes) are tested over the
real FastAPI routes."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import litserve as ls
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from litserve.utils import ResponseBufferItem

from service.limits import Limits
from service.litserve_ext import client as worker_client
from service.litserve_ext.protocol import END, ERROR, OK
from service.schemas import (
    GeneratePiece,
    GenerateRequest,
    NerResponse,
    SentimentRequest,
    SentimentResponse,
    limited_models,
)
from service.web import routes
from service.web.routes import add_inference_routes, add_validation_handler

Message = tuple[Any, str]


def piece(text: str, finish: str | None = None) -> Message:
    final = {"finish_reason": finish, "generated_tokens": 3, "model": "m@1"} if finish else {}
    return GeneratePiece(text=text, **final).model_dump_json() + "\n", OK  # type: ignore[arg-type]


@dataclass
class ScriptedQueue:
    """Stands in for a worker: answers each request with the next scripted list of messages."""

    server: FakeServer
    streaming: bool
    payloads: list[Any] = field(default_factory=list)

    def put(self, request: tuple[int, str, float, Any]) -> None:
        _, uid, _, payload = request
        self.payloads.append(payload)
        item: ResponseBufferItem = self.server.response_buffer[uid]
        messages = self.server.script.pop(0)
        if messages is None:  # a worker that never answers (it died)
            return
        if self.streaming:
            assert item.response_queue is not None
            item.response_queue.extend([*messages, ("", END)])
        else:
            item.response = messages[0]
        item.event.set()


class FakeServer:
    data_streamer = staticmethod(ls.LitServer.data_streamer)

    def __init__(self) -> None:
        self.app = FastAPI()
        self.app.response_queue_id = 0  # type: ignore[attr-defined]
        self.response_buffer: dict[str, ResponseBufferItem] = {}
        self.script: list[list[Message] | None] = []
        self.litapi_request_queues = {
            "/generate": ScriptedQueue(self, streaming=True),
            "/sentiment": ScriptedQueue(self, streaming=False),
            "/ner": ScriptedQueue(self, streaming=False),
        }
        add_inference_routes(self, limited_models(Limits(max_new_tokens=10)))  # type: ignore[arg-type]
        add_validation_handler(self.app)


@pytest.fixture
def fake() -> Iterator[tuple[FakeServer, TestClient]]:
    server = FakeServer()
    with TestClient(server.app) as client:
        yield server, client


def test_streamed_pieces_become_server_sent_events(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    server.script.append([piece("ab"), piece("c", "length")])
    r = client.post("/generate", json={"prompt": "x", "max_new_tokens": 3, "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.split("\n\n")[:2] == [
        'data: {"text":"ab"}',
        'data: {"text":"c","finish_reason":"length","generated_tokens":3,"model":"m@1"}',
    ]
    assert type(server.litapi_request_queues["/generate"].payloads[0]).__module__ == "service.schemas"
    assert server.response_buffer == {}  # cleaned up


def test_error_after_the_first_piece_is_an_error_event(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    server.script.append([piece("ab"), (pickle.dumps(RuntimeError("boom")), ERROR)])
    r = client.post("/generate", json={"prompt": "x", "stream": True})
    assert r.status_code == 200
    assert r.text.endswith('event: error\ndata: {"status": 500, "detail": "the model failed on this request (see the '
                           'server log)"}\n\n')  # fmt: skip
    assert "boom" not in r.text


def test_error_before_the_first_piece_is_an_http_error(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    server.script.append([(HTTPException(504, "Request timed out"), ERROR)])
    r = client.post("/generate", json={"prompt": "x", "stream": True})
    assert r.status_code == 504 and r.json() == {"detail": "Request timed out"}
    server.script.append([(pickle.dumps(ValueError("x")), ERROR)])
    assert client.post("/generate", json={"prompt": "x"}).status_code == 500


def test_plain_generate_is_one_json_body(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    server.script.append([piece("abc", "stop")])
    r = client.post("/generate", json={"prompt": "x"})
    assert r.json() == {"text": "abc", "finish_reason": "stop", "generated_tokens": 3, "model": "m@1"}


def test_regular_routes_pass_the_worker_answer_or_its_error(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    answer = SentimentResponse(label="positive", score=0.9, scores={"negative": 0.1, "positive": 0.9}, model="m@1")
    server.script.append([(answer.model_dump_json().encode(), OK)])  # workers answer in JSON
    r = client.post("/sentiment", json={"text": "good"})
    assert r.headers["content-type"] == "application/json" and r.json() == answer.model_dump()
    assert type(server.litapi_request_queues["/sentiment"].payloads[0]) is SentimentRequest
    server.script.append([(pickle.dumps(KeyError("secret text")), ERROR)])
    r = client.post("/ner", json={"text": "EU"})
    assert r.status_code == 500 and "secret text" not in r.text


def test_configured_limit_and_validation_errors_without_echo(fake: tuple[FakeServer, TestClient]) -> None:
    _, client = fake
    r = client.post("/generate", json={"prompt": "private words", "max_new_tokens": 11})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "max_new_tokens"] and "private words" not in r.text


def test_a_dead_worker_fails_the_requests_waiting_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_client, "POLL_SECONDS", 0.02)
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process now
    server = FakeServer()
    status = {"sentiment:1": {"pid": gone.pid}, "charlm:1": {"pid": gone.pid}, "ner:1": {"pid": os.getpid()}}
    add_inference_routes(server, limited_models(Limits()), status)  # type: ignore[arg-type]
    with TestClient(server.app) as client:
        server.script.extend([None, None])
        r = client.post("/sentiment", json={"text": "good"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json() == {"detail": "the /sentiment model worker stopped; the server restarts: retry"}
        assert client.post("/generate", json={"prompt": "x", "stream": True}).status_code == 503
        server.script.append(
            [(NerResponse(entities=[], tokens=[], model="m@1").model_dump_json().encode(), OK)]
        )  # a live worker
        assert client.post("/ner", json={"text": "EU"}).status_code == 200
        assert server.response_buffer == {}


def test_a_stream_left_before_its_end_flags_the_request_for_the_worker() -> None:
    server = FakeServer()
    flags: dict[str, float] = {}

    async def leave_after_first_piece() -> None:
        server.script.append([piece("ab"), piece("cd")])
        pieces = routes.generate_pieces(server, GenerateRequest(), cancellations=flags)  # type: ignore[arg-type]
        assert (await anext(pieces)).text == "ab"
        await pieces.aclose()  # what Starlette does when the client disconnects
        server.script.append([piece("ab", "length")])
        finished = routes.generate_pieces(server, GenerateRequest(), cancellations=flags)  # type: ignore[arg-type]
        assert [p.text async for p in finished] == ["ab"]

    asyncio.run(leave_after_first_piece())
    payloads = server.litapi_request_queues["/generate"].payloads
    assert list(flags) == [payloads[0]._request_id]  # only the abandoned one
    assert payloads[1]._request_id not in flags


def test_the_documented_stream_events_match_the_events_sent(fake: tuple[FakeServer, TestClient]) -> None:
    server, client = fake
    spec = client.get("/openapi.json").json()
    documented = spec["paths"]["/generate"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    server.script.append([piece("ab"), piece("c", "length")])
    server.script.append([piece("ab"), (pickle.dumps(RuntimeError("boom")), ERROR)])
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
