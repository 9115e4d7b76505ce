"""GET /metrics counts exactly the traffic sent, across processes: a server of its own with two /sentiment workers
and two HTTP processes (worker-side counts are written in the spawned workers and read by whichever HTTP process
answers the scrape). Also the JSON request log with X-Request-ID, and the probes staying open under an API key."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from tests.service.serving import Server, start_server, stop_server

KEY = "metrics-test-key"
AUTH = {"X-API-Key": KEY}
SECRET_TEXT = "zebra-marker-9137 an unforgettable film"  # must never reach the log


@pytest.fixture(scope="module")
def ops_server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "RNNSERVE_API_KEY": KEY,
        "RNNSERVE_WORKERS_SENTIMENT": "2",
        "RNNSERVE_API_SERVERS": "2",
        "RNNSERVE_ORT_THREADS": "1",
    }
    running = start_server(artifacts, tmp_path_factory.mktemp("ops-server"), env)
    yield running
    stop_server(running)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    r = httpx.get(url + "/metrics", timeout=10)  # no API key: Prometheus scrapes without one
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return scrape_text(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_the_traffic_exactly(ops_server: Server) -> None:
    url = ops_server.url
    before = scrape(url)
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        with ThreadPoolExecutor(8) as pool:  # concurrent: the two workers batch them as they like
            texts = [f"{SECRET_TEXT} number {i}" for i in range(8)]
            answers = list(pool.map(lambda t: client.post("/sentiment", json={"text": t}), texts))
        assert [a.status_code for a in answers] == [200] * 8
        assert client.post("/sentiment", json={"texts": ["good", "bad", "fine"]}).status_code == 200
        for _ in range(3):
            assert client.post("/sentiment", json={"text": ""}).status_code == 422  # refused before any worker
        assert httpx.post(url + "/sentiment", json={"text": "no key"}).status_code == 401
        for text in ("EU rejects German call", "Peter Blackburn lives in Brussels"):
            assert client.post("/ner", json={"text": text}).status_code == 200
        assert client.post("/ner", content=b"text=x", headers={"content-type": "text/plain"}).status_code == 415
        plain = client.post("/generate", json={"prompt": "ROMEO:", "max_new_tokens": 25, "seed": 1}).json()
        with client.stream("POST", "/generate", json={"max_new_tokens": 17, "seed": 2, "stream": True}) as r:
            events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
        assert client.get("/no-such-route").status_code == 404
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP side: requests and errors by endpoint and status, latency histogram counts.
    assert delta("rnnserve_requests_total", endpoint="/sentiment", method="POST", status="200") == 9
    assert delta("rnnserve_requests_total", endpoint="/sentiment", method="POST", status="422") == 3
    assert delta("rnnserve_requests_total", endpoint="/sentiment", method="POST", status="401") == 1
    assert delta("rnnserve_request_errors_total", endpoint="/sentiment", status="422") == 3
    assert delta("rnnserve_request_errors_total", endpoint="/sentiment", status="401") == 1
    assert delta("rnnserve_request_duration_seconds_count", endpoint="/sentiment") == 13
    assert delta("rnnserve_time_to_first_byte_seconds_count", endpoint="/generate") == 2
    assert delta("rnnserve_requests_total", endpoint="/ner", method="POST", status="200") == 2
    assert delta("rnnserve_request_errors_total", endpoint="/ner", status="415") == 1
    assert delta("rnnserve_requests_total", endpoint="/generate", method="POST", status="200") == 2
    assert delta("rnnserve_request_errors_total", endpoint="/generate", status="200") == 0
    assert delta("rnnserve_requests_total", endpoint="other", method="GET", status="404") == 1
    assert value(after, "rnnserve_requests_in_flight", endpoint="/sentiment") == 0

    # Worker side (spawned processes): every accepted request went into exactly one model call.
    assert delta("rnnserve_batch_requests_sum", endpoint="/sentiment") == 9
    calls = delta("rnnserve_batch_requests_count", endpoint="/sentiment")
    assert 1 <= calls <= 9 and delta("rnnserve_model_seconds_count", endpoint="/sentiment") == calls
    assert delta("rnnserve_batch_requests_sum", endpoint="/ner") == 2
    generated = plain["generated_tokens"] + events[-1]["generated_tokens"]
    assert (plain["generated_tokens"], events[-1]["generated_tokens"]) == (25, 17)
    assert delta("rnnserve_generated_characters_total", endpoint="/generate") == generated

    # Read at scrape time: queue depth per endpoint, and the models served.
    assert {dict(k[1])["endpoint"] for k in after if k[0] == "rnnserve_queue_depth"} == {
        "/generate",
        "/sentiment",
        "/ner",
    }
    models = {dict(k[1])["task"] for k in after if k[0] == "rnnserve_model_info"}
    assert models == {"charlm", "sentiment", "ner"}


def test_the_client_protocols_are_guarded_counted_and_logged(ops_server: Server) -> None:
    url, bearer = ops_server.url, {"Authorization": f"Bearer {KEY}"}
    before = scrape(url)
    with httpx.Client(base_url=url, headers=bearer, timeout=60) as client:
        openai = client.post("/v1/completions", json={"model": "charlm", "prompt": SECRET_TEXT, "max_tokens": 5})
        assert openai.status_code == 200
        assert client.post("/", json={"inputs": SECRET_TEXT, "parameters": {"max_new_tokens": 4}}).status_code == 200
        assert client.post("/hf/text-classification", json={"inputs": SECRET_TEXT}).status_code == 200
        big = b"x" * 1_000_001  # over RNNSERVE_MAX_BODY_BYTES: refused by the guard, in each protocol's shape
        refused = client.post("/v1/completions", content=big, headers={"content-type": "application/json"})
        assert refused.status_code == 413 and refused.json()["error"]["type"] == "invalid_request_error"
        refused = client.post("/generate_stream", content=big, headers={"content-type": "application/json"})
        assert refused.status_code == 413 and refused.json()["error_type"] == "validation"
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("rnnserve_requests_total", endpoint="/v1/completions", method="POST", status="200") == 1
    assert delta("rnnserve_request_errors_total", endpoint="/v1/completions", status="413") == 1
    assert delta("rnnserve_requests_total", endpoint="/", method="POST", status="200") == 1
    assert delta("rnnserve_request_errors_total", endpoint="/generate_stream", status="413") == 1
    assert delta("rnnserve_requests_total", endpoint="/hf/text-classification", method="POST", status="200") == 1
    assert delta("rnnserve_generated_characters_total", endpoint="/generate") == 5 + 4  # the same workers
    assert delta("rnnserve_batch_requests_sum", endpoint="/sentiment") == 1
    text = ops_server.log.read_text(errors="replace")
    assert "zebra-marker" not in text, "request text must never be logged"
    logged = {json.loads(line)["path"] for line in text.splitlines() if '"service.access"' in line}
    assert {"/v1/completions", "/", "/generate_stream", "/hf/text-classification"} <= logged


def test_request_log_is_json_with_the_request_id(ops_server: Server) -> None:
    url = ops_server.url
    mine = httpx.get(url + "/livez", headers={"X-Request-ID": "client-id-42"})
    assert mine.headers["x-request-id"] == "client-id-42"
    fresh = httpx.post(url + "/sentiment", json={"text": SECRET_TEXT}, headers=AUTH)
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    unsafe = httpx.get(url + "/livez", headers={"X-Request-ID": "no spaces\tor tabs allowed"})
    assert unsafe.headers["x-request-id"] != "no spaces\tor tabs allowed"

    text = ops_server.log.read_text(errors="replace")
    assert "zebra-marker" not in text, "request text must never be logged"
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"service.access"' in line]
    by_id = {line["request_id"]: line for line in lines}
    assert {"client-id-42", fresh.headers["x-request-id"]} <= by_id.keys()
    entry = by_id[fresh.headers["x-request-id"]]
    assert entry["method"] == "POST" and entry["path"] == "/sentiment" and entry["status"] == 200
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] > 0
    assert {"time", "level", "event", "pid"} <= entry.keys()
    assert not any(re.search(r'"(GET|POST) /', line) for line in text.splitlines()), "uvicorn's access log is off"


def test_probes_and_metrics_need_no_api_key(ops_server: Server) -> None:
    for path in ("/livez", "/readyz", "/health", "/metrics", "/"):
        assert httpx.get(ops_server.url + path).status_code == 200, path
    assert httpx.get(ops_server.url + "/livez").json() == {"status": "alive"}
    assert httpx.post(ops_server.url + "/ner", json={"text": "EU"}).status_code == 401


# The middleware alone, in this process (no server): the cases real traffic reaches only by accident.


APP = SimpleNamespace(routes=[SimpleNamespace(path=p) for p in ("/generate", "/livez")])  # what Starlette puts in scope


async def _call(observer: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers or [], "app": APP}
    await observer(scope, receive, send)
    return sent


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from prometheus_client import values

    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # restored afterwards, as is the variable below
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    return tmp_path


def _collected(directory: Path) -> Samples:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return scrape_text(generate_latest(registry).decode())


def scrape_text(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_an_error_event_inside_a_stream_counts_as_an_error(metrics_dir: Path) -> None:
    from service.web.observe import RequestObserver

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'data: {"text": "a"}\n\n', "more_body": True})
        await send({"type": "http.response.body", "body": b"event: error\ndata: {}\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    asyncio.run(_call(RequestObserver(streaming, metrics_dir=str(metrics_dir), access_log=False), "/generate"))
    samples = _collected(metrics_dir)
    assert value(samples, "rnnserve_requests_total", endpoint="/generate", method="POST", status="200") == 1
    assert value(samples, "rnnserve_request_errors_total", endpoint="/generate", status="stream") == 1
    assert value(samples, "rnnserve_time_to_first_byte_seconds_count", endpoint="/generate") == 1
    first = value(samples, "rnnserve_time_to_first_byte_seconds_sum", endpoint="/generate")
    assert 0 < first <= value(samples, "rnnserve_request_duration_seconds_sum", endpoint="/generate")


def test_unknown_paths_share_one_label_and_failures_still_count(metrics_dir: Path) -> None:
    from service.web.observe import RequestObserver

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the app broke before answering")

    observer = RequestObserver(failing, metrics_dir=str(metrics_dir), access_log=False)
    for path in ("/wp-admin", "/.env", "/livez"):
        with pytest.raises(RuntimeError):
            asyncio.run(_call(observer, path))
    samples = _collected(metrics_dir)
    assert value(samples, "rnnserve_requests_total", endpoint="other", method="POST", status="500") == 2
    assert value(samples, "rnnserve_requests_total", endpoint="/livez", method="POST", status="500") == 1
    assert value(samples, "rnnserve_requests_in_flight", endpoint="other") == 0
    assert not any(dict(labels).get("endpoint") in ("/wp-admin", "/.env") for _, labels in samples)


@pytest.mark.parametrize(
    ("offered", "echoed"),
    [
        (b"abc-123", True),
        (b"x" * 128, True),
        (b"x" * 129, False),
        (b"two words", False),
        (b"caf\xc3\xa9", False),
        (b"id\n", False),
    ],
)
def test_a_client_request_id_is_echoed_only_when_tame(metrics_dir: Path, offered: bytes, echoed: bool) -> None:
    from service.web.observe import RequestObserver

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"spoofed")]})
        await send({"type": "http.response.body", "body": b"{}"})

    sent = asyncio.run(_call(RequestObserver(ok, metrics_dir=str(metrics_dir)), "/livez", [(b"x-request-id", offered)]))
    ids = [v for k, v in sent[0]["headers"] if k == b"x-request-id"]
    assert len(ids) == 1 and (ids[0] == offered) is echoed
    assert echoed or re.fullmatch(rb"[0-9a-f]{32}", ids[0])
