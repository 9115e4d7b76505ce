"""Every knob of the server, read once from `RNNSERVE_*` environment variables in `main()` and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.limits import Limits

# The repository's committed artifacts, found from this file rather than from the current directory.
DEFAULT_ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


class Settings(BaseSettings, Limits):
    model_config = SettingsConfigDict(env_prefix="RNNSERVE_", extra="forbid", frozen=False)

    host: Literal["127.0.0.1", "0.0.0.0", "::"] = Field(default="127.0.0.1", description="interface to bind")
    port: int = Field(default=8000, ge=1024, le=65535)
    artifacts: Path = Field(default=DEFAULT_ARTIFACTS, description="directory holding charlm/, sentiment/, ner/")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when onnxruntime offers it")
    api_key: SecretStr | None = Field(default=None, description="when set, inference routes need X-API-Key or Bearer")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(default=True, description="one JSON line per request on stderr, whatever log_level")

    # The request limits (max_text_chars, max_new_tokens, ...) are inherited from `Limits`, declared there once.
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger request bodies get 413")
    request_timeout: float = Field(default=60.0, gt=0, description="seconds a request may wait in a worker queue")
    max_in_flight: int = Field(
        default=256,
        ge=0,
        description="inference requests one HTTP process holds at once (queued or running); more get 503 at once "
        "with Retry-After (0: no limit)",
    )

    # Processes and threads: ORT threads default to cores / total inference workers (never all cores each).
    # Two HTTP processes: the single one saturated first under load (sweep in docs/benchmarks.md: /sentiment at 32
    # clients +20-37 % in two runs, +12 MB).
    api_servers: int = Field(
        default=2, ge=1, description="HTTP server processes (LitServe's default is one per worker)"
    )
    workers_generate: int = Field(default=1, ge=1)
    workers_sentiment: int = Field(default=1, ge=1)
    workers_ner: int = Field(default=1, ge=1)
    ort_threads: int | None = Field(
        default=None, ge=1, description="intra-op threads per worker; default cores / workers"
    )
    # /generate steps are sequential (one character after another), so only threads inside a call can use a second
    # core; /sentiment and /ner spread large batches over `chunk_threads` instead. docs/benchmarks.md shows it: the
    # char LM's model-only rows at 1 and 2 threads, and the sweep's RNNSERVE_GENERATE_THREADS=1 row (the old default)
    # next to RNNSERVE_ORT_THREADS=2 (every worker at 2 threads, which costs /sentiment and /ner).
    generate_threads: int | None = Field(
        default=None,
        ge=1,
        description="intra-op threads per /generate worker; default: ort_threads if set, else cores / workers, at "
        "least 2",
    )

    # Streaming: each event is an inter-process message plus an HTTP chunk, so characters are sent in groups.
    stream_interval: float = Field(
        default=0.02, ge=0, description="/generate streaming: at most one event per this many seconds (0: per piece)"
    )

    generate_max_batch: int = Field(
        default=32, ge=1, description="/generate: generations stepped together per worker (more wait in the queue)"
    )

    chunk_threads: int = Field(
        default=2, ge=1, description="threads running the length-sorted chunks of one large /sentiment or /ner batch"
    )

    # service/gc_policy.py: frozen start-up objects and rarer young collections in the workers and HTTP processes.
    gc_quiet: bool = Field(default=True, description="gc.freeze() after start-up and a young threshold of 10,000")

    # Off in production: on, every /sentiment and /ner answer carries its worker-side stamps and each HTTP process
    # keeps the last `timeline_samples` requests' timelines for GET /debug/timeline (bench/tail.py reads them).
    timeline: bool = Field(default=False, description="per-request timeline of /sentiment and /ner at /debug/timeline")
    timeline_samples: int = Field(default=4096, ge=1, description="requests each HTTP process keeps for the timeline")

    # Dynamic batching of /sentiment and /ner requests.
    max_batch_size: int = Field(
        default=16, ge=2, description="requests merged into one model call (>= 2: batched loop)"
    )
    batch_timeout: float = Field(
        default=0.0, ge=0, description="seconds to wait for more requests; 0: take what is queued"
    )

    @property
    def total_workers(self) -> int:
        return self.workers_generate + self.workers_sentiment + self.workers_ner

    @property
    def threads_per_worker(self) -> int:
        if self.ort_threads is not None:
            return self.ort_threads
        return max(1, (os.cpu_count() or 1) // self.total_workers)

    def threads_for(self, task: str) -> int:
        """Intra-op threads of one worker of `task` (charlm, sentiment, ner)."""
        if task != "charlm":
            return self.threads_per_worker
        if self.generate_threads is not None:
            return self.generate_threads
        if self.ort_threads is not None:  # chosen explicitly (containers should): the same for every worker
            return self.ort_threads
        return max(self.threads_per_worker, min(2, os.cpu_count() or 1))

    def artifact_dir(self, task: str) -> Path:
        return self.artifacts / task

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in Limits.model_fields})
