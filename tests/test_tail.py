"""bench.tail (issue 18): baseline (c) answers in our shape without torch; the freeze between turns really stops a
server; the targets and the stage table compute what they say."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from bench import servers, tail
from bench.tail_report import section
from service.schemas import NerResponse, SentimentBatchResponse, SentimentResponse
from service.web.timeline import STAGES


def post(port: int, path: str, body: object) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def test_baseline_c_answers_in_our_shape_without_torch(tmp_path: Path) -> None:
    running = servers.start(tail.PEER, {}, tmp_path)
    try:
        SentimentResponse.model_validate(post(running.port, "/sentiment", {"text": "a gripping, funny film"}))
        SentimentBatchResponse.model_validate(post(running.port, "/sentiment", {"texts": ["good", "a bad film"]}))
        ner = NerResponse.model_validate(post(running.port, "/ner", {"text": "EU rejects German call"}))
        assert [e.label for e in ner.entities] == ["ORG", "MISC"]
        assert not servers.memory(running.pids()).torch_loaded
        # Frozen, it takes no CPU (an idle LitServe worker polls); thawed, it answers again.
        tail.signal_tree(running, signal.SIGSTOP)
        time.sleep(0.5)
        tail.signal_tree(running, signal.SIGCONT)
        assert post(running.port, "/ner", {"tokens": ["EU"]})
    finally:
        servers.stop(running)


def fake_points(ours_rps: float, ours_p99: float) -> dict[str, dict[str, list[dict[str, float]]]]:
    def p(rps: float, p50: float, p99: float) -> dict[str, float]:
        return {"rps": rps, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "p999_ms": p99, "errors": 0}

    keys = [f"{path} x{c}" for path, _ in tail.PATHS for c in tail.CLIENTS]
    return {
        "ours": {k: [p(ours_rps, 20, ours_p99)] * 2 for k in keys},
        tail.PEER: {k: [p(1000, 30, 60)] * 2 for k in keys},
    }


@pytest.mark.parametrize(
    ("rps", "p99", "verdicts"),
    [(2100, 40, {"holds"}), (1900, 40, {"holds", "misses"}), (2100, 55, {"holds", "misses"})],
)
def test_targets(rps: float, p99: float, verdicts: set[str]) -> None:
    checked = tail.targets(fake_points(rps, p99))
    assert len(checked) == 3 * len(tail.PATHS) * len(tail.TARGET_CLIENTS)
    assert {c["verdict"] for c in checked} == verdicts


def test_stage_table_and_section() -> None:
    stamps = [a for _, a, _ in STAGES] + ["http_out"]
    samples = [{**{s: i * 0.001 * (1 + k % 7) for i, s in enumerate(stamps)}, "batch": 4.0} for k in range(200)]
    table = tail.stage_table(samples)
    assert table["samples"] == 200 and table["batch"]["mean"] == 4
    total = table["stages"]["total"]
    assert total["slow_mean"] >= total["mean"]
    parts = sum(v["mean"] for k, v in table["stages"].items() if k != "total")
    assert parts == pytest.approx(total["mean"])  # the stages add up to the request's time in the server
    result = {"rounds": 2, "seconds": 1.0, "points": fake_points(2100, 40), "timeline": {"/ner": table}}
    result["targets"] = tail.targets(result["points"])
    text = section(result)
    assert "| /ner x64 |" in text and "model" in text and "**holds**" in text
