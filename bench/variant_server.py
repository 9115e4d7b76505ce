"""Our server with candidate code changes switched on, to measure them before anyone edits service/ (bench only).

`RNNSERVE_BENCH_VARIANT` is a comma-separated list of:
- `fastqueue`: `LitServer(fast_queue=True)`, LitServe's ZeroMQ transport for worker -> HTTP responses. The default
  transport receives every response (every streamed piece too) with `asyncio.to_thread(queue.get)`, one thread
  hop per message (litserve/transport/process_transport.py).

    RNNSERVE_BENCH_VARIANT=fastqueue python -m bench.variant_server
"""

from __future__ import annotations

import os
from typing import Any

import litserve as ls

from service import server

VARIANTS = ("fastqueue",)


def main() -> None:
    variants = {v.strip() for v in os.environ.get("RNNSERVE_BENCH_VARIANT", "").split(",") if v.strip()}
    unknown = variants - set(VARIANTS)
    if unknown:
        raise SystemExit(f"RNNSERVE_BENCH_VARIANT: unknown {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    if "fastqueue" in variants:
        original = ls.LitServer

        class FastQueueServer(original):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, fast_queue=True, **kwargs)

        server.ls.LitServer = FastQueueServer  # type: ignore[misc]
    server.main()


if __name__ == "__main__":
    main()
