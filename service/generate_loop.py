"""The /generate worker's loop: continuous batching. Every running generation advances by one character per tick,
all of them in ONE model call (`CharGenerator.tick`); requests join between ticks and leave when they finish, so a
new request never waits for a long one to end and 16 streams cost little more than one.

Why our own loop: LitServe 0.2.19's batched streaming loop makes a new request wait for the longest running one,
and its ContinuousBatchingLoop spins a core while idle and calls `add_request` on another thread than `step`. This
one blocks on the request queue while nothing runs, and is single-threaded.

A tick: admit what is queued (up to `max_active` running), read long prompts' heads in one chunk each (a long
prompt then delays the running streams by one chunk per tick, not by its whole length), step every generation
(those still reading their prompt feed their next prompt character), send the released pieces. A request that
fails to start or to prefill fails alone; a failed tick fails the requests stepped in it; the others go on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any

from fastapi import HTTPException
from litserve.loops.base import _SENTINEL_VALUE, LitLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType

from service.batching import send_error
from service.generation import FOLD_MAX, Generation, Piece

logger = logging.getLogger(__name__)
STREAMING = LoopResponseType.STREAMING


@dataclass
class Running:
    response_queue_id: int
    uid: str
    generation: Generation
    release: Any  # Coalescer or Joiner: `push(piece) -> Piece | None`


class ContinuousGenerationLoop(LitLoop):  # type: ignore[misc]  # litserve ships no type hints
    idle_wait = 1.0  # seconds per blocking wait while nothing runs; the loop re-checks for shutdown in between

    def __init__(self, max_active: int) -> None:
        super().__init__()
        self.max_active = max_active
        self.running: list[Running] = []
        self.stopping = False

    def __call__(
        self,
        lit_api: Any,
        device: str,
        worker_id: int,
        request_queue: Queue[Any],
        transport: MessageTransport,
        workers_setup_status: dict[int, str],
        callback_runner: Any,
    ) -> None:
        while not (self.stopping and not self.running):
            self.tick(lit_api, request_queue, transport)

    def tick(self, lit_api: Any, request_queue: Queue[Any], transport: MessageTransport) -> None:
        self.admit(lit_api, request_queue, transport)
        # Alone, a prompt is read in long calls (fastest for one); in company only its head beyond FOLD_MAX is,
        # and the rest rides along in the shared steps (generation.py says why).
        keep = FOLD_MAX if len(self.running) > 1 else 0
        for entry in [e for e in self.running if e.generation.unread.size > keep]:
            self.guarded(transport, [entry], lambda e=entry: lit_api.generator.prefill_some(e.generation, keep=keep))
        if self.running:
            batch = list(self.running)
            self.guarded(transport, batch, lambda: self.step(lit_api, transport, batch))

    def admit(self, lit_api: Any, request_queue: Queue[Any], transport: MessageTransport) -> None:
        """Take queued requests while there is room; block for the first one only when nothing runs."""
        while not self.stopping and len(self.running) < self.max_active:
            try:
                item = request_queue.get_nowait() if self.running else request_queue.get(timeout=self.idle_wait)
            except Empty:
                return
            if item == _SENTINEL_VALUE:
                self.stopping = True  # finish what runs, take nothing new
                return
            response_queue_id, uid, timestamp, request = item
            timeout = lit_api.request_timeout
            if timeout not in (-1, False, None) and time.monotonic() - timestamp > timeout:
                logger.error("request %s waited in the queue for over %s s: timed out", uid, timeout)
                send_error(self, transport, response_queue_id, uid, HTTPException(504, "Request timed out"), STREAMING)
                continue
            try:
                generation, release = lit_api.begin(lit_api.decode_request(request))
            except Exception as err:
                send_error(self, transport, response_queue_id, uid, err, STREAMING)
                continue
            self.running.append(Running(response_queue_id, uid, generation, release))

    def step(self, lit_api: Any, transport: MessageTransport, ready: list[Running]) -> None:
        pieces = lit_api.generator.tick([e.generation for e in ready])
        for entry, piece in zip(ready, pieces, strict=True):
            if piece is not None:
                self.send(lit_api, transport, entry, piece)
            if entry.generation.finished:
                self.running.remove(entry)
                self.put_response(
                    transport, entry.response_queue_id, entry.uid, "", LitAPIStatus.FINISH_STREAMING, STREAMING
                )

    def send(self, lit_api: Any, transport: MessageTransport, entry: Running, piece: Piece) -> None:
        released = entry.release.push(piece)
        if released is None:
            return
        for encoded in lit_api.encode_response(iter([released])):
            data = lit_api.format_encoded_response(encoded)
            self.put_response(transport, entry.response_queue_id, entry.uid, data, LitAPIStatus.OK, STREAMING)

    def guarded(self, transport: MessageTransport, entries: list[Running], work: Any) -> None:
        """Run `work`; if it raises, the requests of `entries` get the error and leave, the others go on."""
        try:
            work()
        except Exception as err:
            logger.error("a generation step failed: %d request(s) answered with the error", len(entries))
            for entry in entries:
                if entry in self.running:
                    self.running.remove(entry)
                send_error(self, transport, entry.response_queue_id, entry.uid, err, STREAMING)
