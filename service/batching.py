"""The /sentiment and /ner workers' loop: dynamic batching that sleeps while idle and fails bad requests alone.

LitServe 0.2.19's batched loop collects a batch by polling its request queue with 1 ms timeouts, around the
clock: idle, each batched worker and the queue's manager process measured 6-15 % of a core here (2 cores shared
with training). This loop blocks on the queue for the first request, then gathers more until `batch_timeout` or
`max_batch_size`, taking without waiting whatever is already queued. Batches are the same as LitServe's.

Serving a batch, LitServe's loop calls every LitAPI method through `_inject_context`, which runs
`inspect.signature` on each call (py-spy under load: 10 % of the sentiment worker's time), and a request whose
`decode_request` raises fails its whole batch. Here the methods are called directly and such a request fails alone.
"""

from __future__ import annotations

import logging
import pickle
import time
from queue import Empty, Queue
from typing import Any

import litserve as ls
from fastapi import HTTPException
from litserve.loops.base import _SENTINEL_VALUE, LitLoop, _StopLoopError
from litserve.loops.simple_loops import BatchedLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType, PickleableHTTPException

logger = logging.getLogger(__name__)

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

    def run_batched_loop(
        self,
        lit_api: ls.LitAPI,
        request_queue: Queue[Any],
        transport: MessageTransport,
        callback_runner: Any,
        lit_spec: Any = None,
    ) -> None:
        while True:
            try:
                payloads, timed_out = self.get_batch_requests(lit_api, request_queue, transport)
            except _StopLoopError:
                return
            for response_queue_id, uid in timed_out:
                logger.error("request %s waited in the queue for over %s s: timed out", uid, lit_api.request_timeout)
                send_error(self, transport, response_queue_id, uid, HTTPException(504, "Request timed out"))
            if payloads:
                self.serve(lit_api, transport, payloads)

    def serve(self, lit_api: ls.LitAPI, transport: MessageTransport, payloads: list[Payload]) -> None:
        """decode each request (a failure answers that request only), then batch, predict, unbatch, encode."""
        decoded = []
        for response_queue_id, uid, request in payloads:
            try:
                decoded.append((response_queue_id, uid, lit_api.decode_request(request)))
            except Exception as err:
                send_error(self, transport, response_queue_id, uid, err)
        if not decoded:
            return
        try:
            outputs = lit_api.unbatch(lit_api.predict(lit_api.batch([x for _, _, x in decoded])))
            if len(outputs) != len(decoded):
                raise RuntimeError(f"unbatch returned {len(outputs)} outputs for {len(decoded)} requests")
            answers = [lit_api.encode_response(y) for y in outputs]
        except Exception as err:
            for response_queue_id, uid, _ in decoded:
                send_error(self, transport, response_queue_id, uid, err)
            return
        for (response_queue_id, uid, _), answer in zip(decoded, answers, strict=True):
            self.put_response(transport, response_queue_id, uid, answer, LitAPIStatus.OK, LoopResponseType.REGULAR)


def send_error(
    loop: LitLoop,
    transport: MessageTransport,
    response_queue_id: int,
    uid: str,
    err: Exception,
    response_type: LoopResponseType = LoopResponseType.REGULAR,
) -> None:
    """An HTTPException reaches the client with its status; anything else is logged and becomes a 500."""
    if isinstance(err, HTTPException):
        data: Any = PickleableHTTPException.from_exception(err)
    else:
        logger.error("request %s failed in the worker", uid, exc_info=err)
        data = pickle.dumps(err)
    loop.put_response(transport, response_queue_id, uid, data, LitAPIStatus.ERROR, response_type)
