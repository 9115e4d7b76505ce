"""A lean closed-loop HTTP load generator: raw asyncio streams, HTTP/1.1 keep-alive, one connection per client.

Lean on purpose: on a 2-core machine the load generator shares the CPU with the server it measures, so it
writes pre-encoded request bytes and parses only the status line, the headers and the body framing
(Content-Length or chunked). Its own CPU time is measured for every point and reported next to the figures.

Bounded in time (`duration`) and in requests (`max_requests`); loopback only (the host must be 127.0.0.1 or ::1).
Requests that start during the first `warmup` seconds are sent but not recorded. CPU accounting: bench/cpu.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from bench.cpu import CpuClock
from bench.results import RequestPoint, StreamPoint

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class HttpError(RuntimeError):
    pass


def _request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: */*\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the load generator only targets loopback, not {host!r}")
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _head(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], asyncio.StreamReader]:
        reader, writer = await self._open()
        writer.write(_request_bytes(self.host, self.port, path, body))
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, reader

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        status, headers, reader = await self._head(path, body)
        if b"content-length" in headers:
            data = await reader.readexactly(int(headers[b"content-length"]))
        else:
            data = b"".join([c async for c in _chunks(reader)])
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, data

    async def post_stream(self, path: str, body: bytes) -> AsyncIterator[tuple[int, bytes]]:
        """Yield (status, body piece) as pieces arrive (chunked bodies piece by piece)."""
        status, headers, reader = await self._head(path, body)
        if b"content-length" in headers:
            yield status, await reader.readexactly(int(headers[b"content-length"]))
        else:
            async for chunk in _chunks(reader):
                yield status, chunk


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


def sse_texts(buffer: bytes) -> tuple[list[str], bool, bytes]:
    """Complete Server-Sent Events in `buffer`: their `text` fields, whether one was an error, the unparsed rest."""
    texts, failed = [], False
    *events, rest = buffer.split(b"\n\n")
    for event in events:
        if event.startswith(b"event: error"):
            failed = True
        for line in event.split(b"\n"):
            if line.startswith(b"data: "):
                texts.append(json.loads(line[6:]).get("text") or "")
    return texts, failed, rest


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    if not latencies:
        return (float("nan"),) * 3
    p = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return float(p[0]), float(p[1]), float(p[2])


async def closed_loop(
    host: str,
    port: int,
    path: str,
    payloads: Sequence[bytes],
    clients: int,
    duration: float,
    warmup: float = 0.5,
    max_requests: int = 1_000_000,
    at_warmup: Callable[[], None] | None = None,
) -> tuple[list[float], int, float]:
    """`clients` closed-loop clients, each sending the next payload as soon as its previous answer arrived.
    Returns the latencies (s) of the 200s that started after `warmup` and ended inside the window, the errors
    there, and the measured seconds; `at_warmup` runs when the window opens."""
    latencies: list[float] = []
    errors = 0
    sent = 0  # every request, warm-up included: bounded by max_requests
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration

    async def client(offset: int) -> None:
        nonlocal errors, sent
        conn = Connection(host, port)
        i = offset
        try:
            while sent < max_requests:
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                sent += 1
                try:
                    status, _ = await conn.post(path, payloads[i % len(payloads)])
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = 0
                    conn.close()
                t1 = time.perf_counter()
                i += clients
                if t0 >= measure_from and t1 <= end:
                    if status == 200:
                        latencies.append(t1 - t0)
                    else:
                        errors += 1
        finally:
            conn.close()

    async def window_opens() -> None:
        await asyncio.sleep(warmup)
        if at_warmup is not None:
            at_warmup()

    await asyncio.gather(window_opens(), *(client(k) for k in range(clients)))
    return latencies, errors, min(time.perf_counter(), end) - measure_from


async def request_load(
    host: str,
    port: int,
    path: str,
    payloads: Sequence[bytes],
    clients: int,
    duration: float,
    warmup: float = 0.5,
    max_requests: int = 1_000_000,
    server_pids: Sequence[int] = (),
) -> RequestPoint:
    """`closed_loop`'s figures with the CPU shares of the load generator, the server and the rest."""
    clock = CpuClock(server_pids)
    latencies, errors, seconds = await closed_loop(
        host, port, path, payloads, clients, duration, warmup, max_requests, at_warmup=clock.reset
    )
    loadgen, server, busiest = clock.shares()
    other = max(0.0, clock.machine_cores() - loadgen - server)
    p50, p95, p99 = _percentiles(latencies)
    n, rps = len(latencies) + errors, len(latencies) / seconds
    return RequestPoint(path, clients, n, errors, seconds, rps, p50, p95, p99, loadgen, server, busiest, other)


async def stream_load(
    host: str,
    port: int,
    path: str,
    payloads: Sequence[bytes],
    streams: int,
    duration: float,
    warmup: float = 0.5,
    max_requests: int = 100_000,
    server_pids: Sequence[int] = (),
    count: Callable[[bytes], tuple[list[str], bool, bytes]] = sse_texts,
) -> StreamPoint:
    """`streams` clients, each streaming one generation after another; characters count when they arrive inside
    the measured window. Time to first character: request sent -> first event carrying text."""
    chars = completed = errors = started = 0
    firsts: list[float] = []
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration
    clock = CpuClock(server_pids)

    async def client(offset: int) -> None:
        nonlocal chars, completed, errors, started
        conn = Connection(host, port)
        i = offset
        try:
            while started < max_requests and time.perf_counter() < end:
                started += 1
                t0 = time.perf_counter()
                first, buffer, failed = None, b"", False
                try:
                    async for status, piece in conn.post_stream(path, payloads[i % len(payloads)]):
                        now = time.perf_counter()
                        if status != 200:
                            failed = True
                            continue
                        texts, bad, buffer = count(buffer + piece)
                        failed |= bad
                        n = sum(len(t) for t in texts)
                        if n and first is None:
                            first = now - t0
                            if measure_from <= t0 and now <= end:
                                firsts.append(first)
                        if measure_from <= now <= end:
                            chars += n
                        if now > end:
                            conn.close()  # stop reading: the window is over
                            return
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    failed = True
                    conn.close()
                i += streams
                if t0 >= measure_from and time.perf_counter() <= end:
                    completed += 1
                    errors += failed
        finally:
            conn.close()

    async def reset_clock() -> None:
        await asyncio.sleep(warmup)
        clock.reset()

    await asyncio.gather(reset_clock(), *(client(k) for k in range(streams)))
    seconds = min(time.perf_counter(), end) - measure_from
    loadgen, server, busiest = clock.shares()
    other = max(0.0, clock.machine_cores() - loadgen - server)
    p50, p95, _ = _percentiles(firsts)
    rate = chars / seconds
    return StreamPoint(
        streams, completed, errors, seconds, chars, rate, rate / streams, p50, p95, loadgen, server, busiest, other
    )


def run(coro: object) -> object:
    """asyncio.run with uvloop when it is installed (less client CPU per request)."""
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
