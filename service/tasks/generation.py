"""Character generation with the stateful char LM: the prompt through the model in a few long calls (prefill),
then one step per new character that carries the LSTM state, so each character costs the same whatever the prompt
length.

A `Generation` is one request in progress: its sampler, stop scanner, LSTM state and next logits. `CharGenerator.tick`
advances any number of them by one character with ONE model call for all of them (the rows of one batch), which is
what lets the /generate worker step concurrent requests together (`ContinuousGenerationLoop`). A generation still
reading its prompt takes part in the same call with its next prompt character: at batch 1 an LSTM step is bound by
reading the weights (8 MB per step for the 2x512 model, measured 0.29 ms per prompt character even in one long
call), while one more row in a batch of 16 costs ~0.03 ms. Prompts longer than `FOLD_MAX` first read their head
in long calls of `PREFILL_CHUNK`, so that a long prompt does not take thousands of ticks.

A row's numbers do not depend on its batch-mates or on how the prompt was split into calls (onnxruntime's CPU LSTM
computes each row alike at any batch size and sequence split; tested), so a seeded request gives the same text
alone or in company.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from rnntext.encoders import CharEncoder
from service.runtime import ArtifactError, OnnxModel, check_width
from service.schemas import FinishReason, GenerateRequest
from service.tasks.sampling import SamplingParams, sample
from service.tasks.stops import StopScanner

State = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Token:
    """One generated character: its id, its text and the model's own log-probability of it (before temperature,
    top-k and top-p: what a client scores text with)."""

    id: int
    text: str
    logprob: float


@dataclass(frozen=True)
class Piece:
    """Text released by a generation. The last piece carries `generated_tokens`, and `finish_reason` unless the
    generation was cancelled (its client went away), and `unknown_chars`: the prompt's characters outside the
    model's alphabet (read as <unk>). With `request.logprobs`, `tokens` are the released text's characters."""

    text: str
    finish_reason: FinishReason | None = None
    generated_tokens: int | None = None
    tokens: tuple[Token, ...] = ()
    unknown_chars: tuple[str, ...] = ()


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


PREFILL_CHUNK = 256  # prompt characters per long call: a long prompt joins a running batch without stalling it
FOLD_MAX = 128  # the last prompt characters are read one per tick, as rows of the shared step


class Generation:
    """One request in progress. `next_piece` samples the next character from `logits`; the caller then steps the
    model with `token` (unless `finished`) and stores the new logits and state."""

    def __init__(
        self,
        request: GenerateRequest,
        prompt_ids: npt.NDArray[np.int64],
        state: State,
        banned: list[int],
        cancelled: Callable[[], bool] | None,
        unknown_chars: tuple[str, ...] = (),
    ) -> None:
        self.request, self.banned, self.cancelled, self.unknown_chars = request, banned, cancelled, unknown_chars
        self.params = SamplingParams(request.temperature, request.top_k, request.top_p)
        self.rng = np.random.default_rng(request.seed)
        self.scanner = StopScanner(request.stop)
        self.unread = prompt_ids  # prompt ids not yet through the model
        self.state = state
        self.logits: npt.NDArray[np.float32] | None = None
        self.token = 0
        self.made = 0
        self.finished = False
        self.unreleased: list[Token] | None = [] if request.logprobs else None  # sampled, not yet released

    @property
    def prefilled(self) -> bool:
        return self.unread.size == 0

    def next_piece(self, decode: Callable[[int], str]) -> Piece | None:
        """Sample one character; the text that became safe to release (None if nothing), or the final piece."""
        assert self.logits is not None and not self.finished
        if self.cancelled is not None and self.cancelled():
            self.finished = True
            return Piece("", None, self.made, unknown_chars=self.unknown_chars)
        self.token = sample(self.logits, self.params, self.rng, self.banned)
        self.made += 1
        char = decode(self.token)
        if self.unreleased is not None:
            self.unreleased.append(Token(self.token, char, log_probability(self.logits, self.token)))
        text, stopped = self.scanner.push(char)
        if stopped:
            self.finished = True
            return Piece(text, "stop", self.made, self._tokens(text), self.unknown_chars)
        if self.made == self.request.max_new_tokens:
            text += self.scanner.flush()
            self.finished = True
            return Piece(text, "length", self.made, self._tokens(text), self.unknown_chars)
        return Piece(text, tokens=self._tokens(text)) if text else None

    def _tokens(self, text: str) -> tuple[Token, ...]:
        """The sampled characters that make up `text`, just released (released text is always a prefix of what
        was sampled and not yet released; a matched stop text is dropped, and its characters with it)."""
        if self.unreleased is None:
            return ()
        taken, size = 0, 0
        while size < len(text):
            size += len(self.unreleased[taken].text)
            taken += 1
        tokens, self.unreleased = tuple(self.unreleased[:taken]), self.unreleased[taken:]
        if self.finished:
            self.unreleased = []
        return tokens


def log_probability(logits: npt.NDArray[np.float32], token: int) -> float:
    scores = np.asarray(logits, dtype=np.float64)
    top = scores.max()
    return float(scores[token] - top - np.log(np.exp(scores - top).sum()))


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

    def zero_state(self) -> State:
        return {name: np.zeros((layers, 1, hidden), np.float32) for name, (layers, hidden) in self.state_shapes.items()}

    def prefill(self, ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], State]:
        logits, state = self._run(ids.reshape(1, -1), self.zero_state())
        return logits[0], state

    def step(self, token: int, state: State) -> tuple[npt.NDArray[np.float32], State]:
        logits, state = self._run(np.array([[token]], dtype=np.int64), state)
        return logits[0], state

    def _run(self, tokens: npt.NDArray[np.int64], state: State) -> tuple[npt.NDArray[np.float32], State]:
        """One model call for a batch: tokens [batch, time], state [layers, batch, hidden] -> last logits, state."""
        names = [self.logits_name, *(out for _, out in self.state_pairs)]
        logits, *states = self.model.session.run(names, {self.tokens_name: tokens, **state})
        return logits[:, -1], {inp: value for (inp, _), value in zip(self.state_pairs, states, strict=True)}

    def start(self, request: GenerateRequest, cancelled: Callable[[], bool] | None = None) -> Generation:
        prompt = self.encoder.encode(request.prompt or self.start_text)
        unknown = tuple(self.encoder.unknown_chars(request.prompt))
        return Generation(request, prompt, self.zero_state(), self.banned, cancelled, unknown)

    def prefill_some(self, generation: Generation, limit: int = PREFILL_CHUNK, keep: int = 0) -> None:
        """Read up to `limit` more prompt characters into the generation's state in one call, leaving at least
        `keep` of them for `tick`."""
        n = min(limit, generation.unread.size - keep)
        if n <= 0:
            return
        chunk, generation.unread = generation.unread[:n], generation.unread[n:]
        logits, generation.state = self._run(chunk.reshape(1, -1), generation.state)
        generation.logits = logits[0] if generation.prefilled else None

    def tick(self, generations: list[Generation]) -> list[Piece | None]:
        """One step for each unfinished generation, with one model call for all that go on: a generation still
        reading its prompt feeds its next prompt character, the others sample one (the released text, if any)."""
        pieces: list[Piece | None] = []
        for g in generations:
            if g.prefilled:
                pieces.append(g.next_piece(self._decode))
            else:
                g.token, g.unread = int(g.unread[0]), g.unread[1:]
                pieces.append(None)
        going = [g for g in generations if not g.finished]
        if going:
            tokens = np.array([[g.token] for g in going], dtype=np.int64)
            state = {name: np.concatenate([g.state[name] for g in going], axis=1) for name in self.state_shapes}
            logits, state = self._run(tokens, state)
            for row, g in enumerate(going):
                g.logits = logits[row]
                g.state = {name: value[:, row : row + 1] for name, value in state.items()}
        return pieces

    def _decode(self, token: int) -> str:
        return self.encoder.decode([token])

    def generate(self, request: GenerateRequest, cancelled: Callable[[], bool] | None = None) -> Iterator[Piece]:
        """One generation alone: yield text as soon as it is safe to release; the last piece carries the finish
        reason. When `cancelled()` turns true, stop with an empty last piece that has no finish reason."""
        generation = self.start(request, cancelled)
        while not generation.prefilled:
            self.prefill_some(generation)
        while not generation.finished:
            (piece,) = self.tick([generation])
            if piece is not None:
                yield piece


class Coalescer:
    """Merges pieces so that at most one leaves every `interval` seconds (the first at once, the final with whatever
    is pending). Each streamed piece costs an inter-process message and an HTTP chunk (measured ~0.6 ms, more than
    a generation step), so one event per character would spend most of the time on transport."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self.pending = Piece("")
        self.last: float | None = None

    def push(self, piece: Piece) -> Piece | None:
        merged = replace(piece, text=self.pending.text + piece.text, tokens=self.pending.tokens + piece.tokens)
        self.pending = Piece("")
        if piece.generated_tokens is not None:  # the last piece
            return merged
        now = self.clock()
        if self.last is None or now - self.last >= self.interval:
            self.last = now
            return merged
        self.pending = merged
        return None


class Joiner:
    """The whole generation as one piece, released with the last (non-streaming answers)."""

    def __init__(self) -> None:
        self.parts: list[Piece] = []

    def push(self, piece: Piece) -> Piece | None:
        self.parts.append(piece)
        if piece.generated_tokens is None:
            return None
        text, tokens = "".join(p.text for p in self.parts), tuple(t for p in self.parts for t in p.tokens)
        return replace(piece, text=text, tokens=tokens)


def generate_text(
    generator: CharGenerator, request: GenerateRequest, cancelled: Callable[[], bool] | None = None
) -> Piece:
    """The whole generation as one piece (non-streaming answers)."""
    joiner = Joiner()
    for piece in generator.generate(request, cancelled):
        if (whole := joiner.push(piece)) is not None:
            return whole
    raise AssertionError("a generation always ends with a last piece")
