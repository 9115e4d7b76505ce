"""Answers from the workers to an HTTP process: one pipe per HTTP process, read by its event loop itself.

LitServe 0.2.19's transport puts every answer on a queue that the HTTP process reads with
`asyncio.to_thread(queue.get)`: a thread-pool hop per answer, plus the worker's queue feeder thread, each waiting
for the GIL of a busy process. Here a worker pickles the answer and writes it to the pipe of the HTTP process that
holds the request (a lock per pipe keeps messages from several workers whole), and the HTTP process's event loop
wakes on the pipe's file descriptor and reads it directly: no threads on either side.

A worker's write blocks only while the pipe is full (64 KiB), which the reading event loop empties at once.
"""

from __future__ import annotations

import asyncio
import pickle
from contextlib import suppress
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any

from litserve.transport.base import MessageTransport

WAIT = 1.0  # seconds one `areceive` waits before it returns None (LitServe's reader then simply calls again)


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


class PipeTransport(MessageTransport):  # type: ignore[misc]  # litserve ships no type hints
    def __init__(self, consumers: int, ctx: SpawnContext) -> None:
        pipes = [ctx.Pipe(duplex=False) for _ in range(consumers)]
        self.readers: list[Connection] = [reader for reader, _ in pipes]
        self.writers: list[Connection] = [writer for _, writer in pipes]
        self.locks = [ctx.Lock() for _ in range(consumers)]

    def send(self, item: Any, consumer_id: int) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        with self.locks[consumer_id]:
            self.writers[consumer_id].send_bytes(data)

    async def areceive(self, consumer_id: int, timeout: float | None = None, block: bool = True) -> Any:
        reader = self.readers[consumer_id]
        if not reader.poll():
            loop = asyncio.get_running_loop()
            readable = loop.create_future()
            fd = reader.fileno()
            loop.add_reader(fd, _wake, readable)
            try:
                await asyncio.wait_for(readable, WAIT if timeout is None else min(timeout, WAIT))
            except TimeoutError:
                return None
            finally:
                loop.remove_reader(fd)
        return pickle.loads(reader.recv_bytes())

    def close(self, send_sentinel: bool = True, **_: Any) -> None:
        if not send_sentinel:
            return
        for writer, lock in zip(self.writers, self.locks, strict=True):  # wakes the readers: None is "nothing yet"
            if lock.acquire(timeout=0.2):  # a killed worker may have left it held: shutting down anyway
                try:
                    with suppress(OSError, ValueError):
                        writer.send_bytes(pickle.dumps(None))
                finally:
                    lock.release()
