"""The request/answer protocol between the HTTP processes and the worker loops, defined once.

A request travels to a worker as a `Job` on the endpoint's request queue, in the shape LitServe 0.2.19 puts there
itself (a 4-tuple; its stop sentinel is four Nones). A worker answers through the transport with LitServe's
message `(uid, (data, status, response_type, worker_id))`, which LitServe's reader in each HTTP process files
into its response buffer. `Outbox` is the only writer of those messages; `error_from` is the only reader of error
data. A non-streaming request gets one message (an answer or an error); a streaming one gets pieces, then either
the end of the stream or an error. With the request timeline on (`RNNSERVE_TIMELINE`), a batched worker's answer
travels as a `Timed`: the answer and the worker's stamps; `client.answer` unwraps it, so no route sees it.
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from litserve.loops.base import _SENTINEL_VALUE, LitLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType, PickleableHTTPException

logger = logging.getLogger(__name__)

STOP = _SENTINEL_VALUE  # what LitServe puts on every request queue to stop the worker loops

# Statuses as the HTTP side reads them from its response buffer.
OK = LitAPIStatus.OK
ERROR = LitAPIStatus.ERROR
END = LitAPIStatus.FINISH_STREAMING


@dataclass(frozen=True)
class Job:
    reply_to: int  # the HTTP process waiting for the answer (LitServe's response queue id)
    uid: str  # the request's key in that process's response buffer
    queued_at: float  # time.monotonic() when it was put on the queue
    request: Any

    def item(self) -> tuple[int, str, float, Any]:
        """As it travels on the request queue."""
        return (self.reply_to, self.uid, self.queued_at, self.request)

    @classmethod
    def from_item(cls, item: Any) -> Job | None:
        """The job taken from a request queue, or None for the stop sentinel."""
        if item == STOP:
            return None
        reply_to, uid, queued_at, request = item
        return cls(reply_to, uid, queued_at, request)

    @classmethod
    def new(cls, reply_to: int, uid: str, request: Any) -> Job:
        return cls(reply_to, uid, time.monotonic(), request)

    def expired(self, timeout: float | None) -> bool:
        """Waited in the queue longer than `timeout` seconds (LitServe's `request_timeout`; -1, False or None: no
        limit)."""
        return timeout not in (-1, False, None) and time.monotonic() - self.queued_at > float(timeout)


# The worker-side stamps of a timed answer, in this order: time.monotonic() (CLOCK_MONOTONIC, one clock for every
# process of the machine) when the job was put on the queue, taken from it, when its batch was complete, the model
# call's start and end, and when the answer was handed to the pipe; then the number of requests in the batch.
WORKER_STAMPS = ("queued", "taken", "formed", "model_start", "model_end", "written")


@dataclass
class Timed:
    """An answer with its worker stamps (`WORKER_STAMPS`, then `batch`). `read_at` is set in the HTTP process when
    the message is read off the pipe (`transport.PipeTransport.areceive`)."""

    data: Any
    stamps: tuple[float, ...]
    batch: int
    read_at: float = 0.0

    def worker_stamps(self) -> dict[str, float]:
        return {**dict(zip(WORKER_STAMPS, self.stamps, strict=True)), "read": self.read_at}


class Outbox:
    """A worker loop's answers to the HTTP processes: `streaming` for /generate's pieces, else one answer each."""

    def __init__(self, loop: LitLoop, transport: MessageTransport, streaming: bool) -> None:
        self.loop, self.transport = loop, transport
        self.kind = LoopResponseType.STREAMING if streaming else LoopResponseType.REGULAR

    def _send(self, job: Job, data: Any, status: str) -> None:
        self.loop.put_response(self.transport, job.reply_to, job.uid, data, status, self.kind)

    def started(self, job: Job) -> None:
        """A worker took the job (LitServe only sends this when it restarts dead workers, which 0.2.19 does not)."""
        self._send(job, (), LitAPIStatus.START)

    def answer(self, job: Job, data: Any, stamps: tuple[float, ...] | None = None, batch: int = 0) -> None:
        """The answer to a non-streaming request, or one piece of a stream; with `stamps` (the timeline on: all of
        `WORKER_STAMPS` but the last, which is taken here), a `Timed` answer."""
        if stamps is not None:
            data = Timed(data, (*stamps, time.monotonic()), batch)
        self._send(job, data, OK)

    def end(self, job: Job) -> None:
        """A stream is complete."""
        self._send(job, "", END)

    def error(self, job: Job, err: Exception) -> None:
        """An HTTPException reaches the client with its status; anything else is logged here and becomes a 500."""
        if isinstance(err, HTTPException):
            data: Any = PickleableHTTPException.from_exception(err)
        else:
            logger.error("request %s failed in the worker", job.uid, exc_info=err)
            data = pickle.dumps(err)
        self._send(job, data, ERROR)

    def timed_out(self, job: Job, timeout: Any) -> None:
        logger.error("request %s waited in the queue for over %s s: timed out", job.uid, timeout)
        self.error(job, HTTPException(504, "Request timed out"))


def error_from(data: Any) -> HTTPException:
    """The HTTP error for a worker's error data: its status and detail for an HTTPException, else a 500 that does
    not repeat the exception (it may hold request text)."""
    if isinstance(data, bytes):  # pickled by `Outbox.error` in our own workers
        try:
            data = pickle.loads(data)
        except Exception:
            data = None
    status = getattr(data, "status_code", None)
    if isinstance(status, int):
        return HTTPException(status, str(getattr(data, "detail", "")))
    return HTTPException(500, "the model failed on this request (see the server log)")
