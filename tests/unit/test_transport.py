"""The answer pipe between workers and an HTTP process: whole answers, in order, under both event loops.

The HTTP processes run uvloop (uvicorn's loop), which makes a watched descriptor non-blocking; the plain asyncio
loop does not. Every test runs under both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from service.litserve_ext.probes import ANSWER_READER, answer_reader_running
from service.litserve_ext.transport import PipeTransport, frame

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    def run_with_deadline(coroutine: Any, deadline: float = 20.0) -> Any:
        async def guarded() -> Any:  # a reader that blocks outside the event loop would hang here, not fail
            return await asyncio.wait_for(coroutine, deadline)

        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(guarded())

    return run_with_deadline


def new_transport(consumers: int = 1) -> PipeTransport:
    return PipeTransport(consumers, mp.get_context("spawn"))


async def receive(transport: PipeTransport, count: int, consumer: int = 0) -> list[Any]:
    items: list[Any] = []
    while len(items) < count:
        item = await transport.areceive(consumer)
        if item is not None:
            items.append(item)
    return items


def test_a_frame_that_arrives_in_parts_is_read_whole(run: Callable[..., Any]) -> None:
    transport = new_transport()
    data = frame(("uid-1", {"text": "x" * 50_000}))
    fd = transport.writers[0].fileno()

    async def scenario() -> tuple[Any, Any, Any]:
        os.write(fd, data[:5])  # part of the header
        first = await transport.areceive(0, timeout=0.05)
        os.write(fd, data[5:30_000])  # the header and part of the body
        second = await transport.areceive(0, timeout=0.05)
        os.write(fd, data[30_000:])
        third = await transport.areceive(0, timeout=0.05)
        return first, second, third

    assert run(scenario()) == (None, None, ("uid-1", {"text": "x" * 50_000}))


def test_an_answer_larger_than_the_pipe_arrives_whole(run: Callable[..., Any]) -> None:
    """1 MiB through a 64 KiB pipe: the reader sees it in pieces, as the writer fills the pipe again and again."""
    transport = new_transport()
    answers = [bytes([n]) * (1 << 20) for n in range(3)]
    writer = threading.Thread(target=lambda: [transport.send(a, 0) for a in answers])

    async def scenario() -> list[Any]:
        writer.start()
        return await receive(transport, len(answers))

    assert run(scenario()) == answers
    writer.join()


def send_numbered(transport: PipeTransport, writer_id: int, count: int) -> None:
    for n in range(count):
        transport.send((writer_id, n, b"a" * (n * 997 % 150_000)), 0)


def test_answers_from_several_worker_processes_stay_whole_and_in_order(run: Callable[..., Any]) -> None:
    transport, count = new_transport(), 150
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=send_numbered, args=(transport, w, count)) for w in range(2)]

    async def scenario() -> list[Any]:
        for w in workers:
            w.start()
        return await receive(transport, 2 * count)

    items = run(scenario(), deadline=60.0)
    for w in workers:
        w.join()
    for writer_id in range(2):
        mine = [(n, body) for w, n, body in items if w == writer_id]
        assert mine == [(n, b"a" * (n * 997 % 150_000)) for n in range(count)]


def test_answers_go_to_their_own_http_process(run: Callable[..., Any]) -> None:
    transport = new_transport(consumers=2)
    transport.send("for 1", 1)
    transport.send("for 0", 0)
    assert run(receive(transport, 1, consumer=0)) == ["for 0"]
    assert run(receive(transport, 1, consumer=1)) == ["for 1"]


def test_nothing_to_read_is_none_after_the_timeout(run: Callable[..., Any]) -> None:
    assert run(new_transport().areceive(0, timeout=0.05)) is None


def test_an_unreadable_answer_is_logged_and_the_reader_goes_on(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    transport = new_transport()
    fd = transport.writers[0].fileno()
    bad = frame("x")[:8] + b"\x00" * (len(frame("x")) - 8)  # a whole frame, but not a pickle
    os.write(fd, bad)
    transport.send("after", 0)

    async def scenario() -> tuple[Any, Any]:
        return await transport.areceive(0, timeout=0.05), await transport.areceive(0, timeout=0.05)

    with caplog.at_level(logging.ERROR, logger="service.litserve_ext.transport"):
        assert run(scenario()) == (None, "after")
    assert "reading an answer from the workers failed" in caplog.text


def test_close_wakes_the_reader_with_nothing(run: Callable[..., Any]) -> None:
    transport = new_transport()
    transport.close()

    async def scenario() -> tuple[Any, int]:
        answer = await transport.areceive(0, timeout=5.0)
        return answer, len(transport.inboxes[0].pending)

    assert run(scenario(), deadline=0.5) == (None, 0)  # the sentinel, read at once: not a 1 s wait


def test_a_closed_pipe_ends_the_reading_quietly(run: Callable[..., Any]) -> None:
    transport = new_transport()
    transport.send("last", 0)
    transport.writers[0].close()  # every writing end gone, as when the server exits

    async def scenario() -> tuple[Any, bool]:
        last = await transport.areceive(0, timeout=1.0)
        try:
            await transport.areceive(0, timeout=1.0)
        except asyncio.CancelledError:
            return last, True
        return last, False

    assert run(scenario()) == ("last", True)


def test_the_reading_state_stays_in_its_process(run: Callable[..., Any]) -> None:
    transport = new_transport()
    transport.send("one", 0)
    assert run(receive(transport, 1)) == ["one"]
    assert transport.inboxes and transport.__getstate__()["inboxes"] == {}


def test_liveness_sees_whether_the_answer_reader_runs() -> None:
    """/livez asks this; that LitServe's task carries the name is proved by every real server's /livez being 200."""

    async def scenario() -> tuple[bool, bool, bool]:
        before = answer_reader_running()
        reader = asyncio.create_task(asyncio.sleep(30), name=f"{ANSWER_READER}-0")
        await asyncio.sleep(0)
        running = answer_reader_running()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        return before, running, answer_reader_running()

    assert asyncio.run(scenario()) == (False, True, False)
