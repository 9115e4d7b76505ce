"""Entry point: `python -m service.server`. Puts the layers together: the three LitAPIs (`service.apis`, run in
worker processes by LitServe with our loops and queues, `service.litserve_ext`), our routes for the three endpoints
and /info, the guard, request logs and metrics, the probes and the page (`service.web`), and SIGTERM handled like
SIGINT (LitServe alone orphans its workers on SIGTERM).

GET /health is LitServe's: 503 until every worker has loaded, checked and warmed its model, then 200 (the HTTP
port only opens once the first worker is ready). It needs no API key.

A worker process that dies is not replaced (LitServe 0.2.19 stops the whole server): the routes answer its
requests with 503 and `main` exits with status 1, for the orchestrator to restart the server.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.managers import SyncManager
from typing import Any

import litserve as ls

from service.apis.base import LOG_FORMAT
from service.apis.generate import GenerateAPI
from service.apis.ner import NerAPI
from service.apis.sentiment import SentimentAPI
from service.gc_policy import quiet_gc
from service.litserve_ext import WORKER_DIED, Server, forked_http_process, start_manager, stop_children
from service.litserve_ext.client import LitServeWorkers
from service.runtime import ArtifactError, verify_files
from service.schemas import limited_models
from service.settings import Settings
from service.status import WorkerStatus
from service.tasks import ENDPOINTS, TASKS
from service.web.docs import add_docs_routes, describe
from service.web.generations import Generations
from service.web.guard import GuardMiddleware
from service.web.hf_api import add_hf_routes
from service.web.metrics import WorkerMetrics, add_metrics_route, fresh_directory, use_directory
from service.web.observe import RequestObserver
from service.web.openai_api import add_openai_routes
from service.web.page import add_page_route
from service.web.probes import add_probe_routes
from service.web.routes import add_error_handlers, add_inference_routes, add_info_route
from service.web.tgi_api import add_tgi_routes
from service.web.timeline import TimelineMiddleware, TimelineStore, add_timeline_route

logger = logging.getLogger(__name__)


# The other protocols' inference routes (guarded like ours): OpenAI's, TGI's (POST / only: GET / is the page) and
# the Hugging Face task routes.
COMPAT_ROUTES = [
    "/v1/completions",
    "/v1/models",
    "POST /",
    "/generate_stream",
    "/hf/text-classification",
    "/hf/token-classification",
]


@dataclass(frozen=True)
class APIClasses:
    """The LitAPI class of each task (bench baseline (b) passes subclasses that load PyTorch instead)."""

    generate: type[GenerateAPI] = GenerateAPI
    sentiment: type[SentimentAPI] = SentimentAPI
    ner: type[NerAPI] = NerAPI


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


def build_server(
    settings: Settings,
    status: WorkerStatus,
    cancellations: MutableMapping[str, float] | None = None,
    manager: SyncManager | None = None,
    classes: APIClasses = APIClasses(),  # frozen: one shared default is safe
) -> Server:
    facts = manifest_facts(settings)  # a bad artifact stops start-up here, before any worker process starts
    metrics_dir = str(fresh_directory())  # per-process metric files, added up by GET /metrics (service/web/metrics.py)
    use_directory(metrics_dir)
    metrics = WorkerMetrics(metrics_dir)
    apis: list[ls.LitAPI] = [
        classes.generate(settings, status, cancellations, metrics),
        classes.sentiment(settings, status, metrics),
        classes.ner(settings, status, metrics),
    ]
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    guard = {
        "protected": [a.api_path for a in apis] + COMPAT_ROUTES,
        "api_key": api_key,
        "max_body_bytes": settings.max_body_bytes,
        "max_in_flight": settings.max_in_flight,
    }
    counts = {
        "charlm": settings.workers_generate,
        "sentiment": settings.workers_sentiment,
        "ner": settings.workers_ner,
    }
    middlewares: list[tuple[Any, dict[str, Any]]] = [  # the last one is the outermost
        (GuardMiddleware, guard),
        (RequestObserver, {"metrics_dir": metrics_dir, "access_log": settings.access_log}),
    ]
    timeline = TimelineStore(settings.timeline_samples) if settings.timeline else None
    if timeline is not None:  # outermost: its first stamp is the earliest the app sees a request
        middlewares.append((TimelineMiddleware, {"store": timeline}))
    server = Server(
        apis,
        accelerator="cpu",  # "auto" imports torch to look for MPS; onnxruntime picks CUDA itself (runtime.py)
        workers_per_device={ENDPOINTS[task]: count for task, count in counts.items()},
        timeout=settings.request_timeout,
        middlewares=middlewares,  # request ids, metrics and logs see the guard's answers too
        manager=manager,
    )
    workers = LitServeWorkers(server)
    models = limited_models(settings.limits())
    add_inference_routes(server.app, workers, models, status, cancellations)
    charlm = next(f for f in facts if f["task"] == "charlm")
    created = int(datetime.fromisoformat(charlm["created"]).timestamp())
    generations = Generations(workers, status, cancellations)
    add_openai_routes(server.app, generations, models, charlm["model"], created)
    add_tgi_routes(server.app, generations, models)
    add_hf_routes(server.app, workers, models, generations.alive)
    add_info_route(server, lambda: facts, status)
    add_error_handlers(server.app)
    add_metrics_route(server.app, workers, metrics_dir, lambda: facts)
    add_probe_routes(server)
    if timeline is not None:
        add_timeline_route(server.app, timeline)
    add_page_route(server.app)
    describe(server.app)
    add_docs_routes(server.app)
    return server


def main(classes: APIClasses = APIClasses()) -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # shut down like Ctrl+C: workers are stopped too
    os.register_at_fork(after_in_child=forked_http_process)
    if settings.gc_quiet:  # the HTTP processes are forked with the app built: freeze it in each
        os.register_at_fork(after_in_child=quiet_gc)
    manager = start_manager()
    try:
        try:
            server = build_server(settings, manager.dict(), manager.dict(), manager, classes)
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
                access_log=False,  # service.web.observe logs each request as JSON instead
            )
        except WORKER_DIED:
            # Our routes have answered the dead worker's requests with 503.
            logger.error("a model worker process died: exiting with status 1 so that the server is restarted")
            raise SystemExit(1) from None
    finally:
        manager.shutdown()
        stop_children()


if __name__ == "__main__":
    main()
