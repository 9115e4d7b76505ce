"""Entry point: `python -m service.server`. One LitServer with the three LitAPIs (the worker side), our routes for
the three endpoints and /info (the HTTP side, `service.routes`), the API-key, body-size and JSON guard, and SIGTERM
handled like SIGINT (LitServe alone orphans its workers on SIGTERM).

GET /health is LitServe's: 503 until every worker has loaded, checked and warmed its model, then 200 (the HTTP
port only opens once the first worker is ready). It needs no API key.

A worker process that dies is not replaced (LitServe 0.2.19 stops the whole server): the routes answer its
requests with 503 and `main` exits with status 1, for the orchestrator to restart the server.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import MutableMapping
from multiprocessing.managers import SyncManager
from typing import Any

import litserve as ls

from service.api_generate import GenerateAPI
from service.api_ner import NerAPI
from service.api_sentiment import SentimentAPI
from service.metrics import RequestObserver, WorkerMetrics, add_operations_routes, fresh_directory, use_directory
from service.middleware import GuardMiddleware
from service.page import add_page_route
from service.routes import add_inference_routes, add_info_route, add_validation_handler
from service.runtime import ArtifactError, verify_files
from service.schemas import limited_models
from service.settings import TASKS, Settings
from service.transport import PipeTransport
from service.workers import LOG_FORMAT, WorkerStatus, die_with_parent

logger = logging.getLogger(__name__)

MONITOR_THREAD = "litserve-monitoring"  # LitServe's name for the thread that watches the inference workers
MONITOR_POLL_S = 0.5  # how often it looks: a dead worker is found sooner, and a stop waits at most this for it


def manifest_facts(settings: Settings) -> list[dict[str, Any]]:
    """Every artifact's file checks (manifest, sha256, vocabulary), run before any worker starts; facts for /info."""
    facts = []
    for task in TASKS:
        m, _ = verify_files(settings.artifact_dir(task))
        if m.task != task:
            raise ArtifactError(f"{settings.artifact_dir(task) / 'manifest.json'}: task check failed: says {m.task!r}")
        facts.append(
            {
                "task": task,
                "name": m.name,
                "version": m.version,
                "model": m.model_id,
                "sha256": m.sha256,
                "created": m.created,
                "metrics": m.metrics,
            }
        )
    return facts


class Server(ls.LitServer):  # type: ignore[misc]  # litserve ships no type hints
    """LitServer with pipes between the HTTP processes and the workers: a `multiprocessing` queue per endpoint for
    requests, and `PipeTransport` (one pipe per HTTP process, read by its event loop) for answers.

    LitServe 0.2.19 makes every request and response queue a `Manager().Queue()`: each put and get is a round trip
    to the manager process, which pickles, locks and answers. Profiled under 32 clients on /sentiment (py-spy), those
    round trips were 44 % of the sentiment worker's time and 29 % of the HTTP process's. A pipe queue's put hands
    the item to a feeder thread and returns (the event loop never blocks on a full pipe); its get reads the pipe.
    The manager stays for the shared dictionaries and events (one process, ours, spawned: `_init_manager`). The
    stop is ours too (`_perform_graceful_shutdown`). Known cost: a worker killed while it holds a lock of a queue or
    pipe would block the others; a dead worker stops the whole server anyway (`main`).
    """

    def __init__(self, *args: Any, manager: SyncManager | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.monitor_internal = MONITOR_POLL_S  # sic: LitServe's name; its default is 2 s
        self._manager = manager

    def _init_manager(self, num_api_servers: int) -> SyncManager:
        """LitServe's, with our queues and transport, and our manager in place of `mp.Manager()`. That one is a
        fork of this process made after the listening socket is bound: it held the socket open through a drain, so
        that new connections waited in its backlog, unanswered, instead of being refused. Ours is spawned (it holds
        nothing of this process) and one manager process serves both our dictionaries and LitServe's."""
        manager = start_manager() if self._manager is None else self._manager
        self.transport_config.manager = manager
        self.transport_config.num_consumers = num_api_servers
        self.workers_setup_status = manager.dict()
        self._shutdown_event = manager.Event()
        ctx = mp.get_context("spawn")  # queues go to the workers as Process arguments, to the HTTP processes by fork
        for lit_api in self.litapi_connector:
            self.litapi_request_queues[lit_api.api_path] = ctx.Queue()
        if self._logger_connector._loggers:
            self.logger_queue = manager.Queue()
        self._logger_connector.run(self)
        self._transport = PipeTransport(num_api_servers, ctx)
        return manager

    def _start_server(
        self, port: int, num_servers: int, log_level: str, sockets: list[socket.socket], *args: Any, **kwargs: Any
    ) -> dict[Any, Any]:
        """Fork the HTTP processes, then close this process's copy of the listening socket. Kept open here, it went on
        taking connections into its backlog after the HTTP processes had closed theirs to drain: a request sent during
        a drain waited, unanswered, until the whole server had exited or the client gave up. Now it is refused."""
        workers: dict[Any, Any] = super()._start_server(port, num_servers, log_level, sockets, *args, **kwargs)
        if all(isinstance(w, mp.process.BaseProcess) for w in workers.values()):  # not threads sharing our copy
            for sock in sockets:
                sock.close()
        return workers

    def _perform_graceful_shutdown(
        self, manager: SyncManager, uvicorn_workers: dict[Any, Any], shutdown_reason: str = "normal"
    ) -> None:
        """Drain every HTTP process at once. LitServe stops them one after another (SIGTERM, then wait up to its
        graceful timeout), so with two, the second kept taking new requests while the first finished its streams."""
        processes = [w for w in uvicorn_workers.values() if isinstance(w, mp.process.BaseProcess) and w.is_alive()]
        for process in processes:  # first: from here on no new request is taken
            process.terminate()
        if threading.current_thread().name != MONITOR_THREAD:  # the monitor stops everything when a worker dies
            self._stop_worker_monitor()  # while the HTTP processes drain
        deadline = time.monotonic() + self.uvicorn_graceful_timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        super()._perform_graceful_shutdown(manager, uvicorn_workers, shutdown_reason)

    def _stop_worker_monitor(self) -> None:
        """LitServe's worker monitor wakes every `monitor_internal` seconds and asks the manager whether to stop. Left
        running through a stop that outlasts one poll (seen under load), it either found the workers we had just
        terminated, logged "Worker died" and began a second shutdown, or asked the manager after it had gone and
        logged "Monitoring worker crashed" with a BrokenPipeError. So: tell it to stop, and wait for its next poll.

        It is told through a local event in place of the manager's: setting that one from here can block for good,
        because Ctrl+C interrupted this thread inside the proxy's `wait()`, and the manager still serves that call on
        this thread's connection."""
        stopped = threading.Event()
        stopped.set()
        self._shutdown_event = stopped  # the monitor reads the attribute at each poll; the HTTP processes have theirs
        for thread in threading.enumerate():
            if thread.name == MONITOR_THREAD:
                thread.join(timeout=self.monitor_internal + 1)


def start_manager() -> SyncManager:
    manager = SyncManager(ctx=mp.get_context("spawn"))
    manager.start(initializer=die_with_parent)
    return manager


def build_server(
    settings: Settings,
    status: WorkerStatus,
    cancellations: MutableMapping[str, float] | None = None,
    manager: SyncManager | None = None,
) -> Server:
    facts = manifest_facts(settings)  # a bad artifact stops start-up here, before any worker process starts
    apis: list[ls.LitAPI] = [
        GenerateAPI(settings, status, cancellations),
        SentimentAPI(settings, status),
        NerAPI(settings, status),
    ]
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    guard = {
        "protected": [a.api_path for a in apis],
        "api_key": api_key,
        "max_body_bytes": settings.max_body_bytes,
        "max_in_flight": settings.max_in_flight,
    }
    metrics_dir = str(fresh_directory())  # per-process metric files, added up by GET /metrics (service/metrics.py)
    use_directory(metrics_dir)
    server = Server(
        apis,
        accelerator="cpu",  # "auto" imports torch to look for MPS; onnxruntime picks CUDA itself (runtime.py)
        workers_per_device={
            "/generate": settings.workers_generate,
            "/sentiment": settings.workers_sentiment,
            "/ner": settings.workers_ner,
        },
        timeout=settings.request_timeout,
        middlewares=[  # the last one is the outermost: request ids, metrics and logs see the guard's answers too
            (GuardMiddleware, guard),
            (RequestObserver, {"metrics_dir": metrics_dir, "access_log": settings.access_log}),
        ],
        callbacks=[WorkerMetrics(metrics_dir)],
        manager=manager,
    )
    add_inference_routes(server, limited_models(settings.limits()), status, cancellations)
    add_info_route(server, lambda: facts, status)
    add_validation_handler(server.app)
    add_operations_routes(server, metrics_dir, lambda: facts)
    add_page_route(server.app)
    return server


def forked_http_process() -> None:
    """Runs in each HTTP process as LitServe forks it: die with the parent, and take the default action for SIGINT
    and SIGTERM. uvicorn catches them itself, drains, then raises the signal again under the handler it found:
    with `main`'s KeyboardInterrupt handlers inherited, every stop printed one traceback per HTTP process."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # shut down like Ctrl+C: workers are stopped too
    os.register_at_fork(after_in_child=forked_http_process)
    manager = start_manager()
    try:
        try:
            server = build_server(settings, manager.dict(), manager.dict(), manager)
        except (ArtifactError, ValueError, OSError) as err:
            logger.error("cannot serve: %s", err)
            raise SystemExit(1) from None
        logger.info(
            "serving %s on %s:%d, ORT threads per worker: %d (/generate %d)",
            settings.artifacts,
            settings.host,
            settings.port,
            settings.threads_per_worker,
            settings.threads_for("charlm"),
        )
        try:
            server.run(
                host=settings.host,
                port=settings.port,
                num_api_servers=settings.api_servers,
                generate_client_file=False,
                log_level=settings.log_level,
                access_log=False,  # service.metrics logs each request as JSON instead
            )
        except (EOFError, ConnectionError):
            # LitServe 0.2.19 does not replace a dead worker: its monitor thread stops everything (our routes have
            # answered the dead worker's requests with 503), and the main thread's wait then loses its manager.
            logger.error("a model worker process died: exiting with status 1 so that the server is restarted")
            raise SystemExit(1) from None
    finally:
        manager.shutdown()
        stop_children()


def stop_children(grace: float = 5.0) -> None:
    """Workers LitServe left running (it does not stop them when another worker fails to start) would keep this
    process from exiting, joined at exit while they wait on pipe queues (which, unlike manager queues, do not break
    when we go)."""
    children = mp.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()


if __name__ == "__main__":
    main()
