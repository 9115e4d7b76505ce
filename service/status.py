"""What each inference worker reports about itself once its model is loaded (GET /info), and whether the workers of
a task still live (the routes answer 503 for a dead one). A mapping shared across processes (the manager's)."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from service.runtime import OnnxModel

WorkerStatus = MutableMapping[str, dict[str, Any]]


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
