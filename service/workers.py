"""What each inference worker reports about itself once its model is loaded, for GET /info."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

from service.runtime import OnnxModel
from service.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
WorkerStatus = MutableMapping[str, dict[str, Any]]


def load_model(settings: Settings, task: str) -> OnnxModel:
    """Runs in a freshly spawned worker process, where logging is not configured yet."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    return OnnxModel.load(settings.artifact_dir(task), device=settings.device, threads=settings.threads_per_worker)


def report(status: WorkerStatus | None, model: OnnxModel) -> None:
    """Record the providers really in use and whether torch got imported (it must not be) in this process."""
    if status is not None:
        status[f"{model.manifest.task}:{os.getpid()}"] = {
            **model.describe(),
            "pid": os.getpid(),
            "torch_imported": "torch" in sys.modules,
        }
