"""The setup the three LitAPIs share: in a freshly spawned worker process, load and check the task's artifact,
build the task's model around it and warm it up, then report the worker for GET /info."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import litserve as ls

from service.gc_policy import quiet_gc
from service.litserve_ext import BlockingBatchedLoop, LoopMetrics, worker_process
from service.runtime import OnnxModel
from service.settings import Settings
from service.status import WorkerStatus, report
from service.tasks import ENDPOINTS

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


class ModelAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type hints
    task: ClassVar[str]  # charlm, sentiment or ner: the artifact directory; its URL path is ENDPOINTS[task]

    def __init__(self, settings: Settings, status: WorkerStatus | None = None, **options: Any) -> None:
        super().__init__(api_path=ENDPOINTS[self.task], **options)
        self.settings, self.status = settings, status

    def setup(self, device: str) -> None:
        worker_process()
        if not logging.getLogger().handlers:  # a spawned worker starts with logging unconfigured
            logging.basicConfig(level=self.settings.log_level.upper(), format=LOG_FORMAT)
        model = self.load_model()
        self.prepare(model)
        self.model_id = model.manifest.model_id
        report(self.status, model)
        if self.settings.gc_quiet:  # last: the model and its warm-up garbage are in place
            quiet_gc()

    def load_model(self) -> OnnxModel:
        """The task's checked artifact in an onnxruntime session (bench baseline (b) loads PyTorch here instead)."""
        s = self.settings
        return OnnxModel.load(
            s.artifact_dir(self.task), device=s.device, threads=s.threads_for(self.task), chunk_threads=s.chunk_threads
        )

    def prepare(self, model: OnnxModel) -> None:
        """Build the task's model around `model` and warm it up."""
        raise NotImplementedError


class BatchedModelAPI(ModelAPI):
    """/sentiment and /ner: requests batched dynamically by our blocking loop (LitServe's own polls its queue every
    millisecond, even idle), up to `max_batch_size` requests or `batch_timeout` seconds."""

    def __init__(
        self, settings: Settings, status: WorkerStatus | None = None, metrics: LoopMetrics | None = None
    ) -> None:
        super().__init__(
            settings,
            status,
            max_batch_size=settings.max_batch_size,
            batch_timeout=settings.batch_timeout,
            loop=BlockingBatchedLoop(metrics, timeline=settings.timeline),
        )
