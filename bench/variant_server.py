"""Our server with candidate changes switched on, to measure them before anyone edits service/ (bench only).

`RNNSERVE_BENCH_VARIANT` is a comma-separated list of:
- `fastqueue`: `LitServer(fast_queue=True)`, LitServe's ZeroMQ transport for worker -> HTTP responses. The default
  transport receives every response (every streamed character too) with `asyncio.to_thread(queue.get)`, one
  thread hop per message (litserve/transport/process_transport.py).
- `greedy`: /sentiment and /ner batch what is waiting: block for the first request, then take whatever else is
  already queued (up to max_batch_size) without waiting for more. LitServe's `collate_requests` instead waits
  `batch_timeout` for the batch to fill, which every request pays when fewer than max_batch_size are in flight.

    RNNSERVE_BENCH_VARIANT=fastqueue,greedy python -m bench.variant_server
"""

from __future__ import annotations

import os
import time
from queue import Empty, Queue
from typing import Any

import litserve as ls
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from litserve.loops.simple_loops import BatchedLoop
from litserve.utils import LitAPIStatus, LoopResponseType

from service import server
from service.api_ner import NerAPI
from service.api_sentiment import SentimentAPI


class GreedyBatchedLoop(BatchedLoop):  # type: ignore[misc]
    def get_batch_requests(self, lit_api: Any, request_queue: Queue[Any], transport: Any) -> tuple[list, list]:
        try:
            first = request_queue.get(timeout=1.0)
        except Empty:
            return [], []
        payloads, timed_out = [], []
        item = first
        while True:
            if item == _SENTINEL_VALUE:
                raise _StopLoopError()
            response_queue_id, uid, timestamp, x_enc = item
            self.put_response(transport, response_queue_id, uid, (), LitAPIStatus.START, LoopResponseType.REGULAR)
            if lit_api.request_timeout not in (-1, False) and time.monotonic() - timestamp > lit_api.request_timeout:
                timed_out.append((response_queue_id, uid))
            else:
                payloads.append((response_queue_id, uid, x_enc))
            if len(payloads) >= lit_api.max_batch_size:
                break
            try:
                item = request_queue.get_nowait()
            except Empty:
                break
        return payloads, timed_out


class GreedySentimentAPI(SentimentAPI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = GreedyBatchedLoop()


class GreedyNerAPI(NerAPI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = GreedyBatchedLoop()


def main() -> None:
    from bench import variant_server as this  # importable classes, so that spawned workers can unpickle them

    variants = {v.strip() for v in os.environ.get("RNNSERVE_BENCH_VARIANT", "").split(",") if v.strip()}
    unknown = variants - {"fastqueue", "greedy"}
    if unknown:
        raise SystemExit(f"RNNSERVE_BENCH_VARIANT: unknown {sorted(unknown)}; known: fastqueue, greedy")
    if "greedy" in variants:
        server.SentimentAPI = this.GreedySentimentAPI  # type: ignore[misc]
        server.NerAPI = this.GreedyNerAPI  # type: ignore[misc]
    if "fastqueue" in variants:
        original = ls.LitServer

        class FastQueueServer(original):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, fast_queue=True, **kwargs)

        server.ls.LitServer = FastQueueServer  # type: ignore[misc]
    server.main()


if __name__ == "__main__":
    main()
