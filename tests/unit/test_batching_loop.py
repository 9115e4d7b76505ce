"""service.batching.BlockingBatchedLoop: sleeps while idle, batches what is queued, honours the batch window, fails
a bad request alone."""

from __future__ import annotations

import pickle
import threading
import time
from queue import Queue
from typing import Any

import pytest
from fastapi import HTTPException
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from litserve.utils import LitAPIStatus

from service.batching import BlockingBatchedLoop


class FakeAPI:
    def __init__(self, max_batch_size: int = 4, batch_timeout: float = 0.0, request_timeout: float = 30) -> None:
        self.max_batch_size, self.batch_timeout, self.request_timeout = max_batch_size, batch_timeout, request_timeout


class FakeTransport:
    def send(self, item: Any, consumer_id: int) -> None:
        pass


def request(uid: str, age: float = 0.0) -> tuple[int, str, float, str]:
    return (0, uid, time.monotonic() - age, f"body-{uid}")


def collect(api: FakeAPI, queue: Queue[Any]) -> tuple[list[Any], list[Any]]:
    loop = BlockingBatchedLoop()
    loop.idle_wait = 0.05
    return loop.get_batch_requests(api, queue, FakeTransport())  # type: ignore[no-any-return]


def test_idle_queue_returns_nothing_after_one_blocking_wait() -> None:
    start = time.monotonic()
    assert collect(FakeAPI(), Queue()) == ([], [])
    assert 0.04 < time.monotonic() - start < 1.0


def test_takes_what_is_queued_up_to_max_batch_size() -> None:
    queue: Queue[Any] = Queue()
    for i in range(6):
        queue.put(request(str(i)))
    payloads, timed_out = collect(FakeAPI(max_batch_size=4), queue)
    assert [uid for _, uid, _ in payloads] == ["0", "1", "2", "3"] and timed_out == []
    assert payloads[0] == (0, "0", "body-0") and queue.qsize() == 2


def test_batch_window_waits_for_late_requests() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("early"))
    threading.Timer(0.02, lambda: queue.put(request("late"))).start()
    payloads, _ = collect(FakeAPI(batch_timeout=0.3), queue)
    assert [uid for _, uid, _ in payloads] == ["early", "late"]


def test_without_a_window_late_requests_wait_for_the_next_batch() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("early"))
    threading.Timer(0.05, lambda: queue.put(request("late"))).start()
    payloads, _ = collect(FakeAPI(batch_timeout=0.0), queue)
    assert [uid for _, uid, _ in payloads] == ["early"]


def test_requests_that_waited_too_long_are_reported_and_the_sentinel_stops() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("old", age=60))
    queue.put(request("new"))
    payloads, timed_out = collect(FakeAPI(request_timeout=30), queue)
    assert timed_out == [(0, "old")] and [uid for _, uid, _ in payloads] == ["new"]
    queue.put(_SENTINEL_VALUE)
    with pytest.raises(_StopLoopError):
        collect(FakeAPI(), queue)


class Collected:
    def __init__(self) -> None:
        self.sent: dict[str, tuple[Any, Any]] = {}

    def send(self, item: Any, consumer_id: int) -> None:
        uid, (data, status, _, _) = item
        self.sent[uid] = (data, status)


class DoublingAPI(FakeAPI):
    """decode refuses "bad"; predict doubles; `broken` makes predict raise."""

    broken = False

    def decode_request(self, request: str) -> int:
        if request == "bad":
            raise HTTPException(422, "bad text")
        return int(request)

    def batch(self, inputs: list[int]) -> list[int]:
        return inputs

    def predict(self, batch: list[int]) -> list[int]:
        if self.broken:
            raise RuntimeError("model failed")
        return [2 * x for x in batch]

    def unbatch(self, output: list[int]) -> list[int]:
        return output

    def encode_response(self, output: int) -> dict[str, int]:
        return {"value": output}


def test_a_request_that_fails_to_decode_fails_alone_and_a_failed_predict_fails_its_batch() -> None:
    api, transport, loop = DoublingAPI(), Collected(), BlockingBatchedLoop()
    loop.serve(api, transport, [(0, "a", "1"), (0, "b", "bad"), (0, "c", "3")])  # type: ignore[arg-type]
    assert transport.sent["a"] == ({"value": 2}, LitAPIStatus.OK)
    assert transport.sent["c"] == ({"value": 6}, LitAPIStatus.OK)
    data, status = transport.sent["b"]
    assert status == LitAPIStatus.ERROR and data.status_code == 422
    api.broken = True
    loop.serve(api, transport, [(0, "d", "1"), (0, "e", "2")])  # type: ignore[arg-type]
    for uid in ("d", "e"):
        data, status = transport.sent[uid]
        assert status == LitAPIStatus.ERROR and isinstance(pickle.loads(data), RuntimeError)
