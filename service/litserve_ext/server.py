"""`Server`: LitServer with our queues, answer transport, manager and stop. LitServe keeps spawning the workers,
tracking their readiness, forking the HTTP processes (uvicorn), running its answer reader and its worker monitor.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import threading
import time
from multiprocessing.managers import SyncManager
from typing import Any

import litserve as ls

from service.litserve_ext.processes import die_with_parent
from service.litserve_ext.transport import PipeTransport

MONITOR_THREAD = "litserve-monitoring"  # LitServe's name for the thread that watches the inference workers
MONITOR_POLL_S = 0.5  # how often it looks: a dead worker is found sooner, and a stop waits at most this for it

# What `Server.run` raises in the main process when a worker died: LitServe 0.2.19 does not replace it, its
# monitor stops everything, and the main thread's wait then loses its manager.
WORKER_DIED = (EOFError, ConnectionError)


class Server(ls.LitServer):  # type: ignore[misc]  # litserve ships no type hints
    """LitServer with pipes between the HTTP processes and the workers: a `multiprocessing` queue per endpoint for
    requests, and `PipeTransport` (one pipe per HTTP process, read by its event loop) for answers, in place of
    LitServe's manager queues (a round trip to the manager process per put and get; the profile that led here is in
    docs/operations.md, "Upgrading LitServe"). A pipe queue's put hands the item to a feeder thread and returns, so
    the event loop never blocks on a full pipe. The manager stays for the shared dictionaries and events: one
    process, ours, spawned (`_init_manager`). The stop is ours too (`_perform_graceful_shutdown`). Known cost: a
    worker killed while it holds a lock of a queue or pipe would block the others; a dead worker stops the whole
    server anyway (`service.server.main`).
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
