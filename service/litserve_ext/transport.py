"""Answers from the workers to an HTTP process: one pipe per HTTP process, read by its event loop itself.

Replaces LitServe's transport (a queue read with `asyncio.to_thread(queue.get)`: a thread-pool hop per answer). A
worker pickles the answer and writes it to the pipe of the HTTP process that holds the request as one frame (an
8-byte length, then the pickle; a lock per pipe keeps frames from several workers whole), and the HTTP process's
event loop wakes on the pipe's file descriptor and reads it directly: no threads on either side. A worker's write
blocks only while the pipe is full (64 KiB), which the reader empties.

Invariants of the reading end: it is non-blocking (uvloop makes a watched descriptor non-blocking anyway), it keeps
what it has read until a frame is whole, and `areceive` never waits outside the event loop and returns None rather
than raise, because LitServe's reading task ends on any exception and with it every answer to that HTTP process
(how that was found: docs/operations.md, "Metrics").
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import struct
import time
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any

from litserve.transport.base import MessageTransport

from service.litserve_ext.protocol import Timed

logger = logging.getLogger(__name__)

WAIT = 1.0  # seconds one `areceive` waits before it returns None (LitServe's reader then simply calls again)
LENGTH = struct.Struct("!Q")  # the frame header: the pickle's length in bytes
READ_SIZE = 1 << 16  # one pipe's capacity
ERROR_PAUSE = 0.05  # seconds


def frame(item: Any) -> bytes:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Inbox:
    """The reading end of one pipe in the HTTP process that owns it: bytes read so far, split into whole frames."""

    def __init__(self, reader: Connection) -> None:
        self.fd = reader.fileno()
        os.set_blocking(self.fd, False)  # whatever the event loop does: reads take only what is there
        self.pending = bytearray()
        self.closed = False

    def next_frame(self) -> bytes | None:
        if len(self.pending) < LENGTH.size:
            return None
        (size,) = LENGTH.unpack_from(self.pending)
        end = LENGTH.size + size
        if len(self.pending) < end:
            return None
        with memoryview(self.pending) as view:  # one copy out of the buffer (a bytearray slice would be a second)
            data = view[LENGTH.size : end].tobytes()
        del self.pending[:end]
        return data

    def read_available(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            if not chunk:  # every writing end is closed: the server is going away
                self.closed = True
                return
            self.pending += chunk

    async def readable(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self.fd, _wake, ready)
        try:
            await asyncio.wait_for(ready, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(self.fd)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def stamp_read(message: Any) -> None:
    """With the timeline on, an answer `(uid, (Timed, status, ...))` learns when it came off the pipe; any other
    message (errors, pieces, the end of a stream, whatever a caller sends) passes untouched."""
    body = message[1] if isinstance(message, tuple) and len(message) == 2 else None
    if isinstance(body, tuple) and body and isinstance(body[0], Timed):
        body[0].read_at = time.monotonic()


class PipeTransport(MessageTransport):  # type: ignore[misc]  # litserve ships no type hints
    def __init__(self, consumers: int, ctx: SpawnContext) -> None:
        pipes = [ctx.Pipe(duplex=False) for _ in range(consumers)]
        self.readers: list[Connection] = [reader for reader, _ in pipes]
        self.writers: list[Connection] = [writer for _, writer in pipes]
        self.locks = [ctx.Lock() for _ in range(consumers)]
        self.inboxes: dict[int, Inbox] = {}  # this process's reading state; never sent to another process

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "inboxes": {}}

    def send(self, item: Any, consumer_id: int) -> None:
        data = frame(item)
        with self.locks[consumer_id]:
            write_all(self.writers[consumer_id].fileno(), data)

    async def areceive(self, consumer_id: int, timeout: float | None = None, block: bool = True) -> Any:
        """The next answer for this HTTP process, or None when none is whole within `WAIT` seconds. Never raises
        but for cancellation: LitServe's reading task would end, and with it every answer to this process."""
        inbox = self.inboxes.get(consumer_id)
        if inbox is None:
            inbox = self.inboxes[consumer_id] = Inbox(self.readers[consumer_id])
        try:
            data = inbox.next_frame()
            if data is None and not inbox.closed:
                if await inbox.readable(WAIT if timeout is None else min(timeout, WAIT)):
                    inbox.read_available()
                data = inbox.next_frame()
            if data is None and inbox.closed:
                raise asyncio.CancelledError("the answer pipe is closed")  # LitServe's reader stops quietly
            if data is None:
                return None
            message = pickle.loads(data)
            stamp_read(message)
            return message
        except Exception:
            logger.exception("reading an answer from the workers failed; reading on")
            await asyncio.sleep(ERROR_PAUSE)  # an error that repeats must not become a busy loop of log lines
            return None

    def close(self, send_sentinel: bool = True, **_: Any) -> None:
        if not send_sentinel:
            return
        for writer, lock in zip(self.writers, self.locks, strict=True):  # wakes the readers: None is "nothing yet"
            if lock.acquire(timeout=0.2):  # a killed worker may have left it held: shutting down anyway
                try:
                    with suppress(OSError, ValueError):
                        write_all(writer.fileno(), frame(None))
                finally:
                    lock.release()
