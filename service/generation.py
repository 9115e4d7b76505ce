"""Character generation with the stateful char LM: the whole prompt in ONE onnxruntime call (prefill), then one
call per new character that carries the LSTM state, so each character costs the same whatever the prompt length.

Concurrent generations are not stepped together as one batch: each worker runs one generation at a time, and
more workers (RNNSERVE_WORKERS_GENERATE) give more concurrency. Batching them would need continuous batching
(requests joining and leaving a running batch). LitServe 0.2.19's static batched streaming loop makes a new
request wait for the longest running one; its ContinuousBatchingLoop spins a core while idle (`run` returns at
once without active requests and is called again after `sleep(0)`), calls `add_request` on the event loop thread
while `step` runs on another thread, and would make a seeded text depend on which other requests shared its
batch (float round-off differs with the batch shape). Not clean enough to take on here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rnntext.encoders import CharEncoder
from service.runtime import ArtifactError, OnnxModel, check_width
from service.sampling import SamplingParams, sample
from service.schemas import FinishReason, GenerateRequest
from service.stops import StopScanner

State = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Piece:
    """Text released by a generation. The last piece carries `generated_tokens`, and `finish_reason` unless the
    generation was cancelled (its client went away)."""

    text: str
    finish_reason: FinishReason | None = None
    generated_tokens: int | None = None


class Cancellation:
    """Whether the HTTP side has flagged `request_id` in `flags` (a mapping shared across processes: its client
    went away). Asked before every step, it looks at the mapping (an inter-process call) at most every
    `interval` seconds, the first time at once."""

    def __init__(
        self,
        flags: MutableMapping[str, float],
        request_id: str,
        interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flags, self.request_id, self.interval, self.clock = flags, request_id, interval, clock
        self.last: float | None = None

    def __call__(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        try:
            return self.flags.pop(self.request_id, None) is not None
        except (OSError, EOFError):  # the manager is gone: the server is shutting down
            return True


class CharGenerator:
    def __init__(self, model: OnnxModel) -> None:
        io = model.manifest.io
        if not isinstance(model.encoder, CharEncoder) or io.tokens is None or io.logits is None or not io.state:
            raise ArtifactError(
                f"{model.directory / 'manifest.json'}: io check failed: a char LM needs tokens, logits, state"
            )
        self.model, self.encoder = model, model.encoder
        self.tokens_name, self.logits_name = io.tokens, io.logits
        self.state_pairs = list(io.state)
        self.state_shapes = {i: self._state_shape(i) for i, _ in self.state_pairs}
        self.start_text = str(model.manifest.encoder.get("start_text", "\n"))
        unk = self.encoder.vocab.unk_id
        self.banned = [unk] if unk is not None else []

    def _state_shape(self, name: str) -> tuple[int, int]:
        """(layers, hidden) of a state input, from the graph (fixed there) or else the manifest's architecture."""
        shape = next(a.shape for a in self.model.session.get_inputs() if a.name == name)
        arch = self.model.manifest.architecture
        layers = shape[0] if isinstance(shape[0], int) else arch.get("layers")
        hidden = shape[2] if isinstance(shape[2], int) else arch.get("hidden")
        if not isinstance(layers, int) or not isinstance(hidden, int):
            raise ArtifactError(f"{self.model.directory}: state check failed: cannot tell the shape of {name!r}")
        return layers, hidden

    def warm_up(self) -> None:
        logits, state = self.prefill(self.encoder.encode("ab"))
        check_width(self.model, logits, list(self.encoder.vocab.tokens), "vocabulary")
        self.step(0, state)

    def prefill(self, ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], State]:
        feeds: dict[str, Any] = {self.tokens_name: ids.reshape(1, -1)}
        for name, (layers, hidden) in self.state_shapes.items():
            feeds[name] = np.zeros((layers, 1, hidden), dtype=np.float32)
        return self._run(feeds)

    def step(self, token: int, state: State) -> tuple[npt.NDArray[np.float32], State]:
        return self._run({self.tokens_name: np.array([[token]], dtype=np.int64), **state})

    def _run(self, feeds: dict[str, Any]) -> tuple[npt.NDArray[np.float32], State]:
        names = [self.logits_name, *(out for _, out in self.state_pairs)]
        logits, *states = self.model.session.run(names, feeds)
        state = {inp: value for (inp, _), value in zip(self.state_pairs, states, strict=True)}
        return logits[0, -1], state

    def generate(self, request: GenerateRequest, cancelled: Callable[[], bool] | None = None) -> Iterator[Piece]:
        """Yield text as soon as it is safe to release; the last piece carries the finish reason. When `cancelled()`
        turns true, stop with an empty last piece that has no finish reason."""
        params = SamplingParams(request.temperature, request.top_k, request.top_p)
        rng = np.random.default_rng(request.seed)
        logits, state = self.prefill(self.encoder.encode(request.prompt or self.start_text))
        scanner = StopScanner(request.stop)
        for n in range(1, request.max_new_tokens + 1):
            if cancelled is not None and cancelled():
                yield Piece("", None, n - 1)
                return
            token = sample(logits, params, rng, self.banned)
            text, stopped = scanner.push(self.encoder.decode([token]))
            if stopped:
                yield Piece(text, "stop", n)
                return
            if n == request.max_new_tokens:
                yield Piece(text + scanner.flush(), "length", n)
                return
            if text:
                yield Piece(text)
            logits, state = self.step(token, state)


def coalesce(pieces: Iterator[Piece], interval: float, clock: Callable[[], float] = time.monotonic) -> Iterator[Piece]:
    """Merge pieces so that at most one leaves every `interval` seconds (the first at once, the final with whatever
    is pending). Each streamed piece costs an inter-process message and an HTTP chunk (measured ~0.6 ms, more than
    a generation step), so one event per character would spend most of the time on transport."""
    pending, last = "", None
    for piece in pieces:
        now = clock()
        if piece.generated_tokens is not None:  # the last piece
            yield Piece(pending + piece.text, piece.finish_reason, piece.generated_tokens)
            return
        pending += piece.text
        if last is None or now - last >= interval:
            yield Piece(pending)
            pending, last = "", now
    if pending:
        yield Piece(pending)


def generate_text(
    generator: CharGenerator, request: GenerateRequest, cancelled: Callable[[], bool] | None = None
) -> Piece:
    """The whole generation as one piece (non-streaming answers)."""
    parts, last = [], Piece("")
    for last in generator.generate(request, cancelled):
        parts.append(last.text)
    return Piece("".join(parts), last.finish_reason, last.generated_tokens)
