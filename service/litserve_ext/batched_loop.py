"""The /sentiment and /ner workers' loop: dynamic batching that sleeps while idle and fails bad requests alone.

Replaces LitServe 0.2.19's `BatchedLoop`, which collects a batch by polling its request queue with 1 ms timeouts
around the clock (idle, each batched worker and the queue's manager process cost a share of a core), calls every
LitAPI method through `_inject_context` (an `inspect.signature` per call), and fails a whole batch when one
request's `decode_request` raises. This loop blocks on the queue for the first request, then gathers more until
`batch_timeout` or `max_batch_size`, taking without waiting whatever is already queued: the same batches.

With `timeline` on, each answer carries the job's stamps (`protocol.Timed`): taken off the queue, batch complete,
model start and end; off, the loop takes no extra clock readings.
"""

from __future__ import annotations

import logging
import time
from queue import Empty, Queue
from typing import Any

from litserve.loops.simple_loops import BatchedLoop
from litserve.transport.base import MessageTransport

from service.litserve_ext.contracts import BatchedAPI, LoopMetrics
from service.litserve_ext.protocol import Job, Outbox

logger = logging.getLogger(__name__)


class BlockingBatchedLoop(BatchedLoop):  # type: ignore[misc]  # litserve ships no type hints
    idle_wait = 1.0  # seconds per blocking wait; the loop re-checks for shutdown in between

    def __init__(self, metrics: LoopMetrics | None = None, timeline: bool = False) -> None:
        super().__init__()
        self.metrics, self.timeline = metrics, timeline
        self.taken: dict[str, float] = {}  # uid -> when it left the queue (timeline only; emptied by each serve)

    def __call__(
        self,
        lit_api: BatchedAPI,
        device: str,
        worker_id: int,
        request_queue: Queue[Any],
        transport: MessageTransport,
        workers_setup_status: Any,
        callback_runner: Any,
        *_: Any,
        **__: Any,
    ) -> None:
        if self.metrics is not None:
            self.metrics.bind(str(getattr(lit_api, "api_path", "")))
        outbox = Outbox(self, transport, streaming=False)
        while (jobs := self.collect(lit_api, request_queue, outbox)) is not None:
            if jobs:
                self.serve(lit_api, outbox, jobs)

    def collect(self, lit_api: BatchedAPI, request_queue: Queue[Any], outbox: Outbox) -> list[Job] | None:
        """The next batch (empty after an idle wait), or None once the loop is told to stop. A request that waited
        longer than `request_timeout` is answered with 504 here and left out."""
        jobs: list[Job] = []
        try:
            item = request_queue.get(timeout=self.idle_wait)
        except Empty:
            return jobs
        deadline = time.monotonic() + lit_api.batch_timeout
        taken = 0
        while True:
            job = Job.from_item(item)
            if job is None:
                return None
            if self.timeline:
                self.taken[job.uid] = time.monotonic()
            outbox.started(job)
            taken += 1
            if job.expired(lit_api.request_timeout):
                outbox.timed_out(job, lit_api.request_timeout)
            else:
                jobs.append(job)
            if taken >= lit_api.max_batch_size:
                break
            remaining = deadline - time.monotonic()
            try:
                item = request_queue.get(timeout=remaining) if remaining > 0 else request_queue.get_nowait()
            except Empty:
                break
        return jobs

    def serve(self, lit_api: BatchedAPI, outbox: Outbox, jobs: list[Job]) -> None:
        """decode each request (a failure answers that request only), then batch, predict, unbatch (a failure there
        answers the whole batch), then encode and send each answer (a failure answers that request only)."""
        formed = time.monotonic() if self.timeline else 0.0
        decoded: list[tuple[Job, Any]] = []
        for job in jobs:
            try:
                decoded.append((job, lit_api.decode_request(job.request)))
            except Exception as err:
                outbox.error(job, err)
        if not decoded:
            self.taken.clear()
            return
        try:
            batch = lit_api.batch([x for _, x in decoded])
            model_start = time.monotonic() if self.timeline else 0.0
            started = time.perf_counter()
            try:
                output = lit_api.predict(batch)
            finally:
                if self.metrics is not None:
                    self.metrics.batch(len(decoded), time.perf_counter() - started)
            model_end = time.monotonic() if self.timeline else 0.0
            outputs = lit_api.unbatch(output)
            if len(outputs) != len(decoded):
                raise RuntimeError(f"unbatch returned {len(outputs)} outputs for {len(decoded)} requests")
        except Exception as err:
            for job, _ in decoded:
                outbox.error(job, err)
            self.taken.clear()
            return
        # Each answer leaves as soon as it is encoded: the first of a batch no longer waits for the others' encoding
        # (a 16-request /ner batch: ~6 ms of it, the timeline's encode_and_pipe_write), and a request whose answer
        # fails to encode fails alone.
        for (job, _), y in zip(decoded, outputs, strict=True):
            try:
                answer = lit_api.encode_response(y)
            except Exception as err:
                outbox.error(job, err)
                continue
            if self.timeline:
                stamps = (job.queued_at, self.taken.pop(job.uid, formed), formed, model_start, model_end)
                outbox.answer(job, answer, stamps, len(decoded))
            else:
                outbox.answer(job, answer)
        self.taken.clear()
