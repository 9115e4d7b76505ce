"""service.generate_loop with the real GenerateAPI and committed char LM: concurrent generations are stepped as one
batch, each still gets exactly the text it gets alone, requests join and leave between ticks, the loop sleeps while
idle, and a failing request fails alone."""

from __future__ import annotations

import json
import pickle
import threading
import time
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np
import pytest

from service.apis.generate import GenerateAPI
from service.litserve_ext import ContinuousGenerationLoop
from service.litserve_ext.protocol import END, ERROR, OK, STOP, Outbox
from service.schemas import GenerateRequest
from service.settings import Settings
from service.tasks.generation import generate_text


class Transport:
    """Collects what the loop sends, per request id, in order; `outbox` is what the loop writes to."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[Any, str]]] = {}

    def send(self, item: Any, consumer_id: int) -> None:
        uid, (data, status, _, _) = item
        self.sent.setdefault(uid, []).append((data, status))

    def outbox(self, loop: ContinuousGenerationLoop) -> Outbox:
        return Outbox(loop, self, streaming=True)  # type: ignore[arg-type]

    def text(self, uid: str) -> str:
        return "".join(json.loads(data)["text"] for data, status in self.sent[uid] if status == OK)

    def finished(self, uid: str) -> bool:
        return bool(self.sent.get(uid)) and self.sent[uid][-1][1] == END


@pytest.fixture(scope="module")
def api(artifacts: Path) -> GenerateAPI:
    api = GenerateAPI(Settings(artifacts=artifacts, stream_interval=0.0))
    api.request_timeout = 30
    api.setup("cpu")
    return api


def queued(uid: str, request: GenerateRequest, age: float = 0.0) -> tuple[int, str, float, GenerateRequest]:
    return (0, uid, time.monotonic() - age, request)


def counting_ticks(api: GenerateAPI, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the batch size of every model step."""
    sizes: list[int] = []
    tick = api.generator.tick

    def counted(generations: list[Any]) -> Any:
        sizes.append(len(generations))
        return tick(generations)

    monkeypatch.setattr(api.generator, "tick", counted)
    return sizes


def run_until_done(loop: ContinuousGenerationLoop, api: GenerateAPI, queue: Queue[Any], transport: Transport) -> None:
    loop.tick(api, queue, transport.outbox(loop))
    while loop.running:
        loop.tick(api, queue, transport.outbox(loop))


def test_concurrent_requests_share_steps_and_each_gets_its_text_alone(
    api: GenerateAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = {
        f"r{i}": GenerateRequest(prompt=p, max_new_tokens=n, seed=i, temperature=t, stream=s)
        for i, (p, n, t, s) in enumerate(
            [("ROMEO:", 40, 1.0, True), ("", 25, 0.8, False), ("KING " * 80, 33, 0.0, True), ("A", 3, 1.0, True)]
        )
    }
    alone = {uid: generate_text(api.generator, r).text for uid, r in requests.items()}
    sizes = counting_ticks(api, monkeypatch)
    queue: Queue[Any] = Queue()
    for uid, r in requests.items():
        queue.put(queued(uid, r))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=8)
    run_until_done(loop, api, queue, transport)
    assert {uid: transport.text(uid) for uid in requests} == alone
    assert all(transport.finished(uid) for uid in requests)
    # Together, not one after another (one after another: 7 + 40, 1 + 25, 33 + the prompt's last 128, 2 + 3 ticks).
    assert max(sizes) == 4 and len(sizes) < 100
    plain = [s for d, s in transport.sent["r1"] if s == OK]
    assert len(plain) == 1  # a non-streaming request gets one whole piece


def test_a_late_request_joins_the_running_batch(api: GenerateAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = counting_ticks(api, monkeypatch)
    queue: Queue[Any] = Queue()
    queue.put(queued("long", GenerateRequest(prompt="A", max_new_tokens=60, temperature=0)))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=8)
    for _ in range(10):
        loop.tick(api, queue, transport.outbox(loop))
    late = GenerateRequest(prompt="B", max_new_tokens=5, temperature=0)
    queue.put(queued("late", late))
    for _ in range(7):
        loop.tick(api, queue, transport.outbox(loop))
    assert transport.finished("late") and not transport.finished("long")  # it did not wait for the long one
    assert transport.text("late") == generate_text(api.generator, late).text
    assert 2 in sizes


def test_at_most_max_active_run_and_the_rest_wait_in_the_queue(
    api: GenerateAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = counting_ticks(api, monkeypatch)
    queue: Queue[Any] = Queue()
    for i in range(5):
        queue.put(queued(f"r{i}", GenerateRequest(prompt="A", max_new_tokens=3, seed=i)))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=2)
    loop.tick(api, queue, transport.outbox(loop))
    assert len(loop.running) == 2 and queue.qsize() == 3
    run_until_done(loop, api, queue, transport)
    while not queue.empty():
        run_until_done(loop, api, queue, transport)
    assert max(sizes) == 2 and all(transport.finished(f"r{i}") for i in range(5))


def test_idle_loop_blocks_instead_of_spinning(api: GenerateAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = counting_ticks(api, monkeypatch)
    loop = ContinuousGenerationLoop(max_active=4)
    loop.idle_wait = 0.1
    start = time.process_time(), time.monotonic()
    for _ in range(3):
        loop.tick(api, Queue(), Transport().outbox(loop))
    cpu, wall = time.process_time() - start[0], time.monotonic() - start[1]
    assert wall >= 0.3 and cpu < 0.05 and sizes == []


def test_a_request_that_fails_fails_alone(api: GenerateAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    begin = api.begin

    def fragile(request: GenerateRequest) -> Any:
        if request.prompt == "boom":
            raise ValueError("bad request")
        return begin(request)

    monkeypatch.setattr(api, "begin", fragile)
    queue: Queue[Any] = Queue()
    good = GenerateRequest(prompt="A", max_new_tokens=10, temperature=0)
    queue.put(queued("bad", GenerateRequest(prompt="boom", max_new_tokens=10)))
    queue.put(queued("old", good, age=60))
    queue.put(queued("good", good))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=4)
    run_until_done(loop, api, queue, transport)
    (data, status), *_ = transport.sent["bad"]
    assert status == ERROR and isinstance(pickle.loads(data), ValueError)
    (data, status), *_ = transport.sent["old"]
    assert status == ERROR and data.status_code == 504  # waited past request_timeout
    assert transport.text("good") == generate_text(api.generator, good).text


def test_the_sentinel_lets_running_generations_finish_then_stops(api: GenerateAPI) -> None:
    queue: Queue[Any] = Queue()
    queue.put(queued("r", GenerateRequest(prompt="A", max_new_tokens=20)))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=4)
    loop.tick(api, queue, transport.outbox(loop))
    queue.put(STOP)
    queue.put(queued("after", GenerateRequest(prompt="A", max_new_tokens=20)))
    worker = threading.Thread(target=loop, args=(api, "cpu", 0, queue, transport, {}, None))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and transport.finished("r") and "after" not in transport.sent


@pytest.mark.parametrize("batch", [2, 3, 7, 16, 33])
def test_a_row_of_a_batched_step_equals_the_row_alone(api: GenerateAPI, batch: int) -> None:
    """What makes seeded output independent of batch-mates: onnxruntime computes each row alike at any batch size."""
    gen = api.generator
    rng = np.random.default_rng(batch)
    (layers, hidden), *_ = gen.state_shapes.values()
    state = {n: rng.standard_normal((layers, batch, hidden)).astype(np.float32) for n in gen.state_shapes}
    tokens = rng.integers(1, len(gen.encoder.vocab), (batch, 1))
    logits, new_state = gen._run(tokens, state)
    for row in range(batch):
        alone, alone_state = gen._run(tokens[row : row + 1], {n: v[:, row : row + 1] for n, v in state.items()})
        assert np.array_equal(logits[row], alone[0])
        assert all(np.array_equal(new_state[n][:, row], alone_state[n][:, 0]) for n in new_state)


def test_in_company_a_prompt_is_read_in_the_shared_steps(api: GenerateAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alone, a prompt goes through the model in one long call; joining running generations, its last FOLD_MAX
    characters ride along as rows of the shared step instead. The text is the same either way."""
    calls: list[tuple[int, int]] = []
    run = api.generator._run

    def recorded(tokens: np.ndarray, state: Any) -> Any:
        calls.append(tokens.shape)
        return run(tokens, state)

    monkeypatch.setattr(api.generator, "_run", recorded)
    queue: Queue[Any] = Queue()
    queue.put(queued("running", GenerateRequest(prompt="A", max_new_tokens=200, temperature=0)))
    transport, loop = Transport(), ContinuousGenerationLoop(max_active=4)
    loop.tick(api, queue, transport.outbox(loop))
    joining = GenerateRequest(
        prompt="KING RICHARD:\n" + "Now is the winter of our discontent " * 8, max_new_tokens=20, seed=5
    )
    queue.put(queued("joining", joining))
    calls.clear()
    while not transport.finished("joining"):
        loop.tick(api, queue, transport.outbox(loop))
    prompt_chars = len(api.generator.encoder.encode(joining.prompt))
    assert prompt_chars > 128
    assert [shape for shape in calls if shape[1] > 1] == [(1, prompt_chars - 128)]  # only the head in one call
    assert sum(shape == (2, 1) for shape in calls) == 128 + 19  # the rest, then 20 samples (the last needs no step)
    assert transport.text("joining") == generate_text(api.generator, joining).text
