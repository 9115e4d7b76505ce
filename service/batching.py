"""A batching loop that sleeps while idle.

LitServe 0.2.19's batched loop collects a batch by polling its request queue with 1 ms timeouts, around the
clock: idle, each batched worker and the queue's manager process measured 6-15 % of a core here (2 cores shared
with training). This loop blocks on the queue for the first request, then gathers more until `batch_timeout` or
`max_batch_size`, taking without waiting whatever is already queued. Batches are the same as LitServe's; only
the idle polling is gone.
"""

from __future__ import annotations

import time
from queue import Empty, Queue
from typing import Any

import litserve as ls
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from litserve.loops.simple_loops import BatchedLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType

Payload = tuple[int, str, Any]  # response queue id, request uid, request


class BlockingBatchedLoop(BatchedLoop):  # type: ignore[misc]  # litserve ships no type hints
    idle_wait = 1.0  # seconds per blocking wait; the loop re-checks for shutdown in between

    def get_batch_requests(
        self, lit_api: ls.LitAPI, request_queue: Queue[Any], transport: MessageTransport
    ) -> tuple[list[Payload], list[tuple[int, str]]]:
        payloads: list[Payload] = []
        timed_out: list[tuple[int, str]] = []
        try:
            item = request_queue.get(timeout=self.idle_wait)
        except Empty:
            return payloads, timed_out
        deadline = time.monotonic() + lit_api.batch_timeout
        while True:
            if item == _SENTINEL_VALUE:
                raise _StopLoopError()
            response_queue_id, uid, timestamp, request = item
            self.put_response(transport, response_queue_id, uid, (), LitAPIStatus.START, LoopResponseType.REGULAR)
            waited = time.monotonic() - timestamp
            if lit_api.request_timeout not in (-1, False, None) and waited > lit_api.request_timeout:
                timed_out.append((response_queue_id, uid))
            else:
                payloads.append((response_queue_id, uid, request))
            if len(payloads) + len(timed_out) >= lit_api.max_batch_size:
                break
            remaining = deadline - time.monotonic()
            try:
                item = request_queue.get(timeout=remaining) if remaining > 0 else request_queue.get_nowait()
            except Empty:
                break
        return payloads, timed_out
