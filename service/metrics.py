"""Operations: GET /metrics (Prometheus text format), a JSON log line per request with an `X-Request-ID`, and the
orchestrator probes GET /livez (the process answers and reads the workers' answers) and GET /readyz (every model
loaded and warmed: /health).

Counting across processes. LitServe runs each inference worker in a spawned process and, with
`RNNSERVE_API_SERVERS` > 1, several forked HTTP processes; a counter kept in one process's memory (LitServe's Logger
pattern) is invisible to the process that answers the scrape. prometheus_client's multiprocess mode is used instead:
every process writes its samples to memory-mapped files in one directory (`PROMETHEUS_MULTIPROC_DIR`, a fresh
temporary directory per server run) and GET /metrics adds them up. The HTTP side (`RequestObserver`, an ASGI
middleware) counts requests, errors, latency and requests in flight; the worker side (`WorkerMetrics`, a LitServe
Callback) counts the requests merged into each model call, model time and generated characters. Every count is
written before the response's last byte leaves, so a scrape sent after a response has arrived already includes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")  # a client's id is echoed only if it is this tame
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_logger = logging.getLogger("service.access")


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


class HttpMetrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "rnnserve_requests", "HTTP requests answered", ["endpoint", "method", "status"], registry=None
        )
        self.errors = Counter(
            "rnnserve_request_errors",
            "HTTP requests answered with status >= 400, or (status=stream) a streamed answer that ended in an error "
            "event",
            ["endpoint", "status"],
            registry=None,
        )
        self.latency = Histogram(
            "rnnserve_request_duration_seconds",
            "time from the request to the last byte of the answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.first_byte = Histogram(
            "rnnserve_time_to_first_byte_seconds",
            "time from the request to the first byte of the answer's body (a stream's first piece)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.in_flight = Gauge(
            "rnnserve_requests_in_flight",
            "requests received and not yet answered",
            ["endpoint"],
            multiprocess_mode="livesum",
            registry=None,
        )


class RequestObserver:
    """ASGI middleware, outermost: request id (client's `X-Request-ID` or a new one, echoed back), metrics, and one
    JSON log line per request (method, path, status, duration, id; never the body)."""

    def __init__(self, app: ASGIApp, *, metrics_dir: str, access_log: bool = True) -> None:
        self.app = app
        use_directory(metrics_dir)
        self.metrics = HttpMetrics()
        self.known: frozenset[str] | None = None
        _json_handler(access_logger, enabled=access_log)

    def endpoint(self, scope: Scope) -> str:
        """The route's path, or "other": an unknown path must not create a new time series."""
        if self.known is None:
            routes = getattr(scope.get("app"), "routes", [])
            self.known = frozenset(getattr(r, "path", "") for r in routes)
        path = str(scope["path"])
        return path if path in self.known else "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        offered = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        endpoint, method = self.endpoint(scope), str(scope["method"])
        method = method if method in METHODS else "other"  # any token is a valid method: bound the label
        status, stream_error, done, first_byte = 500, False, False, True
        in_flight = self.metrics.in_flight.labels(endpoint)
        in_flight.inc()

        def finish() -> None:
            nonlocal done
            if done:
                return
            done = True
            seconds = time.perf_counter() - start
            in_flight.dec()
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(seconds)
            if status >= 400 or stream_error:
                self.metrics.errors.labels(endpoint, "stream" if stream_error else str(status)).inc()
            access_logger.info(
                "request",
                extra={
                    "fields": {
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "request_id": request_id,
                        **({"stream_error": True} if stream_error else {}),
                    }
                },
            )

        async def observed_send(message: Message) -> None:
            nonlocal status, stream_error, first_byte
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                if first_byte and message.get("body"):
                    first_byte = False
                    self.metrics.first_byte.labels(endpoint).observe(time.perf_counter() - start)
                if message.get("body", b"").startswith(b"event: error"):
                    stream_error = True
                if not message.get("more_body", False):
                    finish()  # counted before the last byte leaves: a later scrape sees it
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            finish()  # also when the client went away or the app raised


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
            **getattr(record, "fields", {}),
        }
        return json.dumps(line, ensure_ascii=False)


def _json_handler(logger: logging.Logger, enabled: bool) -> None:
    """Request lines go to stderr as JSON, on their own handler, on or off whatever the root logger's level."""
    logger.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False


class WorkerMetrics(ls.Callback):  # type: ignore[misc]  # litserve ships no type hints
    """Runs inside each inference worker (LitServe pickles callbacks into its processes). After `setup` it wraps
    the LitAPI instance's own methods to see what LitServe's hooks do not pass on: the requests merged into one
    `batch()` call, and the characters in the final piece of a generation."""

    def __init__(self, metrics_dir: str) -> None:
        self.metrics_dir = metrics_dir

    def on_after_setup(self, lit_api: Any, **_: Any) -> None:
        use_directory(self.metrics_dir)
        endpoint = str(lit_api.api_path)
        if getattr(lit_api, "stream", False):
            generated = Counter(
                "rnnserve_generated_characters", "characters produced by /generate", ["endpoint"], registry=None
            ).labels(endpoint)
            lit_api.encode_response = _count_generated(lit_api.encode_response, generated)
            return
        merged = Histogram(
            "rnnserve_batch_requests",
            "requests merged into one model call",
            ["endpoint"],
            buckets=BATCH_BUCKETS,
            registry=None,
        ).labels(endpoint)
        seconds = Histogram(
            "rnnserve_model_seconds", "model time per call", ["endpoint"], buckets=LATENCY_BUCKETS, registry=None
        ).labels(endpoint)
        lit_api.batch = _count_batch(lit_api.batch, merged)
        lit_api.predict = _timed(lit_api.predict, seconds)


def _count_batch(batch: Callable[[list[Any]], Any], merged: Any) -> Callable[[list[Any]], Any]:
    def counted(inputs: list[Any]) -> Any:
        merged.observe(len(inputs))
        return batch(inputs)

    return counted


def _timed(predict: Callable[[Any], Any], seconds: Any) -> Callable[[Any], Any]:
    def timed(x: Any) -> Any:
        with seconds.time():
            return predict(x)

    return timed


def _count_generated(encode: Callable[[Any], Iterator[Any]], generated: Any) -> Callable[[Any], Iterator[Any]]:
    def counted(outputs: Any) -> Iterator[Any]:
        for piece in encode(outputs):
            if getattr(piece, "generated_tokens", None) is not None:  # the last piece, cancelled generations too
                generated.inc(piece.generated_tokens)
            yield piece

    return counted


class ServerCollector:
    """Read at scrape time in the answering process: requests waiting in each worker queue, and the models."""

    def __init__(self, server: ls.LitServer, models: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self.server, self.models = server, models

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily("rnnserve_queue_depth", "requests waiting for a worker", labels=["endpoint"])
        for path, queue in sorted(getattr(self.server, "litapi_request_queues", {}).items()):
            try:
                queued.add_metric([path], float(queue.qsize()))
            except (NotImplementedError, OSError, EOFError):  # qsize is not available on every platform
                continue
        yield queued
        info = GaugeMetricFamily("rnnserve_model_info", "the models served", labels=["task", "name", "version"])
        for m in self.models():
            info.add_metric([str(m["task"]), str(m["name"]), str(m["version"])], 1.0)
        yield info


ANSWER_READER = "response_queue_to_buffer"  # the name LitServe gives an HTTP process's task that reads the answers


def answer_reader_running() -> bool:
    """Whether this HTTP process still reads the workers' answers. LitServe's reader task ends on its first error;
    after that every inference request to the process waits until its client gives up, while the port still answers
    (seen in CI before `service.transport` read without blocking). Call inside the process's event loop."""
    return any(task.get_name().startswith(ANSWER_READER) and not task.done() for task in asyncio.all_tasks())


def add_operations_routes(
    server: ls.LitServer, metrics_dir: str, models: Callable[[], Iterable[dict[str, Any]]]
) -> None:
    """GET /metrics, /livez, /readyz. None needs an API key (the guard only covers the inference routes)."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    registry.register(ServerCollector(server, models))
    health = next(
        r.endpoint
        for r in server.app.router.routes
        if isinstance(r, APIRoute) and r.path == server.healthcheck_path and "GET" in (r.methods or ())
    )

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def livez() -> JSONResponse:
        if not answer_reader_running():  # a restart is the remedy: exactly what a failing liveness probe brings
            return JSONResponse({"status": "not reading the workers' answers"}, status_code=503)
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        # LitServe's /health, the same answer; as text/plain, which it sends without a content type
        answer = await health(request)
        return PlainTextResponse(bytes(answer.body), status_code=answer.status_code)

    app = server.app
    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics", include_in_schema=True)
    app.add_api_route(
        "/livez", livez, methods=["GET"], summary="Liveness: the HTTP process answers and reads the workers' answers"
    )
    probe: dict[str, Any] = {
        "methods": ["GET"],
        "response_class": PlainTextResponse,
        "responses": {
            200: {"content": {"text/plain": {"schema": {"type": "string", "const": "ok"}}}},
            503: {"description": "not ready", "content": {"text/plain": {"schema": {"type": "string"}}}},
        },
    }
    app.router.routes.remove(next(r for r in app.router.routes if getattr(r, "endpoint", None) is health))
    app.add_api_route(server.healthcheck_path, readyz, summary="Every model loaded and warmed (LitServe's)", **probe)
    app.add_api_route("/readyz", readyz, summary="Readiness: every model loaded and warmed", **probe)
