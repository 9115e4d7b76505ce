"""GET /metrics (Prometheus text format), counted across processes.

LitServe runs each inference worker in a spawned process and, with `RNNSERVE_API_SERVERS` > 1, several forked HTTP
processes; a counter kept in one process's memory (LitServe's Logger pattern) is invisible to the process that
answers the scrape. prometheus_client's multiprocess mode is used instead: every process writes its samples to
memory-mapped files in one directory (`PROMETHEUS_MULTIPROC_DIR`, a fresh temporary directory per server run) and
GET /metrics adds them up. The HTTP side is counted by `service.web.observe`; the worker side by `WorkerMetrics`,
which the worker loops report to (requests merged into each model call, model time, generated characters).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from service.litserve_ext.client import Workers

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def use_directory(directory: str | Path) -> None:
    """Switch this process to multiprocess metrics in `directory` (before any metric is created here)."""
    os.environ[ENV] = str(directory)  # inherited by the worker processes spawned later
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def fresh_directory() -> Path:
    """A new, empty metrics directory for one server run, removed when this (main) process exits."""
    import atexit

    directory = Path(tempfile.mkdtemp(prefix="rnnserve-metrics-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


class WorkerMetrics:
    """What the worker loops report (`service.litserve_ext.LoopMetrics`), written in the worker's process. It
    travels there inside the loop, pickled with only the directory; `bind` creates the metrics there."""

    def __init__(self, metrics_dir: str) -> None:
        self.metrics_dir = metrics_dir
        self._merged: Any = None
        self._seconds: Any = None
        self._generated: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"metrics_dir": self.metrics_dir, "_merged": None, "_seconds": None, "_generated": None}

    def bind(self, endpoint: str) -> None:
        use_directory(self.metrics_dir)
        if endpoint == "/generate":
            self._generated = Counter(
                "rnnserve_generated_characters", "characters produced by /generate", ["endpoint"], registry=None
            ).labels(endpoint)
            return
        self._merged = Histogram(
            "rnnserve_batch_requests",
            "requests merged into one model call",
            ["endpoint"],
            buckets=BATCH_BUCKETS,
            registry=None,
        ).labels(endpoint)
        self._seconds = Histogram(
            "rnnserve_model_seconds", "model time per call", ["endpoint"], buckets=LATENCY_BUCKETS, registry=None
        ).labels(endpoint)

    def batch(self, requests: int, seconds: float) -> None:
        if self._merged is not None:
            self._merged.observe(requests)
            self._seconds.observe(seconds)

    def generated(self, characters: int) -> None:
        if self._generated is not None:
            self._generated.inc(characters)


class ServerCollector:
    """Read at scrape time in the answering process: requests waiting in each worker queue, and the models."""

    def __init__(self, workers: Workers, models: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self.workers, self.models = workers, models

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily("rnnserve_queue_depth", "requests waiting for a worker", labels=["endpoint"])
        for path, depth in self.workers.queue_depths().items():
            queued.add_metric([path], float(depth))
        yield queued
        info = GaugeMetricFamily("rnnserve_model_info", "the models served", labels=["task", "name", "version"])
        for m in self.models():
            info.add_metric([str(m["task"]), str(m["name"]), str(m["version"])], 1.0)
        yield info


def add_metrics_route(
    app: FastAPI, workers: Workers, metrics_dir: str, models: Callable[[], Iterable[dict[str, Any]]]
) -> None:
    """GET /metrics; it needs no API key (the guard only covers the inference routes)."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    registry.register(ServerCollector(workers, models))

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics", include_in_schema=True)
