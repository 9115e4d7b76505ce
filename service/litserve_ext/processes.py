"""The processes LitServe starts (spawned workers, forked HTTP processes, our manager): each dies with its parent,
and a stop leaves none behind."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import signal
import time
from contextlib import suppress

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent goes (PR_SET_PDEATHSIG), so that a server
    killed with SIGKILL leaves no worker, HTTP or manager process behind."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def forked_http_process() -> None:
    """Runs in each HTTP process as LitServe forks it (`os.register_at_fork`): die with the parent, and take the
    default action for SIGINT and SIGTERM. uvicorn catches them itself, drains, then raises the signal again under
    the handler it found: with the main process's KeyboardInterrupt handlers inherited, every stop printed one
    traceback per HTTP process."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def worker_process() -> None:
    """Runs first in each spawned inference worker (spawned processes run no fork hooks)."""
    die_with_parent()
    # Ctrl+C in a terminal reaches every process of the group; the main process stops the workers itself
    # (SIGTERM), so a worker that also took SIGINT only added a KeyboardInterrupt traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
