"""Every request seen from the outside, in the HTTP processes: an `X-Request-ID` (the client's, or a new one, echoed
back), the HTTP metrics (requests, errors, latency, time to first byte, requests in flight) and one JSON log line
on the logger `service.access` (method, path, status, duration, id; never the body). An ASGI middleware, the
outermost, so that it sees the guard's answers too. Every count is written before the response's last byte
leaves, so a scrape sent after a response has arrived already includes it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.metrics import LATENCY_BUCKETS, use_directory

REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")  # a client's id is echoed only if it is this tame
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_logger = logging.getLogger("service.access")


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
