"""GET /debug/timeline (RNNSERVE_TIMELINE=1): every answered /sentiment and /ner request leaves one sample whose
stamps, taken in the HTTP process and in the worker on one clock, come in the order the request went; the answers
are the same as without it; off (the shared server), the route does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.web.timeline import STAGES
from tests.service.serving import Server, start_server, stop_server

ORDER = ["http_in", "queued", "taken", "formed", "model_start", "model_end", "written", "read", "woken", "http_out"]


@pytest.fixture(scope="module")
def timed_server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One HTTP process: every sample is in the ring that GET /debug/timeline reads.
    env = {"RNNSERVE_TIMELINE": "1", "RNNSERVE_API_SERVERS": "1", "RNNSERVE_BATCH_TIMEOUT": "0.01"}
    running = start_server(artifacts, tmp_path_factory.mktemp("timeline-server"), env)
    yield running
    errors = running.logged_errors()
    stop_server(running)
    assert not errors, "\n".join(errors[:20])


def test_every_answer_leaves_an_ordered_sample(timed_server: Server) -> None:
    url = timed_server.url
    httpx.get(url + "/debug/timeline", params={"clear": "true"}, timeout=10).raise_for_status()
    bodies = [("/sentiment", {"text": f"a gripping, funny film number {i}"}) for i in range(12)]
    bodies += [("/ner", {"text": f"EU rejects German call {i}"}) for i in range(12)]
    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda pb: client.post(pb[0], json=pb[1]), bodies))
        bad = client.post("/sentiment", json={"text": ""})  # a 422 from the route: no worker, no sample
    assert bad.status_code == 422
    assert all(a.status_code == 200 for a in answers)
    assert {"label", "score", "scores", "model"} <= set(answers[0].json())  # the answer, not its wrapper
    assert {"entities", "tokens", "model"} <= set(answers[-1].json())

    body = httpx.get(url + "/debug/timeline", timeout=10).json()
    assert body["stages"] == [s[0] for s in STAGES]
    samples = body["samples"]
    assert sorted(s["path"] for s in samples) == sorted(p for p, _ in bodies)
    for s in samples:
        stamps = [s[name] for name in ORDER]
        assert stamps == sorted(stamps), s
        assert 1 <= s["batch"] <= 16
    assert any(s["batch"] > 1 for s in samples)  # 8 at once, a 10 ms batch timeout: some were merged


def test_other_routes_of_the_workers_unwrap_timed_answers(timed_server: Server) -> None:
    r = httpx.post(timed_server.url + "/hf/text-classification", json={"inputs": "a fine film"}, timeout=30)
    assert r.status_code == 200
    assert {x["label"] for x in r.json()[0]} == {"negative", "positive"}


def test_off_by_default(client: httpx.Client) -> None:
    assert client.get("/debug/timeline").status_code == 404
