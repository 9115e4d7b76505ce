"""A server with RNNSERVE_API_KEY: inference routes need the key, /health does not. SIGTERM and Ctrl+C must stop a
server and every worker process it started (LitServe alone orphans them), quietly: each on a server of its own."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from tests.service.serving import Server, alive, descendants, outliving, processes_with_env, start_server, stop_server

KEY = "s3cret-key-for-tests"
ROUTES = {
    "/generate": {"prompt": "a", "max_new_tokens": 2},
    "/sentiment": {"text": "good"},
    "/ner": {"text": "EU"},
    "/v1/completions": {"model": "charlm", "prompt": "a", "max_tokens": 2},
    "/": {"inputs": "a", "parameters": {"max_new_tokens": 2}},
    "/generate_stream": {"inputs": "a", "parameters": {"max_new_tokens": 2}},
    "/hf/text-classification": {"inputs": "good"},
    "/hf/token-classification": {"inputs": "EU"},
}


@pytest.fixture(scope="module")
def keyed(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(artifacts, tmp_path_factory.mktemp("keyed"), {"RNNSERVE_API_KEY": KEY})
    yield running
    stop_server(running)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_missing_or_wrong_key_is_401(keyed: Server, path: str) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.post(keyed.url + path, json=ROUTES[path], headers=headers)
        assert r.status_code == 401, (headers, r.text)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_right_key_in_either_header_is_200(keyed: Server, path: str) -> None:
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        assert httpx.post(keyed.url + path, json=ROUTES[path], headers=headers, timeout=30).status_code == 200


def test_health_and_the_page_need_no_key(keyed: Server) -> None:
    assert httpx.get(keyed.url + "/health").status_code == 200
    assert httpx.get(keyed.url + "/").status_code == 200  # POST / is TGI's route, guarded; GET / is the page


def test_the_clients_send_the_key_as_bearer(keyed: Server) -> None:
    with openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        assert sdk.completions.create(model="charlm", prompt="a", max_tokens=3).choices[0].finish_reason == "length"
        assert [m.id for m in sdk.models.list().data]
    wrong = openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError, match="API key"):
        wrong.models.list()
    assert len(InferenceClient(model=keyed.url, api_key=KEY).text_generation("a", max_new_tokens=3)) == 3
    with pytest.raises(HfHubHTTPError) as raised:
        InferenceClient(model=keyed.url, api_key="wrong").text_generation("a", max_new_tokens=3)
    assert raised.value.response.status_code == 401


def test_sigterm_stops_server_and_all_workers(artifacts: Path, tmp_path: Path) -> None:
    keyed = start_server(artifacts, tmp_path, {"RNNSERVE_API_KEY": KEY})
    try:
        reply = httpx.post(keyed.url + "/sentiment", json={"text": "good"}, headers={"X-API-Key": KEY}, timeout=30)
        assert reply.status_code == 200  # a server that has served, as in production
        workers = descendants(keyed.process.pid)
        assert len(workers) >= 3  # three inference workers at least, plus HTTP and manager processes
        survivors = stop_server(keyed)
    finally:
        if keyed.process.poll() is None:
            stop_server(keyed)
    assert survivors == set(), f"still alive after SIGTERM: {survivors}\n{keyed.log_tail()}"
    assert keyed.process.returncode is not None
    assert not any(alive(p) for p in workers)
    assert not processes_with_env("RNNSERVE_PORT", keyed.url.rsplit(":", 1)[1])  # orphans included
    assert keyed.logged_errors() == [], keyed.log_tail()  # a stop is routine: no traceback per process


def test_ctrl_c_in_a_terminal_stops_every_process_quietly(artifacts: Path, tmp_path: Path) -> None:
    """Ctrl+C sends SIGINT to the whole foreground group: the main process, the HTTP processes and the workers."""
    server = start_server(artifacts, tmp_path, terminal=True)
    family = descendants(server.process.pid) | {server.process.pid}
    assert httpx.post(server.url + "/sentiment", json={"text": "good"}, timeout=30).status_code == 200
    os.killpg(server.process.pid, signal.SIGINT)
    try:
        assert server.process.wait(timeout=45) == 0, server.log_tail()
    finally:
        survivors = outliving(family, grace=5) | stop_server(server, timeout=1)
        for pid in survivors:  # only processes this test started
            os.kill(pid, signal.SIGKILL)
    assert survivors == set(), f"still alive after Ctrl+C: {survivors}\n{server.log_tail()}"
    assert server.logged_errors() == [], server.log_tail()
