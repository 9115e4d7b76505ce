"""service.litserve_ext.BlockingBatchedLoop: sleeps while idle, batches what is queued, honours the batch window, fails
a bad request alone."""

from __future__ import annotations

import pickle
import threading
import time
from queue import Queue
from typing import Any

from fastapi import HTTPException

from service.litserve_ext import BlockingBatchedLoop
from service.litserve_ext.protocol import ERROR, OK, STOP, WORKER_STAMPS, Job, Outbox, Timed


class FakeAPI:
    def __init__(self, max_batch_size: int = 4, batch_timeout: float = 0.0, request_timeout: float = 30) -> None:
        self.max_batch_size, self.batch_timeout, self.request_timeout = max_batch_size, batch_timeout, request_timeout


class FakeTransport:
    def send(self, item: Any, consumer_id: int) -> None:
        pass


def request(uid: str, age: float = 0.0) -> tuple[int, str, float, str]:
    return (0, uid, time.monotonic() - age, f"body-{uid}")


class Collected:
    def __init__(self) -> None:
        self.sent: dict[str, tuple[Any, Any]] = {}

    def send(self, item: Any, consumer_id: int) -> None:
        uid, (data, status, _, _) = item
        self.sent[uid] = (data, status)


def collect(api: FakeAPI, queue: Queue[Any], transport: Any = None) -> list[Job] | None:
    loop = BlockingBatchedLoop()
    loop.idle_wait = 0.05
    return loop.collect(api, queue, Outbox(loop, transport or FakeTransport(), streaming=False))  # type: ignore[arg-type]


def uids(jobs: list[Job] | None) -> list[str]:
    assert jobs is not None
    return [job.uid for job in jobs]


def test_idle_queue_returns_nothing_after_one_blocking_wait() -> None:
    start = time.monotonic()
    assert collect(FakeAPI(), Queue()) == []
    assert 0.04 < time.monotonic() - start < 1.0


def test_takes_what_is_queued_up_to_max_batch_size() -> None:
    queue: Queue[Any] = Queue()
    for i in range(6):
        queue.put(request(str(i)))
    jobs = collect(FakeAPI(max_batch_size=4), queue)
    assert uids(jobs) == ["0", "1", "2", "3"]
    assert jobs is not None and (jobs[0].reply_to, jobs[0].request) == (0, "body-0") and queue.qsize() == 2


def test_batch_window_waits_for_late_requests() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("early"))
    threading.Timer(0.02, lambda: queue.put(request("late"))).start()
    assert uids(collect(FakeAPI(batch_timeout=0.3), queue)) == ["early", "late"]


def test_without_a_window_late_requests_wait_for_the_next_batch() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("early"))
    threading.Timer(0.05, lambda: queue.put(request("late"))).start()
    assert uids(collect(FakeAPI(batch_timeout=0.0), queue)) == ["early"]


def test_requests_that_waited_too_long_get_504_and_the_sentinel_stops() -> None:
    queue: Queue[Any] = Queue()
    queue.put(request("old", age=60))
    queue.put(request("new"))
    transport = Collected()
    assert uids(collect(FakeAPI(request_timeout=30), queue, transport)) == ["new"]
    data, status = transport.sent["old"]
    assert status == ERROR and data.status_code == 504
    queue.put(STOP)
    assert collect(FakeAPI(), queue) is None


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
    outbox = Outbox(loop, transport, streaming=False)  # type: ignore[arg-type]

    def jobs(*pairs: tuple[str, str]) -> list[Job]:
        return [Job.new(0, uid, body) for uid, body in pairs]

    loop.serve(api, outbox, jobs(("a", "1"), ("b", "bad"), ("c", "3")))
    assert transport.sent["a"] == ({"value": 2}, OK)
    assert transport.sent["c"] == ({"value": 6}, OK)
    data, status = transport.sent["b"]
    assert status == ERROR and data.status_code == 422
    api.broken = True
    loop.serve(api, outbox, jobs(("d", "1"), ("e", "2")))
    for uid in ("d", "e"):
        data, status = transport.sent[uid]
        assert status == ERROR and isinstance(pickle.loads(data), RuntimeError)


class PickyEncoder(DoublingAPI):
    def encode_response(self, output: int) -> dict[str, int]:
        if output == 4:
            raise ValueError("cannot encode 4")
        return {"value": output}


def test_an_answer_that_fails_to_encode_fails_alone_and_answers_leave_in_order() -> None:
    transport, loop = Collected(), BlockingBatchedLoop()
    outbox = Outbox(loop, transport, streaming=False)  # type: ignore[arg-type]
    loop.serve(PickyEncoder(), outbox, [Job.new(0, uid, body) for uid, body in (("a", "1"), ("b", "2"), ("c", "3"))])
    assert list(transport.sent) == ["a", "b", "c"]  # first in, first out
    assert transport.sent["a"] == ({"value": 2}, OK) and transport.sent["c"] == ({"value": 6}, OK)
    data, status = transport.sent["b"]
    assert status == ERROR and isinstance(pickle.loads(data), ValueError)


def test_with_the_timeline_each_answer_carries_ordered_stamps() -> None:
    transport, loop = Collected(), BlockingBatchedLoop(timeline=True)
    outbox = Outbox(loop, transport, streaming=False)  # type: ignore[arg-type]
    loop.serve(DoublingAPI(), outbox, [Job.new(0, uid, body) for uid, body in (("a", "1"), ("b", "2"))])
    for uid, value in (("a", 2), ("b", 4)):
        timed, status = transport.sent[uid]
        assert status == OK and isinstance(timed, Timed) and timed.data == {"value": value} and timed.batch == 2
        assert list(timed.stamps) == sorted(timed.stamps) and len(timed.stamps) == len(WORKER_STAMPS)
