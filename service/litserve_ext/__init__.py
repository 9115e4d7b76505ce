"""Everything of rnnserve that reaches into LitServe's private names, behind a small surface of our own. The rest of
`service/` uses what is imported here and LitServe's public API (`ls.LitAPI`, `ls.LitServer(...)`, `server.app`,
`server.run`) only. docs/operations.md, "Upgrading LitServe", lists each extension, what it replaces and why.

The surface:
- `Server`, `start_manager`, `WORKER_DIED`: the LitServer subclass (pipe queues, answer transport, our manager
  process, a stop that drains every HTTP process at once), its manager, what `run` raises when a worker died.
- `BlockingBatchedLoop`, `ContinuousGenerationLoop`: the two worker loops; `BatchedAPI`, `GenerationAPI`,
  `LoopMetrics`: what they call.
- `client`: the HTTP side of the request/answer protocol (`answer`, `pieces`, `ClientGone`, `queue_depths`);
  `protocol`: the protocol itself (`Job`, `Outbox`).
- `answer_reader_running`, `take_health_route`: what the probes watch.
- `die_with_parent`, `forked_http_process`, `worker_process`, `stop_children`: the processes' life and death.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

LITSERVE_VERSION = "0.2.19"  # the version every extension was written against and tested with (pyproject.toml)


def check_litserve_version(found: str | None = None) -> None:
    """Refuse to run on another LitServe: the extensions replace private methods, queues and a loop protocol whose
    names and shapes change between LitServe releases without notice, and a mismatch would not fail loudly (the
    server would start, then hang requests or orphan workers)."""
    if found is None:
        try:
            found = version("litserve")
        except PackageNotFoundError:
            found = "none"
    if found != LITSERVE_VERSION:
        raise ImportError(
            f"service.litserve_ext needs litserve=={LITSERVE_VERSION}, found {found}: it extends LitServe's private "
            "internals (queues, worker loops, transport, shutdown), which change between releases. Install the "
            "pinned version, or follow docs/operations.md, 'Upgrading LitServe', to move the pin."
        )


check_litserve_version()

# Imported after the check: these modules import LitServe's internals.
from service.litserve_ext.batched_loop import BlockingBatchedLoop  # noqa: E402
from service.litserve_ext.contracts import BatchedAPI, GenerationAPI, LoopMetrics  # noqa: E402
from service.litserve_ext.generate_loop import ContinuousGenerationLoop  # noqa: E402
from service.litserve_ext.probes import answer_reader_running, take_health_route  # noqa: E402
from service.litserve_ext.processes import (  # noqa: E402
    die_with_parent,
    forked_http_process,
    stop_children,
    worker_process,
)
from service.litserve_ext.server import WORKER_DIED, Server, start_manager  # noqa: E402

__all__ = [
    "LITSERVE_VERSION",
    "WORKER_DIED",
    "BatchedAPI",
    "BlockingBatchedLoop",
    "ContinuousGenerationLoop",
    "GenerationAPI",
    "LoopMetrics",
    "Server",
    "answer_reader_running",
    "check_litserve_version",
    "die_with_parent",
    "forked_http_process",
    "start_manager",
    "stop_children",
    "take_health_route",
    "worker_process",
]
