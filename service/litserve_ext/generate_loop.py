"""The /generate worker's loop: continuous batching. Every running generation advances by one character per tick,
all of them in ONE model call (`CharGenerator.tick` in `service.tasks.generation`); requests join between ticks and
leave when they finish, so a new request never waits for a long one to end and 16 streams cost little more than one.

Replaces LitServe's streaming loops: 0.2.19's batched streaming loop makes a new request wait for the longest running
one, and its ContinuousBatchingLoop spins a core while idle and calls `add_request` on another thread than `step`.
This one blocks on the request queue while nothing runs, and is single-threaded.

A tick: admit what is queued (up to `max_active` running), read long prompts' heads in one chunk each (a long
prompt then delays the running streams by one chunk per tick, not by its whole length), step every generation
(those still reading their prompt feed their next prompt character), send the released pieces. A request that
fails to start or to prefill fails alone; a failed tick fails the requests stepped in it; the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any

from litserve.loops.base import LitLoop
from litserve.transport.base import MessageTransport

from service.litserve_ext.contracts import GenerationAPI, LoopMetrics, Release
from service.litserve_ext.protocol import Job, Outbox
from service.tasks.generation import FOLD_MAX, Generation, Piece

logger = logging.getLogger(__name__)


@dataclass
class Running:
    job: Job
    generation: Generation
    release: Release


class ContinuousGenerationLoop(LitLoop):  # type: ignore[misc]  # litserve ships no type hints
    idle_wait = 1.0  # seconds per blocking wait while nothing runs; the loop re-checks for shutdown in between

    def __init__(self, max_active: int, metrics: LoopMetrics | None = None) -> None:
        super().__init__()
        self.max_active = max_active
        self.metrics = metrics
        self.running: list[Running] = []
        self.stopping = False

    def __call__(
        self,
        lit_api: GenerationAPI,
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
        outbox = Outbox(self, transport, streaming=True)
        while not (self.stopping and not self.running):
            self.tick(lit_api, request_queue, outbox)

    def tick(self, lit_api: GenerationAPI, request_queue: Queue[Any], outbox: Outbox) -> None:
        self.admit(lit_api, request_queue, outbox)
        # Alone, a prompt is read in long calls (fastest for one); in company only its head beyond FOLD_MAX is,
        # and the rest rides along in the shared steps (service/tasks/generation.py says why).
        keep = FOLD_MAX if len(self.running) > 1 else 0
        for entry in [e for e in self.running if e.generation.unread.size > keep]:
            self.guarded(outbox, [entry], lambda e=entry: lit_api.generator.prefill_some(e.generation, keep=keep))
        if self.running:
            batch = list(self.running)
            self.guarded(outbox, batch, lambda: self.step(lit_api, outbox, batch))

    def admit(self, lit_api: GenerationAPI, request_queue: Queue[Any], outbox: Outbox) -> None:
        """Take queued requests while there is room; block for the first one only when nothing runs."""
        while not self.stopping and len(self.running) < self.max_active:
            try:
                item = request_queue.get_nowait() if self.running else request_queue.get(timeout=self.idle_wait)
            except Empty:
                return
            job = Job.from_item(item)
            if job is None:
                self.stopping = True  # finish what runs, take nothing new
                return
            if job.expired(lit_api.request_timeout):
                outbox.timed_out(job, lit_api.request_timeout)
                continue
            try:
                generation, release = lit_api.begin(lit_api.decode_request(job.request))
            except Exception as err:
                outbox.error(job, err)
                continue
            self.running.append(Running(job, generation, release))

    def step(self, lit_api: GenerationAPI, outbox: Outbox, ready: list[Running]) -> None:
        pieces = lit_api.generator.tick([e.generation for e in ready])
        for entry, piece in zip(ready, pieces, strict=True):
            if piece is not None:
                self.send(lit_api, outbox, entry, piece)
            if entry.generation.finished:
                self.running.remove(entry)
                outbox.end(entry.job)

    def send(self, lit_api: GenerationAPI, outbox: Outbox, entry: Running, piece: Piece) -> None:
        if piece.generated_tokens is not None and self.metrics is not None:  # the last piece, cancelled ones too
            self.metrics.generated(piece.generated_tokens)
        released = entry.release.push(piece)
        if released is None:
            return
        for encoded in lit_api.encode_response(iter([released])):
            outbox.answer(entry.job, lit_api.format_encoded_response(encoded))

    def guarded(self, outbox: Outbox, entries: list[Running], work: Any) -> None:
        """Run `work`; if it raises, the requests of `entries` get the error and leave, the others go on."""
        try:
            work()
        except Exception as err:
            logger.error("a generation step failed: %d request(s) answered with the error", len(entries))
            for entry in entries:
                if entry in self.running:
                    self.running.remove(entry)
                outbox.error(entry.job, err)
