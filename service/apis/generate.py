"""POST /generate: one LitAPI in streaming mode serves both answers. A streaming request gets one piece per
released chunk of text; a plain request gets a single final piece. The HTTP side (`service.web.routes`) turns the
pieces into Server-Sent Events or one JSON body. The worker's loop (`ContinuousGenerationLoop`) steps all running
requests together; it takes each request through `begin` and each released piece through `encode_response`."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

from service.apis.base import ModelAPI
from service.litserve_ext import ContinuousGenerationLoop, LoopMetrics
from service.runtime import OnnxModel
from service.schemas import GeneratedToken, GeneratePiece, GenerateRequest
from service.settings import Settings
from service.status import WorkerStatus
from service.tasks.generation import Cancellation, CharGenerator, Coalescer, Generation, Joiner, Piece

logger = logging.getLogger(__name__)


class GenerateAPI(ModelAPI):
    task = "charlm"

    def __init__(
        self,
        settings: Settings,
        status: WorkerStatus | None = None,
        cancellations: MutableMapping[str, float] | None = None,
        metrics: LoopMetrics | None = None,
    ) -> None:
        super().__init__(
            settings, status, stream=True, loop=ContinuousGenerationLoop(settings.generate_max_batch, metrics)
        )
        self.cancellations = cancellations

    def prepare(self, model: OnnxModel) -> None:
        self.generator = CharGenerator(model)
        self.generator.warm_up()

    def decode_request(self, request: GenerateRequest) -> GenerateRequest:
        return request

    def begin(self, request: GenerateRequest) -> tuple[Generation, Coalescer | Joiner]:
        """A generation for the batching loop, and how its pieces are released (streamed in groups, or whole)."""
        release = Coalescer(self.settings.stream_interval) if request.stream else Joiner()
        return self.generator.start(request, self._cancellation(request)), release

    def _cancellation(self, request: GenerateRequest) -> Cancellation | None:
        uid = request._request_id
        return Cancellation(self.cancellations, uid) if self.cancellations is not None and uid else None

    # Annotated Any: LitServe would turn an Iterator return type into an (invalid) FastAPI response model.
    def encode_response(self, pieces: Iterator[Piece]) -> Any:
        for piece in pieces:
            if piece.generated_tokens is not None and piece.finish_reason is None:
                logger.info("generation stopped after %d characters: the client went away", piece.generated_tokens)
            model = self.model_id if piece.finish_reason else None
            tokens = [GeneratedToken(id=t.id, text=t.text, logprob=t.logprob) for t in piece.tokens] or None
            yield GeneratePiece(
                text=piece.text,
                finish_reason=piece.finish_reason,
                generated_tokens=piece.generated_tokens,
                model=model,
                tokens=tokens,
                unknown_chars=list(piece.unknown_chars) or None,
            )
