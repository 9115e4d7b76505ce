"""What each inference worker reports about itself once its model is loaded, for GET /info."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import MutableMapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from service.runtime import OnnxModel
from service.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
WorkerStatus = MutableMapping[str, dict[str, Any]]


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent goes (PR_SET_PDEATHSIG), so that a server
    killed with SIGKILL leaves no worker, HTTP or manager process behind."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def load_model(settings: Settings, task: str) -> OnnxModel:
    """Runs in a freshly spawned worker process, where logging is not configured yet."""
    die_with_parent()  # spawned workers do not run fork hooks: ask here
    # Ctrl+C in a terminal reaches every process of the group; the main process stops the workers itself
    # (SIGTERM), so a worker that also took SIGINT only added a KeyboardInterrupt traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    return OnnxModel.load(
        settings.artifact_dir(task),
        device=settings.device,
        threads=settings.threads_for(task),
        chunk_threads=settings.chunk_threads,
    )


def report(status: WorkerStatus | None, model: OnnxModel) -> None:
    """Record the providers really in use and whether torch got imported (it must not be) in this process."""
    if status is not None:
        status[f"{model.manifest.task}:{os.getpid()}"] = {
            **model.describe(),
            "pid": os.getpid(),
            "torch_imported": "torch" in sys.modules,
        }


def workers_alive(status: WorkerStatus, task: str) -> bool:
    """False once a worker process of `task` that reported itself has died (killed, crashed: LitServe 0.2.19 then
    shuts the whole server down rather than answering the requests that worker held). Linux: reads /proc."""
    try:
        pids = [int(v["pid"]) for k, v in status.items() if k.startswith(f"{task}:")]
    except (OSError, EOFError):  # the manager process is gone: the server is going down
        return False
    return all(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return not Path("/proc/self").exists()  # no /proc: cannot tell, assume alive
    return state not in ("Z", "X")
