"""What the worker loops need from a LitAPI and from the metrics: typed contracts, so that a LitAPI (or a test's
stand-in) is checked against what the loop really calls, and nothing is replaced on the LitAPI at run time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from service.tasks.generation import Generation, Piece


class BatchedAPI(Protocol):
    """A /sentiment or /ner LitAPI, as `BlockingBatchedLoop` calls it."""

    max_batch_size: int
    batch_timeout: float
    request_timeout: Any  # seconds, or -1 / False / None for no limit (LitServe's convention)

    def decode_request(self, request: Any) -> Any: ...

    def batch(self, inputs: list[Any]) -> Any: ...

    def predict(self, x: Any) -> Any: ...

    def unbatch(self, output: Any) -> list[Any]: ...

    def encode_response(self, output: Any) -> Any: ...


class Release(Protocol):
    """How a generation's pieces leave the worker: grouped (streaming) or whole (`service.tasks.generation`)."""

    def push(self, piece: Piece) -> Piece | None: ...


class Stepper(Protocol):
    """The char LM's batched steps (`service.tasks.generation.CharGenerator`)."""

    def prefill_some(self, generation: Generation, limit: int = ..., keep: int = ...) -> None: ...

    def tick(self, generations: list[Generation]) -> list[Piece | None]: ...


class GenerationAPI(Protocol):
    """The /generate LitAPI, as `ContinuousGenerationLoop` calls it."""

    request_timeout: Any

    @property
    def generator(self) -> Stepper: ...

    def decode_request(self, request: Any) -> Any: ...

    def begin(self, request: Any) -> tuple[Generation, Release]: ...

    def encode_response(self, pieces: Iterator[Piece]) -> Any: ...

    def format_encoded_response(self, data: Any) -> Any: ...


class LoopMetrics(Protocol):
    """What the loops report (`service.web.metrics.WorkerMetrics`). It travels to the worker process inside the
    loop (pickled), and `bind` runs there before the first report."""

    def bind(self, endpoint: str) -> None: ...

    def batch(self, requests: int, seconds: float) -> None:
        """One model call: how many requests it merged, and how long `predict` took."""

    def generated(self, characters: int) -> None:
        """A generation ended (finished or cancelled) after `characters`."""
