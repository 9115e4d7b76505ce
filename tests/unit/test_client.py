"""service.litserve_ext.client, the HTTP side of the protocol, against a stand-in for the parts of a LitServer it
uses (the request queues, the response buffer that LitServe's reader fills, the app's response queue id): each
request is answered with scripted worker messages, or never (a worker that died)."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from litserve.utils import ResponseBufferItem

from service.litserve_ext import client
from service.litserve_ext.client import ClientGone, LitServeWorkers
from service.litserve_ext.protocol import END, ERROR, OK, Job
from service.status import workers_alive

Message = tuple[Any, str]


@dataclass
class ScriptedQueue:
    """Stands in for a worker: answers each request with the next scripted list of messages."""

    server: FakeServer
    streaming: bool
    jobs: list[Job] = field(default_factory=list)

    def put(self, item: tuple[int, str, float, Any]) -> None:
        job = Job.from_item(item)
        assert job is not None
        self.jobs.append(job)
        buffered: ResponseBufferItem = self.server.response_buffer[job.uid]
        messages = self.server.script.pop(0)
        if messages is None:  # a worker that never answers (it died)
            return
        if self.streaming:
            assert buffered.response_queue is not None
            buffered.response_queue.extend(messages)
        else:
            buffered.response = messages[0]
        buffered.event.set()

    def qsize(self) -> int:
        return len(self.jobs)


class FakeServer:
    def __init__(self) -> None:
        self.app = FastAPI()
        self.app.response_queue_id = 3  # type: ignore[attr-defined]
        self.response_buffer: dict[str, ResponseBufferItem] = {}
        self.script: list[list[Message] | None] = []
        self.litapi_request_queues = {"/generate": ScriptedQueue(self, True), "/sentiment": ScriptedQueue(self, False)}


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def workers(server: FakeServer) -> LitServeWorkers:
    return LitServeWorkers(server)  # type: ignore[arg-type]


async def collect(server: FakeServer, **options: Any) -> list[Any]:
    return [data async for data in workers(server).pieces("/generate", "uid-1", "request", **options)]


def test_an_answer_comes_back_and_leaves_the_buffer_clean(server: FakeServer) -> None:
    server.script.append([(b'{"label": "positive"}', OK)])
    assert asyncio.run(workers(server).answer("/sentiment", "request")) == b'{"label": "positive"}'
    (job,) = server.litapi_request_queues["/sentiment"].jobs
    assert (job.reply_to, job.request) == (3, "request")  # the answer goes to this HTTP process's pipe
    assert server.response_buffer == {}


def test_worker_errors_become_http_errors_without_their_text(server: FakeServer) -> None:
    server.script.append([(pickle.dumps(KeyError("secret text")), ERROR)])
    with pytest.raises(HTTPException) as err:
        asyncio.run(workers(server).answer("/sentiment", "request"))
    assert err.value.status_code == 500 and "secret" not in str(err.value.detail)
    server.script.append([(HTTPException(422, "bad text"), ERROR)])
    with pytest.raises(HTTPException) as err:
        asyncio.run(workers(server).answer("/sentiment", "request"))
    assert (err.value.status_code, err.value.detail) == (422, "bad text")
    assert server.response_buffer == {}


def test_pieces_until_the_end_of_the_stream(server: FakeServer) -> None:
    server.script.append([("a", OK), ("b", OK), ("", END), ("after the end", OK)])
    abandoned: list[bool] = []
    assert asyncio.run(collect(server, abandoned=lambda: abandoned.append(True))) == ["a", "b"]
    assert abandoned == [] and server.response_buffer == {}


def test_an_error_mid_stream_raises_after_the_pieces_before_it(server: FakeServer) -> None:
    server.script.append([("a", OK), (pickle.dumps(RuntimeError("boom")), ERROR)])
    received: list[Any] = []

    async def scenario() -> None:
        async for data in workers(server).pieces("/generate", "uid-1", "request"):
            received.append(data)

    with pytest.raises(HTTPException) as err:
        asyncio.run(scenario())
    assert received == ["a"] and err.value.status_code == 500


def test_a_stream_left_before_its_end_is_reported_abandoned(server: FakeServer) -> None:
    server.script.append([("a", OK), ("b", OK)])
    abandoned: list[bool] = []

    async def leave() -> None:
        pieces = workers(server).pieces("/generate", "uid-1", "request", abandoned=lambda: abandoned.append(True))
        assert await anext(pieces) == "a"
        await pieces.aclose()

    asyncio.run(leave())
    assert abandoned == [True] and server.response_buffer == {}


def test_a_dead_worker_fails_the_requests_waiting_on_it(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "POLL_SECONDS", 0.02)
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process now
    status = {"sentiment:1": {"pid": gone.pid}, "ner:1": {"pid": os.getpid()}}
    server.script.extend([None, None])
    with pytest.raises(HTTPException) as err:
        asyncio.run(workers(server).answer("/sentiment", "request", lambda: workers_alive(status, "sentiment")))
    assert err.value.status_code == 503 and err.value.headers == {"Retry-After": "5"}
    assert err.value.detail == "the /sentiment model worker stopped; the server restarts: retry"
    with pytest.raises(HTTPException):
        asyncio.run(collect(server, alive=lambda: workers_alive(status, "sentiment")))
    assert server.response_buffer == {}


def test_a_client_that_went_away_ends_the_wait(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "POLL_SECONDS", 0.02)
    server.script.append(None)

    async def gone() -> bool:
        return True

    with pytest.raises(ClientGone):
        asyncio.run(collect(server, gone=gone, abandoned=lambda: None))


def test_queue_depths(server: FakeServer) -> None:
    server.script.append([(b"{}", OK)])
    asyncio.run(workers(server).answer("/sentiment", "request"))
    assert workers(server).queue_depths() == {"/generate": 0, "/sentiment": 1}
