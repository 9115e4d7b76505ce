"""bench.tail (issue 18): baseline (c) answers in our shape without torch; the freeze between turns really stops a
server; the tail results are typed records that survive JSON; the tail targets (bench/targets.py) and the stage
table compute what they say; the report's section appears only where the tail was measured."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from bench import servers, tail, tail_report, targets
from bench.kinds import BY_NAME, KINDS, OURS, PLAIN_LITSERVE, label
from bench.tail_report import section
from bench.tail_results import TailResults
from service.schemas import NerResponse, SentimentBatchResponse, SentimentResponse
from service.web.timeline import STAGES
from tests.test_bench import _fake_results, _fake_tail


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


def test_baseline_c_is_a_kind_outside_the_head_to_head() -> None:
    """(c) does not serve /generate: the head-to-head and side-by-side kinds leave it out, but the bench can start it
    and the report names it."""
    assert PLAIN_LITSERVE.name == tail.PEER and PLAIN_LITSERVE not in KINDS
    assert servers.COMMANDS[tail.PEER][-1] == "bench.baseline_litserve_onnx"
    assert label(tail.PEER) == "(c) LitServe + ORT" and BY_NAME[tail.PEER] is PLAIN_LITSERVE


def test_tail_results_round_trip_through_json() -> None:
    t = _fake_tail([2100.0, 1900.0], [40.0, 44.0])
    back = TailResults.from_json(json.loads(json.dumps(t.to_json())))
    assert back == t
    assert back.series(OURS, "/ner", 64, "p99_ms") == [40.0, 44.0]  # in round order
    assert back.median(tail.PEER, "/sentiment", 32, "rps") == 1000.0


def _verdicts(t: TailResults | None) -> dict[tuple[str, str], targets.Verdict]:
    """Tail verdicts of a run with `t`, by (figure, against)."""
    verdicts = targets.evaluate(replace(_fake_results(), tail=t))
    return {
        (v.target.figure.what, v.target.versus.what): v for v in verdicts if v.target.figure.rounds and v.target.versus
    }


@pytest.mark.parametrize(
    ("rps", "p99", "p50", "misses"),
    [
        (2100, 40, 20, set()),  # 2.1x (c)'s rate, p99 0.67x (c)'s, p99 2.0x p50: all hold
        (1900, 40, 20, {"req/s"}),  # 1.9x: the rate misses
        (2100, 43, 20, {"p99 vs (c)"}),  # 43 / 60 = 0.72x (c)'s p99
        (2100, 40, 15, {"p99 vs p50"}),  # 40 / 15 = 2.67x ours' p50
    ],
)
def test_tail_targets_hold_or_miss_either_side_of_their_thresholds(
    rps: float, p99: float, p50: float, misses: set[str]
) -> None:
    verdicts = _verdicts(_fake_tail([rps] * 3, [p99] * 3, p50))
    assert len(verdicts) == 3 * 2 * len(targets.TAIL_CLIENTS)  # /sentiment and /ner at 32 and 64 clients
    missed = set()
    for (what, against), v in verdicts.items():
        assert any(f" {c} clients," in what for c in (32, 64))
        if not v.holds:
            missed.add("req/s" if what.endswith("req/s") else "p99 vs p50" if against.endswith("p50") else "p99 vs (c)")
    assert missed == misses
    assert all(not v.holds for v in verdicts.values() if v.target.figure.what.endswith("req/s")) == ("req/s" in misses)


def test_tail_targets_take_the_median_of_the_rounds_ratios() -> None:
    """Per round 100/60, 500/300, 250/100: the ratios' median 1.67x misses 2x, though the medians' ratio is 2.5x."""
    verdicts = _verdicts(_fake_tail([100.0, 500.0, 250.0], [40.0] * 3, peer_rps=[60.0, 300.0, 100.0]))
    v = verdicts[("/sentiment 32 clients, one at a time: req/s", "/sentiment 32 clients, one at a time: req/s")]
    assert v.value == pytest.approx(5 / 3) and not v.holds
    assert v.measured == "median of 3 rounds 1.67× (1.67, 1.67, 2.50); medians 250 vs 100"


def test_tail_targets_are_left_out_without_tail_rounds_and_rendered_with_them() -> None:
    assert not _verdicts(None)
    assert "one at a time" not in targets.render(_fake_results())
    text = targets.render(replace(_fake_results(), tail=_fake_tail([2100.0], [40.0])))
    assert (
        "| /ner 32 clients, one at a time: p99 | /ner 32 clients, one at a time: p50 | <= 2.5× | median of 1 round "
        "2.00× (2.00); medians 40.0 vs 20.0 ms | **holds** |"
    ) in text
    assert "| /sentiment 64 clients, one at a time: p99 | (c) LitServe + ORT | <= 0.7× |" in text
    assert "| /sentiment 32 clients: req/s | (a) FastAPI + torch |" in text  # the other targets, in the same table
    assert targets.tail_table(_fake_tail([2100.0], [40.0])).count("| **holds** |") == 3 * 2 * 2  # bench.tail alone


def test_stage_table_and_section() -> None:
    stamps = [a for _, a, _ in STAGES] + ["http_out"]
    samples = [{**{s: i * 0.001 * (1 + k % 7) for i, s in enumerate(stamps)}, "batch": 4.0} for k in range(200)]
    table = tail.stage_table(samples)
    assert table.samples == 200 and table.batch.mean == 4
    total = table.stages["total"]
    assert total.slow_mean >= total.mean
    parts = sum(v.mean for k, v in table.stages.items() if k != "total")
    assert parts == pytest.approx(total.mean)  # the stages add up to the request's time in the server
    assert section(_fake_results()) == ""  # no tail rounds: no section
    t = replace(_fake_tail([2100.0, 2300.0], [40.0, 50.0]), timeline={"/ner": table})
    text = section(replace(_fake_results(), tail=t))
    assert (
        "| /ner x64 | 2,200 | 1,000 | 2.20× | 20.0 / 45.0 / 45.0 / 67.5 | 30.0 / 50.0 / 60.0 / 90.0 | 0.75× |" in text
    )
    assert "| model |" in text and "200 requests sampled" in text and "2 rounds of 2.0 s" in text
    assert PLAIN_LITSERVE.what in text and tail_report.NOTES in text
